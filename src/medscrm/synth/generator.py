"""Deterministic synthetic source data for one pharma tenant.

``generate(out_dir, hcps=...)`` invents a population of HCPs (and diabetes-programme patients),
then writes what six real systems would have exported about them — each with its own layout,
encoding and the kinds of noise real exports have — plus the ground truth (which row is which
person) and ``all_records.csv`` (every row in the identity resolver's standard schema, raw).

Generation streams: persons are made in chunks, their rows are shuffled within the chunk, given
their source keys and written out, so memory does not grow with ``hcps`` (except for a set of
e-mail addresses, kept to make addresses unique). Everything is drawn from one
``random.Random(seed)``, except whether a row captured a WeChat unionid (webinar and event
sign-ups through WeChat login, WeCom contacts who also follow the official account), which is
drawn from a second stream derived from the seed (``World.rng_id``) so that adding it left every
other value unchanged. The same seed gives byte-identical files.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import time
import zipfile
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any

import opencc
import orjson
import phonenumbers
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from openpyxl import Workbook
from pypinyin import lazy_pinyin
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from medscrm.reference import load_hospitals
from medscrm.synth import pools
from medscrm.synth.sources import (
    ALL_SOURCES,
    CRM,
    EVENTS,
    GROUND_TRUTH_COLUMNS,
    IDENTIFYING_FIELDS,
    PATIENTS,
    RESOLVE_COLUMNS,
    SURVEY,
    WEBINAR,
    WECHAT,
    WECOM,
    SourceSpec,
)

__all__ = ["SourceInfo", "SynthManifest", "generate"]

TENANT = "demo"
CHUNK = 10_000
EVENTS_MAX_ROWS = 100_000
# 2026-06-30 00:00:00 +08:00; all timestamps fall in the two years before it.
END_EPOCH = 1782748800
SPAN_S = 730 * 86400
CST = 8 * 3600
FIXED_ZIP_TIME = (2026, 6, 30, 0, 0, 0)
FIXED_ISO = "2026-06-30T00:00:00Z"

_FULLWIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）\u3000")


# ----------------------------------------------------------------------------------------------
# manifest
# ----------------------------------------------------------------------------------------------
@dataclass
class SourceInfo:
    name: str
    file: str
    format: str
    encoding: str | None
    mapping: str
    rows: int
    description: str
    person_type: str = "hcp"

    def __getitem__(self, key: str) -> Any:
        """Dict-style access (``s["rows"]``), like the entries of ``manifest.json``."""
        return getattr(self, key)


@dataclass
class SynthManifest:
    seed: int
    hcps: int
    tenant: str
    sources: list[SourceInfo]
    ground_truth: str = "ground_truth.csv"
    resolve_input: str = "all_records.csv"
    persons: str = "persons.csv"
    patients: int = 0
    bad_row_rate: float = 0.01
    total_rows: int = 0
    bad_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        order = ("seed", "hcps", "patients", "tenant", "bad_row_rate", "total_rows", "bad_rows", "sources")
        return {k: d[k] for k in order} | {k: d[k] for k in d if k not in order}

    def source(self, name: str) -> SourceInfo:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    @classmethod
    def load(cls, path: Path | str) -> SynthManifest:
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.json"
        d = json.loads(path.read_text(encoding="utf-8"))
        d["sources"] = [SourceInfo(**s) for s in d["sources"]]
        return cls(**d)


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
class Weighted:
    """Weighted choice by bisect over cumulative weights (much faster than random.choices)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, pairs: Iterable[tuple[Any, float]]):
        pairs = list(pairs)
        self.items = [p[0] for p in pairs]
        self.cum = list(accumulate(p[1] for p in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: Random) -> Any:
        return self.items[bisect_right(self.cum, rng.random() * self.total)]


def _perm(idx: int, mult: int, add: int, mod: int) -> int:
    """Injective map of 0..mod-1 onto itself (mult coprime with mod)."""
    return (idx * mult + add) % mod


_B64_TRANS = str.maketrans("+/", "-_")


def _rand_id(rng: Random, n: int) -> str:
    nbytes = (n * 6 + 7) // 8 + 1
    s = base64.b64encode(rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big")).decode()
    return s.translate(_B64_TRANS)[:n]


def _fmt_ts(ts: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.gmtime(ts + CST))


def _rand_ts(rng: Random, lo_days_ago: int = 730, hi_days_ago: int = 0) -> int:
    lo = END_EPOCH - lo_days_ago * 86400
    hi = END_EPOCH - hi_days_ago * 86400
    ts = lo + int(rng.random() * (hi - lo))
    # people act in daytime / evening: fold night hours into 08:00-23:00
    hour = ((ts + CST) // 3600) % 24
    if hour < 8:
        ts += (8 + (hour * 2) % 15 - hour) * 3600
    return min(ts, END_EPOCH - 1)


@lru_cache(maxsize=4096)
def _py_chars(text: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(text))


def _py(text: str) -> str:
    return "".join(_py_chars(text))


def _surname_py(surname: str) -> str:
    return pools.SURNAME_PINYIN.get(surname) or _py(surname)


def _initials(text: str) -> str:
    return "".join(p[0] for p in _py_chars(text) if p and p[0].isascii() and p[0].isalpha())


_opencc = None


@lru_cache(maxsize=65536)
def _to_trad(text: str) -> str:
    global _opencc
    if _opencc is None:
        _opencc = opencc.OpenCC("s2t")
    return _opencc.convert(text)


# ----------------------------------------------------------------------------------------------
# the world: hospitals, reps
# ----------------------------------------------------------------------------------------------
_GRADE_WEIGHT = {
    "三级甲等": 10.0,
    "三级乙等": 4.0,
    "二级甲等": 2.5,
    "二级乙等": 2.0,
    "一级": 0.8,
    "未定级": 0.6,
}
_GRADE_SHORT = {
    "三级甲等": "三甲",
    "三级乙等": "三乙",
    "二级甲等": "二甲",
    "二级乙等": "二乙",
    "一级": "一级",
}
_MUNI_DISTRICTS = {
    "北京": ("海淀", "朝阳", "东城", "西城", "丰台", "昌平"),
    "上海": ("浦东新区", "徐汇", "黄浦", "静安", "长宁", "闵行"),
    "天津": ("和平", "南开", "河西", "河东"),
    "重庆": ("渝中", "江北", "沙坪坝", "九龙坡", "渝北"),
}


class Hospital:
    __slots__ = (
        "idx", "hid", "name", "city", "province", "grade", "zh", "en", "short", "domain",
        "community", "area", "local_len", "depts",
    )  # fmt: skip

    def __init__(self, idx: int, row: dict):
        self.idx = idx
        self.hid = row["hospital_id"]
        self.name = row["name"]
        self.city = row["city"]
        self.province = row["province"]
        self.grade = row["grade"]
        self.zh = [a for a in row["aliases"] if not a.isascii() and a != self.name] or [self.name]
        self.en = [a for a in row["aliases"] if a.isascii()]
        self.community = "社区卫生服务中心" in self.name
        short = min(self.zh, key=len)
        if short.endswith("医院") and len(short) > 4:
            short = short[:-2]
        self.short = short
        self.domain = ""  # set by World, which knows which aliases are ambiguous
        self.depts: Weighted | None = None  # specialty hospitals: their own department mix
        self.area, self.local_len = pools.AREA_CODES.get(self.city, ("0" + str(100 + idx % 900), 8))


@lru_cache(maxsize=8192)
def _landline(hidx: int, area: str, local_len: int, dept_name: str) -> str:
    h = sum(map(ord, dept_name)) * 7919 + hidx * 104729
    n = local_len - 1
    for k in range(50):
        local = "68"[(h + k) % 2] + f"{((h + k) * 2654435761) % 10**n:0{n}d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(area + local, "CN")):
            break
    return f"{area}-{local}"


class Rep:
    __slots__ = ("idx", "userid", "name", "phone")

    def __init__(self, idx: int, userid: str, name: str, phone: str):
        self.idx, self.userid, self.name, self.phone = idx, userid, name, phone


# ----------------------------------------------------------------------------------------------
# persons
# ----------------------------------------------------------------------------------------------
class Person:
    __slots__ = (
        "key", "idx", "ptype", "surname", "given", "name", "gender", "hosp", "prev_hosp", "dept",
        "title", "admin_role", "phone", "phone2", "email", "email2", "license", "unionid", "unionid2",
        "nickname", "nickname2", "ext_id", "city", "birth_year", "dtype", "in_crm", "follows",
    )  # fmt: skip

    def __init__(self) -> None:
        for s in self.__slots__:
            setattr(self, s, None)


class World:
    """Everything that stays fixed during one generation run, plus the shared RNG."""

    def __init__(self, seed: int, hcps: int, bad_row_rate: float):
        self.rng = Random(seed)
        # a second stream for WeChat-login capture (see the module docstring): draws from it never
        # shift the main stream, so the values drawn from ``rng`` stay as they were without it
        self.rng_id = Random(f"medscrm.synth.id-capture:{seed}")
        # a third stream for the official account's HCP verification form (医生认证), same reason
        self.rng_verify = Random(f"medscrm.synth.hcp-verification:{seed}")
        rng = self.rng
        self.bad_rate = bad_row_rate
        self.hcps = hcps
        self.hospitals = [Hospital(i, h) for i, h in enumerate(load_hospitals())]
        self.by_city: dict[str, list[Hospital]] = {}
        alias_count: dict[str, int] = {}
        for h in self.hospitals:
            self.by_city.setdefault(h.city, []).append(h)
            for a in h.zh:
                alias_count[a] = alias_count.get(a, 0) + 1
        depts = {d[0]: d for d in (*pools.DEPARTMENTS, pools.PEDIATRICS)}
        for h in self.hospitals:
            abbr = next((a for a in h.en if a.isalpha() and a.isupper() and len(a) <= 8), None)
            unique = sorted((a for a in h.zh if alias_count[a] == 1), key=len) or [h.name]
            h.domain = (
                f"{abbr.lower()}.cn" if abbr else f"{_initials(unique[0].removesuffix('医院'))}hospital.cn"
            )
            for keys, mix in pools.SPECIALTY_DEPTS:
                if any(k in h.name or k in h.zh for k in keys):
                    h.depts = Weighted((depts[d], w) for d, w in mix)
                    break
        self.w_hosp = Weighted((h, _GRADE_WEIGHT.get(h.grade, 1.0)) for h in self.hospitals)
        self.w_surname = Weighted(pools.SURNAMES)
        self.w_top_m = Weighted(pools.TOP_GIVEN_MALE)
        self.w_top_f = Weighted(pools.TOP_GIVEN_FEMALE)
        self.w_char_m = Weighted(pools.GIVEN_CHARS_MALE)
        self.w_char_f = Weighted(pools.GIVEN_CHARS_FEMALE)
        self.w_dept = Weighted((d, d[1]) for d in pools.DEPARTMENTS)
        self.pharmacy = (pools.PHARMACY_DEPT[0], 0, pools.PHARMACY_DEPT[1], pools.PHARMACY_DEPT[2])
        self.gp = next(d for d in pools.DEPARTMENTS if d[0] == "全科医学科")
        self.w_title = Weighted((t, t[3]) for t in pools.TITLES)
        self.titles_by = {(t[1], t[2]): t for t in pools.TITLES}
        self.w_prefix = Weighted(pools.MOBILE_PREFIXES)
        self.w_domain = Weighted(pools.PUBLIC_EMAIL_DOMAINS)
        self.w_scene = Weighted(pools.WECHAT_SCENES)
        self.w_dtype = Weighted(pools.DIABETES_TYPES)
        # injective-permutation constants (phone suffixes, licence tails, QQ numbers)
        self.ph_add = rng.randrange(10**8)
        self.lic_add = rng.randrange(36 * 10**6)
        self.qq_add = rng.randrange(9 * 10**8)
        self.openid_prefix = "o" + _rand_id(rng, 5)
        self.seen_emails: set[str] = set()
        self.recent: list[Person] = []
        self.hcp_phones: list[str] = []
        # reps: one per ~250 HCPs, each covering a set of hospital departments
        n_reps = max(6, hcps // 250)
        self.reps = []
        for r in range(n_reps):
            sn, gv = self.w_surname.pick(rng), self._given(rng.random() < 0.5)
            userid = (
                f"{_surname_py(sn).capitalize()}{_py(gv).capitalize()}"
                if rng.random() < 0.6
                else f"E{10000 + r * 7 + rng.randrange(7)}"
            )
            self.reps.append(Rep(r, userid, sn + gv, self.mobile(60_000_000 + r)))
        self.health_managers = [f"HM{100 + i:03d}" for i in range(max(3, hcps // 2000))]

    # --- identifiers ---------------------------------------------------------------------------
    def mobile(self, idx: int) -> str:
        return self.w_prefix.pick(self.rng) + f"{_perm(idx, 54435761, self.ph_add, 10**8):08d}"

    def landline(self, hosp: Hospital, dept_name: str) -> str:
        """Department landline: deterministic per (hospital, department) -> shared by colleagues."""
        return _landline(hosp.idx, hosp.area, hosp.local_len, dept_name)

    def licence(self, idx: int, hosp: Hospital) -> str:
        v = _perm(idx, 1_000_003, self.lic_add, 36 * 10**6)
        prov = pools.PROVINCES.get(hosp.province, ("", "11", ""))[1]
        city = 1 + (sum(ord(c) for c in hosp.city) % 17)
        return f"1{prov}{city:02d}{1990 + v // 10**6}{v % 10**6:06d}"

    def _given(self, male: bool) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.09:
            return (self.w_top_m if male else self.w_top_f).pick(rng)
        w = self.w_char_m if male else self.w_char_f
        if r < 0.33:
            return w.pick(rng)
        a, b = w.pick(rng), w.pick(rng)
        return a + b if a != b or rng.random() < 0.3 else a + w.pick(rng)

    def email_for(self, p: Person, hosp: Hospital | None) -> str:
        rng = self.rng
        sp, gp = _surname_py(p.surname), _py(p.given)
        r = rng.random()
        if r < 0.25:
            return f"{100_000_000 + _perm(p.idx, 1_000_000_007, self.qq_add, 9 * 10**8)}@qq.com"
        if r < 0.55 and hosp is not None and hosp.grade.startswith("三级"):
            local = rng.choice((sp + gp, f"{gp}.{sp}", f"{sp}{gp[0]}", f"{sp}_{gp}"))
            domain = hosp.domain
            n = 1
            while f"{local}@{domain}" in self.seen_emails:
                n += 1
                local = local.rstrip("0123456789") + str(n)
        else:
            base = rng.choice((sp + gp, f"{gp}.{sp}", f"{sp}.{gp}", f"{sp}{_initials(p.given)}"))
            domain = self.w_domain.pick(rng)
            local = base + rng.choice(("", str(rng.randrange(1960, 2001)), str(rng.randrange(10, 1000))))
            while f"{local}@{domain}" in self.seen_emails:
                local = base + str(rng.randrange(1, 100000))
        email = f"{local}@{domain}"
        self.seen_emails.add(email)
        return email

    # --- persons -------------------------------------------------------------------------------
    def make_hcp(self, i: int) -> Person:
        rng = self.rng
        p = Person()
        p.idx, p.key, p.ptype = i, f"HCP{i + 1:07d}", "hcp"
        twin = None
        if self.recent and rng.random() < 0.006:
            twin = rng.choice(self.recent)  # deliberate namesake: same name, same hospital
        if twin is not None:
            p.surname, p.given, p.gender, p.hosp = twin.surname, twin.given, twin.gender, twin.hosp
        else:
            p.gender = "男" if rng.random() < 0.52 else "女"
            p.surname = self.w_surname.pick(rng)
            p.given = self._given(p.gender == "男")
            p.hosp = self.w_hosp.pick(rng)
        p.name = p.surname + p.given
        hosp: Hospital = p.hosp
        title = self.w_title.pick(rng)
        if hosp.community and title[2] == 4:
            title = self.titles_by[(title[1], 2)]
        p.title = title
        if title[1] == "pharmacist":
            p.dept = self.pharmacy
        elif hosp.community:
            p.dept = self.gp if rng.random() < 0.8 else self.w_dept.pick(rng)
        else:
            p.dept = (hosp.depts or self.w_dept).pick(rng)
        if twin is not None:
            for _ in range(10):
                if p.dept[0] != twin.dept[0]:
                    break
                p.dept = self.w_dept.pick(rng)
        if title[2] >= 3 and title[1] == "doctor" and rng.random() < 0.15:
            p.admin_role = pools.ADMIN_ROLES[0] if rng.random() < 0.8 else rng.choice(pools.ADMIN_ROLES)
        if rng.random() < 0.03:
            same_city = [h for h in self.by_city[hosp.city] if h is not hosp]
            p.prev_hosp = rng.choice(same_city) if same_city else self.w_hosp.pick(rng)
        p.phone = self.mobile(i)
        if rng.random() < 0.08:
            p.phone2 = self.mobile(40_000_000 + i)
        if rng.random() < 0.8:
            p.email = self.email_for(p, hosp)
            if rng.random() < 0.12:
                p.email2 = self.email_for(p, None)
        if title[1] == "doctor":
            p.license = self.licence(i, hosp)
        p.unionid = "o" + _rand_id(rng, 27)
        if rng.random() < 0.02:
            p.unionid2 = "o" + _rand_id(rng, 27)
        p.ext_id = "wm" + _rand_id(rng, 30)
        self.recent.append(p)
        if len(self.recent) > 64:
            del self.recent[0]
        if len(self.hcp_phones) < 2000 and rng.random() < 0.05:
            self.hcp_phones.append(p.phone)
        return p

    def make_patient(self, j: int) -> Person:
        rng = self.rng
        p = Person()
        p.idx, p.key, p.ptype = j, f"PT{j + 1:07d}", "patient"
        p.dtype = self.w_dtype.pick(rng)
        p.gender = "女" if p.dtype == "gestational" or rng.random() < 0.47 else "男"
        p.surname = self.w_surname.pick(rng)
        p.given = self._given(p.gender == "男")
        p.name = p.surname + p.given
        p.city = self.w_hosp.pick(rng).city
        lo, hi = {"T1": (1975, 2012), "gestational": (1985, 2003), "pre-diabetes": (1960, 1995)}.get(
            p.dtype, (1940, 1985)
        )
        p.birth_year = rng.randrange(lo, hi + 1)
        if self.hcp_phones and rng.random() < 0.005:
            p.phone = rng.choice(self.hcp_phones)  # registered with a relative's (a doctor's) phone
        else:
            p.phone = self.mobile(20_000_000 + j)
        return p

    def rep_for(self, p: Person) -> Rep:
        return self.reps[(p.hosp.idx * 31 + sum(map(ord, p.dept[0]))) % len(self.reps)]


# ----------------------------------------------------------------------------------------------
# noise: how each source renders a person's attributes
# ----------------------------------------------------------------------------------------------
_PHONE_STYLES = {
    # style -> weight, per source
    "crm": (("plain", 90), ("dash", 4), ("space", 3), ("+86", 3)),
    "webinar": (
        ("plain", 58), ("space", 12), ("+86-", 10), ("+86 ", 5), ("dash", 6), ("full", 3), ("86-", 2),
        ("(+86)", 2), ("0086", 2),
    ),  # fmt: skip
    "events": (("plain", 72), ("dash", 10), ("space", 8), ("full", 5), ("+86 ", 5)),
    "survey": (("plain", 82), ("+86", 10), ("space", 5), ("dash", 3)),
    "wecom": (("plain", 75), ("+86 ", 25)),
    "patients": (("plain", 82), ("space", 6), ("dash", 6), ("+86", 4), ("full", 2)),
}  # fmt: skip
_W_PHONE = {k: Weighted(v) for k, v in _PHONE_STYLES.items()}


def fmt_mobile(style: str, m: str) -> str:
    if style == "plain":
        return m
    if style == "space":
        return f"{m[:3]} {m[3:7]} {m[7:]}"
    if style == "dash":
        return f"{m[:3]}-{m[3:7]}-{m[7:]}"
    if style == "+86":
        return "+86" + m
    if style == "+86-":
        return "+86-" + m
    if style == "+86 ":
        return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    if style == "86-":
        return "86-" + m
    if style == "(+86)":
        return "(+86)" + m
    if style == "0086":
        return "0086 " + m
    if style == "full":
        return m.translate(_FULLWIDTH)
    raise ValueError(style)


def fmt_landline(rng: Random, ll: str) -> str:
    area, local = ll.split("-")
    r = rng.random()
    if r < 0.55:
        return ll
    if r < 0.75:
        return area + local
    if r < 0.9:
        return f"({area}){local}"
    return f"{area} {local[:-4]} {local[-4:]}"


def typo_digit(rng: Random, m: str) -> str:
    """A plausible keying error in a mobile number: one digit changed or two swapped."""
    pos = rng.randrange(3, 11)
    if rng.random() < 0.6:
        d = str((int(m[pos]) + rng.randrange(1, 10)) % 10)
        return m[:pos] + d + m[pos + 1 :]
    pos = min(pos, 9)
    return m[:pos] + m[pos + 1] + m[pos] + m[pos + 2 :]


# cumulative thresholds: full name, alias, city + alias, English, short/trailing space, else empty
_HOSP_STYLE = {
    "webinar": (0.33, 0.73, 0.84, 0.92, 0.96),
    "wecom": (0.25, 0.75, 0.85, 0.9, 0.9),
    "events": (0.6, 0.82, 0.97, 0.97, 0.97),
    "survey": (0.4, 0.82, 0.87, 0.92, 0.92),
}


class Render:
    """Source-specific renderings of a person's attributes, with realistic noise."""

    def __init__(self, world: World):
        self.w = world
        self.rng = world.rng

    # names -----------------------------------------------------------------------------------
    def homophone(self, name: str) -> str:
        rng = self.rng
        idxs = [i for i, c in enumerate(name) if c in pools.HOMOPHONES]
        if not idxs:
            return name
        i = rng.choice(idxs[1:] or idxs) if len(idxs) > 1 and rng.random() < 0.8 else rng.choice(idxs)
        return name[:i] + rng.choice(pools.HOMOPHONES[name[i]]) + name[i + 1 :]

    def en_name(self, p: Person) -> str:
        rng = self.rng
        sp, gp = _surname_py(p.surname).capitalize(), _py(p.given).capitalize()
        r = rng.random()
        if r < 0.45:
            return f"{gp} {sp}"
        if r < 0.75:
            return f"{sp.upper()} {gp}"
        if r < 0.9:
            return f"{sp} {gp}"
        return f"{sp.lower()} {gp.lower()}"

    def zh_name(self, p: Person, noise: float) -> str:
        """The name as typed into a form; ``noise`` scales the rate of each kind of noise."""
        rng = self.rng
        r = rng.random()
        name = p.name
        if r >= noise:
            return name
        r /= noise  # which kind of noise, uniformly
        if r < 0.25:
            return self.homophone(name)
        if r < 0.45:
            return _to_trad(name)
        if r < 0.7:
            sep = "\u3000" if rng.random() < 0.25 else " "
            return p.surname + sep + p.given
        if r < 0.85:
            return name + rng.choice((" ", "  ", "\t"))
        return " " + name

    def role_word(self, p: Person) -> str:
        rng = self.rng
        prof, rank = p.title[1], p.title[2]
        if prof == "nurse":
            return "护士长" if rank >= 3 and rng.random() < 0.6 else rng.choice(("老师", "护士"))
        if prof == "pharmacist":
            return rng.choice(("药师", "老师"))
        if rank >= 3 and rng.random() < 0.75:
            return "主任"
        return rng.choice(("医生", "医生", "大夫", "老师", "博士"))

    def nickname(self, p: Person) -> str:
        rng = self.rng
        r = rng.random()
        name = p.name
        sp, gp = _surname_py(p.surname), _py(p.given)
        if r < 0.30:
            return name if rng.random() < 0.97 else _to_trad(name)
        if r < 0.52:
            return p.surname + self.role_word(p)
        if r < 0.60:
            return rng.choice(
                (f"Dr. {sp.capitalize()}", f"Dr {sp.capitalize()} {gp.capitalize()}",
                 f"{gp.capitalize()} {sp.capitalize()}", f"Dr.{sp.capitalize()}")
            )  # fmt: skip
        if r < 0.66:
            return rng.choice(
                (sp + gp, f"{sp.capitalize()}_{gp.capitalize()}", f"{gp}{rng.randrange(10, 99)}")
            )
        if r < 0.74:
            e = rng.choice(pools.EMOJIS)
            return rng.choice((e + name, name + e, f"{e}{p.surname}{self.role_word(p)}{e}"))
        if r < 0.80:
            return f"{name}-{p.hosp.short}{pools.DEPT_SHORT.get(p.dept[0], p.dept[0])}"
        if r < 0.84:
            g = p.given
            return g + g if len(g) == 1 else rng.choice((g, "小" + g[-1]))
        if r < 0.87 and p.surname in ("李", "张"):
            return ("木子" if p.surname == "李" else "弓长") + p.given
        nick = rng.choice(pools.RANDOM_NICKNAMES)
        if rng.random() < 0.2:
            nick = rng.choice(pools.EMOJIS) + nick
        return nick

    # organisation ----------------------------------------------------------------------------
    def hospital(self, p: Person, style: str, current_only: bool = False) -> str:
        """How a self-typed form names the hospital; style: webinar | wecom | events | survey."""
        rng = self.rng
        h: Hospital = p.hosp
        if not current_only and p.prev_hosp is not None and rng.random() < 0.3:
            h = p.prev_hosp
        r = rng.random()
        weights = _HOSP_STYLE[style]
        if r < weights[0]:
            return h.name
        if r < weights[1]:
            return rng.choice(h.zh)
        if r < weights[2]:
            a = rng.choice(h.zh)
            if a.startswith(h.city):
                return a
            return rng.choice((h.city, h.city + "市", h.city + " ")) + a
        if r < weights[3]:
            return rng.choice(h.en) if h.en else h.name
        if r < weights[4]:
            return h.short if rng.random() < 0.5 else h.name + " "
        return ""

    def department(
        self, p: Person, en_rate: float = 0.0, generic_rate: float = 0.02, canon: float = 0.5
    ) -> str:
        rng = self.rng
        d = p.dept
        r = rng.random()
        if r < en_rate and d[3]:
            return rng.choice(d[3])
        if r < en_rate + generic_rate and d[0] in (
            "内分泌科",
            "心血管内科",
            "肾内科",
            "消化内科",
            "神经内科",
        ):
            return "内科"
        return d[2][0] if rng.random() < canon else rng.choice(d[2])

    def title(
        self,
        p: Person,
        en_rate: float = 0.0,
        stale_rate: float = 0.0,
        role_rate: float = 0.0,
        canon: float = 0.55,
    ) -> str:
        rng = self.rng
        t = p.title
        if stale_rate and t[2] > 1 and rng.random() < stale_rate:
            t = self.w.titles_by[(t[1], t[2] - 1)]
        if p.admin_role and rng.random() < role_rate:
            return p.admin_role if rng.random() < 0.5 else f"{t[0]} {p.admin_role}"
        if rng.random() < en_rate:
            return rng.choice(t[5])
        return t[4][0] if rng.random() < canon else rng.choice(t[4])

    # contact points --------------------------------------------------------------------------
    def phone(self, p: Person, src: str, *, alt: float = 0.0, landline: float = 0.0, rep: float = 0.0,
              typo: float = 0.0) -> str:  # fmt: skip
        rng = self.rng
        r = rng.random()
        if r < landline and p.hosp is not None:
            return fmt_landline(rng, self.w.landline(p.hosp, p.dept[0]))
        if r < landline + rep:
            return fmt_mobile(_W_PHONE[src].pick(rng), self.w.rep_for(p).phone)
        m = p.phone2 if p.phone2 and rng.random() < alt else p.phone
        if typo and rng.random() < typo:
            m = typo_digit(rng, m)
        return fmt_mobile(_W_PHONE[src].pick(rng), m)

    def email(self, p: Person, *, alt: float = 0.0, case: float = 0.0) -> str:
        rng = self.rng
        e = p.email2 if p.email2 and rng.random() < alt else p.email
        if not e:
            return ""
        if case and rng.random() < case:
            local, _, dom = e.partition("@")
            e = rng.choice((e.upper(), local.capitalize() + "@" + dom, local + "@" + dom.upper()))
        return e


# ----------------------------------------------------------------------------------------------
# bad rows
# ----------------------------------------------------------------------------------------------
def _bad_phone(rng: Random, mobile: str) -> str:
    """A mobile number damaged beyond repair (libphonenumber rejects every one of these)."""
    digits = mobile
    r = rng.random()
    if r < 0.3:
        return digits[: rng.randrange(5, 10)]
    if r < 0.55:
        i = rng.randrange(3, 10)
        return digits[:i] + rng.choice("OolIxX") + digits[i + 1 :]
    if r < 0.8:
        return digits[:3] + "****" + digits[7:]
    return digits + str(rng.randrange(10)) + str(rng.randrange(10))


def _bad_email(rng: Random, good: str) -> str:
    good = good or "zhangwei@163.com"
    local, _, dom = good.partition("@")
    return rng.choice(
        (local + dom, local + "@", f"{local}#{dom}", f"{local}@@{dom}", f"{local[:3]} {local[3:]}@{dom}")
    )


def _bad_licence(rng: Random, good: str) -> str:
    good = good or "1" + "".join(str(rng.randrange(10)) for _ in range(14))
    r = rng.random()
    if r < 0.4:
        return good[:-1]
    if r < 0.8:
        return good + str(rng.randrange(10))
    return good + "".join(str(rng.randrange(10)) for _ in range(3))


def _identifiable(spec: SourceSpec, row: dict) -> bool:
    """Does the row carry any identifying value? A name counts only if it has a letter or digit."""
    for col, f in spec.mapping.items():
        v = row.get(col)
        if f not in IDENTIFYING_FIELDS or v is None or not str(v).strip():
            continue
        if f != "name" or any(c.isalnum() for c in str(v)):
            return True
    return False


def corrupt(rng: Random, spec: SourceSpec, row: dict, mobile: str) -> str:
    """Make ``row`` a row the importer must quarantine; return the kind of damage."""
    kinds = []
    phone_col, email_col, lic_col = spec.col_for("phone"), spec.col_for("email"), spec.col_for("license_no")
    if phone_col and (spec is not WECHAT or row.get(phone_col)):  # only verified followers have one
        kinds += ["phone", "phone"]
    if email_col:
        kinds.append("email")
    if lic_col:
        kinds.append("licence")
    if spec is not WECOM:
        kinds.append("noid")
    kind = rng.choice(kinds)
    if kind == "phone":
        row[phone_col] = _bad_phone(rng, mobile)
    elif kind == "email":
        row[email_col] = _bad_email(rng, str(row.get(email_col) or ""))
    elif kind == "licence":
        row[lic_col] = _bad_licence(rng, str(row.get(lic_col) or ""))
    else:
        for col, f in spec.mapping.items():
            if f in IDENTIFYING_FIELDS and col in row:
                row[col] = "" if spec.format in ("csv", "jsonl") else None
        if spec is WECHAT:
            row.pop("unionid", None)
    return kind


# ----------------------------------------------------------------------------------------------
# row builders (one person -> rows per source)
# ----------------------------------------------------------------------------------------------
Row = tuple[str, str, dict, int]  # person_key, person_type, row, is_bad


def _province_forms(rng: Random, province: str) -> str:
    full = pools.PROVINCES.get(province, (province,))[0]
    return full if rng.random() < 0.5 else province


def _city_forms(rng: Random, city: str) -> str:
    return city + "市" if rng.random() < 0.5 else city


class Builder:
    def __init__(self, world: World):
        self.w = world
        self.rng = world.rng
        self.rng_id = world.rng_id
        self.r = Render(world)
        self.rv = Render(world)  # renders the verification form from its own stream
        self.rv.rng = world.rng_verify

    def login_unionid(self, p: Person, source: str) -> str | None:
        """The unionid a WeChat-login sign-up captured, or None (drawn from ``rng_id`` only)."""
        rng = self.rng_id
        if rng.random() >= UNIONID_CAPTURE[source]:
            return None
        if p.unionid2 and rng.random() < SECOND_ACCOUNT_LOGIN:
            return p.unionid2
        return p.unionid

    def _finish(self, spec: SourceSpec, p: Person, row: dict) -> Row:
        if self.rng.random() < self.w.bad_rate:
            corrupt(self.rng, spec, row, p.phone)
            return (p.key, p.ptype, row, 1)
        # noise alone can leave a row unidentifiable (an emoji-only WeChat nickname, no unionid)
        return (p.key, p.ptype, row, 0 if _identifiable(spec, row) else 1)

    def crm(self, p: Person, dup: bool = False) -> Row:
        rng, r = self.rng, self.r
        h: Hospital = p.prev_hosp if dup and p.prev_hosp is not None else p.hosp
        rep = self.w.rep_for(p)
        lic = ""
        if p.license and rng.random() < (0.6 if dup else 0.85):
            lic = p.license
        row = {
            "客户编号": None,
            "姓名": r.zh_name(p, 0.015),
            "性别": p.gender if rng.random() < 0.97 else "",
            "医院": h.name if rng.random() < 0.93 else rng.choice(h.zh),
            "医院级别": (_GRADE_SHORT.get(h.grade, h.grade) if rng.random() < 0.15 else h.grade),
            "科室": r.department(p, generic_rate=0.01, canon=0.8) if rng.random() < 0.98 else "",
            "职称": r.title(p, stale_rate=0.5 if dup else 0.02, role_rate=0.1, canon=0.85)
            if rng.random() < 0.97
            else "",
            "城市": _city_forms(rng, h.city),
            "省份": _province_forms(rng, h.province),
            "手机": r.phone(p, "crm", alt=0.7 if dup else 0.05, typo=0.003) if rng.random() < 0.96 else "",
            "办公电话": fmt_landline(rng, self.w.landline(h, p.dept[0])) if rng.random() < 0.35 else "",
            "邮箱": r.email(p, alt=0.3, case=0.02),
            "执业证书编码": lic,
            "客户等级": "ABCD"[min(3, 4 - p.title[2] + (rng.random() < 0.3))],
            "负责代表": rep.name if rng.random() < 0.5 else rep.userid,
            "创建日期": _fmt_ts(_rand_ts(rng, 730, 0), "%Y-%m-%d"),
        }
        return self._finish(CRM, p, row)

    def webinar(self, p: Person) -> Row:
        rng, r = self.rng, self.r
        x = rng.random()
        if x < 0.06:
            name = r.en_name(p)
        elif x < 0.08:
            name = p.name + rng.choice(("医生", "主任", "(医生)"))
        else:
            name = r.zh_name(p, 0.09)
        topic_i = rng.randrange(len(pools.WEBINAR_TOPICS))
        # each topic is one webinar; its date is fixed, signups happen in the 3 weeks before it
        webinar_day = 700 - topic_i * 50
        ts = _rand_ts(rng, webinar_day + 21, webinar_day)
        attended = rng.random() < 0.62
        row = {
            "signup_id": None,
            "full_name": name,
            "mobile": r.phone(p, "webinar", alt=0.4, landline=0.02, rep=0.02, typo=0.01)
            if rng.random() < 0.99
            else "",
            "email": r.email(p, alt=0.4, case=0.06) if rng.random() < 0.7 else "",
            "hospital_name": r.hospital(p, "webinar"),
            "dept": r.department(p, en_rate=0.05) if rng.random() < 0.9 else "",
            "job_title": r.title(p, en_rate=0.07, stale_rate=0.05, role_rate=0.05)
            if rng.random() < 0.88
            else "",
            "signup_time": _fmt_ts(ts),
            "webinar_topic": pools.WEBINAR_TOPICS[topic_i],
            "attended": "Y" if attended else "N",
            "watch_minutes": rng.randrange(3, 95) if attended else 0,
        }
        uid = self.login_unionid(p, "webinar")
        if uid is not None:
            row["wx_unionid"] = uid
        return self._finish(WEBINAR, p, row)

    def _wechat_geo(self, p: Person) -> tuple[str, str, str]:
        rng = self.rng
        x = rng.random()
        if x < 0.25:
            return "", "", ""
        h = p.hosp if x < 0.85 else self.w.w_hosp.pick(rng)  # profile location can be the hometown
        prov, city = h.province, h.city
        if prov in pools.MUNICIPALITIES:
            city = rng.choice(_MUNI_DISTRICTS[prov])
        if rng.random() < 0.2:
            prov_en = pools.PROVINCES.get(prov, ("", "", _py(prov).capitalize()))[2]
            return _py(city).capitalize(), prov_en, "China"
        return city, prov, "中国"

    def wechat(self, p: Person, second: bool = False) -> Row:
        rng = self.rng
        if second:
            nick = p.nickname2 = p.nickname2 or self.r.nickname(p)
        else:
            nick = p.nickname = p.nickname or self.r.nickname(p)
        sex = 1 if p.gender == "男" else 2
        x = rng.random()
        if x < 0.12:
            sex = 0
        elif x < 0.13:
            sex = 3 - sex
        city, prov, country = self._wechat_geo(p)
        row = {
            "openid": self.w.openid_prefix + _rand_id(rng, 22),
            "nickname": nick if rng.random() < 0.95 else self.r.nickname(p),
            "sex": sex,
            "city": city,
            "province": prov,
            "country": country,
            "subscribe_time": _rand_ts(rng),
            "subscribe_scene": self.w.w_scene.pick(rng),
        }
        unionid = p.unionid2 if second else p.unionid
        p.follows = (p.follows or frozenset()) | {unionid}
        if rng.random() < 0.88:
            row = {"openid": row.pop("openid"), "unionid": unionid, **row}
        row.update(self.verification(p))
        return self._finish(WECHAT, p, row)

    def verification(self, p: Person) -> dict:
        """The official account's HCP verification form (医生认证), for the followers who completed
        it (``HCP_VERIFICATION``; drawn from its own stream): real name, self-typed hospital,
        department and title, and the SMS-checked mobile."""
        rng, rv = self.w.rng_verify, self.rv
        if p.ptype != "hcp" or p.hosp is None or rng.random() >= HCP_VERIFICATION:
            return dict.fromkeys(_VERIFICATION_KEYS)  # the export's LEFT JOIN: nulls, keys present
        name = p.name if rng.random() < 0.98 else rv.homophone(p.name)
        return {
            "real_name": name,
            "verified_hospital": rv.hospital(p, "survey", current_only=True),
            "verified_department": rv.department(p, generic_rate=0.05),
            "verified_title": rv.title(p, stale_rate=0.1, role_rate=0.05) if rng.random() < 0.8 else "",
            "verified_mobile": rv.phone(p, "webinar", alt=0.15),
            "hcp_verified_at": _fmt_ts(_rand_ts(rng, 700, 0)),
        }

    def remark(self, p: Person) -> str:
        rng, r = self.rng, self.r
        x = rng.random()
        if x < 0.15:
            return ""
        name = p.name if rng.random() < 0.96 else r.homophone(p.name)
        hs = rng.choice((p.hosp.short, p.hosp.short, rng.choice(p.hosp.zh)))
        ds = pools.DEPT_SHORT.get(p.dept[0], p.dept[0])
        role = r.role_word(p)
        pat = rng.randrange(8)
        if pat == 0:
            return f"{hs} {ds} {name}{role}"
        if pat == 1:
            return f"{name}-{hs}-{ds}"
        if pat == 2:
            return f"{hs}{ds}{p.surname}{role}"
        if pat == 3:
            return f"{name} {p.phone}"
        if pat == 4:
            return name
        if pat == 5:
            return f"{p.surname}{role} {hs}"
        if pat == 6:
            return f"{hs}{name}{p.title[0]}"
        return f"{name}（{hs}{ds}）"

    def wecom(self, p: Person, second: bool = False) -> Row:
        rng, r = self.rng, self.r
        if second:
            nick = p.nickname2 = p.nickname2 or r.nickname(p)
            ext = "wm" + _rand_id(rng, 30)
            unionid = p.unionid2
        else:
            nick = p.nickname = p.nickname or r.nickname(p)
            ext = p.ext_id
            unionid = p.unionid
        rep = self.w.rep_for(p)
        row: dict = {
            "external_userid": ext,
            "name": nick if rng.random() < 0.95 else r.nickname(p),
            "remark": self.remark(p),
            "corp_name": r.hospital(p, "wecom", current_only=True) if rng.random() < 0.65 else "",
            "position": r.title(p, en_rate=0.03, role_rate=0.1) if rng.random() < 0.5 else "",
            "rep_userid": rep.userid if rng.random() < 0.9 else rng.choice(self.w.reps).userid,
            "add_time": _rand_ts(rng),
        }
        has_unionid = rng.random() < 0.5
        if not has_unionid and p.follows and unionid in p.follows:
            # WeCom's external-contact API returns the unionid of contacts who also follow the
            # (same-subject) official account
            has_unionid = self.rng_id.random() < UNIONID_CAPTURE["wecom_follower"]
        if has_unionid:
            row["unionid"] = unionid
        if rng.random() < 0.3:
            row["mobile"] = r.phone(p, "wecom", alt=0.2, typo=0.005)
        return self._finish(WECOM, p, row)

    def events(self, p: Person) -> Row:
        rng, r = self.rng, self.r
        ev = rng.choice(pools.EVENT_NAMES)
        ev = ev.format(n=rng.randrange(27, 30), city=p.hosp.city, province=p.hosp.province)
        phone: Any = (
            r.phone(p, "events", alt=0.2, landline=0.08, rep=0.05, typo=0.01) if rng.random() < 0.97 else None
        )
        if isinstance(phone, str) and phone.isdigit() and len(phone) == 11 and rng.random() < 0.25:
            phone = int(phone)  # numeric cell, as when the sheet was typed in Excel
        row = {
            "报名编号": None,
            "姓名": r.zh_name(p, 0.04),
            "单位": r.hospital(p, "events"),
            "科室": r.department(p) if rng.random() < 0.95 else None,
            "职务": r.title(p, stale_rate=0.03, role_rate=0.3) if rng.random() < 0.9 else None,
            "电话": phone,
            "会议名称": ev,
            "报名时间": _fmt_ts(_rand_ts(rng), "%Y/%m/%d %H:%M"),
            "是否签到": "是" if rng.random() < 0.8 else "否",
        }
        uid = self.login_unionid(p, "events")
        if uid is not None:
            row["微信UnionID"] = uid
        return self._finish(EVENTS, p, row)

    def survey(self, p: Person) -> Row:
        rng, r = self.rng, self.r
        name = r.zh_name(p, 0.04) if rng.random() < 0.97 else p.surname + rng.choice(("老师", "医生"))
        lic = None
        if p.license and rng.random() < 0.4:
            lic = p.license if rng.random() < 0.99 else typo_digit(rng, p.license[:11]) + p.license[11:]
        base = rng.randrange(2, 6)
        row = {
            "response_id": None,
            "survey_name": rng.choice(pools.SURVEY_NAMES),
            "respondent_name": name,
            "phone": r.phone(p, "survey", alt=0.3, landline=0.05, typo=0.01) if rng.random() < 0.95 else None,
            "hospital": r.hospital(p, "survey") or None,
            "department": r.department(p) if rng.random() < 0.92 else None,
            "title": r.title(p, stale_rate=0.03) if rng.random() < 0.9 else None,
            "license_no": lic,
            "submitted_at": _fmt_ts(_rand_ts(rng), "%Y-%m-%dT%H:%M:%S+08:00"),
            **{f"q{i}_score": max(1, min(5, base + rng.randrange(-1, 2))) for i in range(1, 6)},
            "q6_nps": max(0, min(10, base * 2 + rng.randrange(-2, 3))),
            "q7_comment": rng.choice(
                ("", "", "", "希望多一些病例分享", "内容很实用", "时间安排再灵活些", "无")
            ),
        }
        return self._finish(SURVEY, p, row)

    def patient(self, p: Person) -> Row:
        rng, r = self.rng, self.r
        row = {
            "患者编号": None,
            "姓名": r.zh_name(p, 0.03),
            "性别": p.gender if rng.random() < 0.98 else "",
            "手机": r.phone(p, "patients", typo=0.01) if rng.random() < 0.99 else "",
            "城市": _city_forms(rng, p.city) if rng.random() < 0.95 else "",
            "出生年份": p.birth_year,
            "病种": p.dtype,
            "入组时间": _fmt_ts(_rand_ts(rng), "%Y-%m-%d"),
            "健康管家": rng.choice(self.w.health_managers),
            "知情同意": "是" if rng.random() < 0.98 else "否",
        }
        return self._finish(PATIENTS, p, row)

    # ------------------------------------------------------------------------------------------
    def hcp_rows(self, p: Person, bufs: dict[str, list[Row]], events_p: float) -> None:
        rng = self.rng
        in_crm = rng.random() < 0.70
        if in_crm:
            bufs["crm"].append(self.crm(p))
            if rng.random() < 0.02 or (p.prev_hosp is not None and rng.random() < 0.3):
                bufs["crm"].append(self.crm(p, dup=True))
        if rng.random() < 0.50:
            n = 1 + _W_EXTRA_SIGNUPS.pick(rng)
            for _ in range(n):
                bufs["webinar"].append(self.webinar(p))
        if rng.random() < 0.40:
            bufs["wechat"].append(self.wechat(p))
            if p.unionid2 and rng.random() < 0.6:
                bufs["wechat"].append(self.wechat(p, second=True))
        if rng.random() < (0.45 if in_crm else 0.12):
            bufs["wecom"].append(self.wecom(p))
            if p.unionid2 and rng.random() < 0.4:
                bufs["wecom"].append(self.wecom(p, second=True))
        if rng.random() < events_p:
            x = rng.random()
            for _ in range(1 if x < 0.82 else 2 if x < 0.97 else 3):
                bufs["events"].append(self.events(p))
        if rng.random() < 0.15:
            for _ in range(1 if rng.random() < 0.88 else 2):
                bufs["survey"].append(self.survey(p))

    def patient_rows(self, p: Person, bufs: dict[str, list[Row]]) -> None:
        bufs["patients"].append(self.patient(p))
        if self.rng.random() < 0.04:  # re-enrolled in a later camp
            bufs["patients"].append(self.patient(p))


_W_EXTRA_SIGNUPS = Weighted(((0, 60), (1, 25), (2, 10), (3, 3), (4, 2)))

# Share of rows that captured the WeChat unionid (docs/identity.md, "How realistic is synth"):
# the webinar platform requires WeChat login (the rest registered by SMS / a link forwarded by
# the rep); event sign-ups mostly come through the WeChat mini-program (the rest are paper sheets
# typed in); WeCom returns the unionid for contacts who also follow the official account.
UNIONID_CAPTURE = {"webinar": 0.75, "events": 0.65, "wecom_follower": 0.95}
_VERIFICATION_KEYS = (
    "real_name", "verified_hospital", "verified_department", "verified_title", "verified_mobile",
    "hcp_verified_at",
)  # fmt: skip
#: Share of HCP followers of the official account who completed its HCP verification (医生认证):
#: pharma accounts gate prescription-drug content behind it (《药品广告审查办法》: prescription
#: information only to healthcare professionals), so engaged followers verify; the rest follow
#: anonymously (docs/identity.md, "How realistic is synth").
HCP_VERIFICATION = 0.45
#: when the person has a second WeChat account, the share of logins made with it
SECOND_ACCOUNT_LOGIN = 0.3


# ----------------------------------------------------------------------------------------------
# writers
# ----------------------------------------------------------------------------------------------
class _CsvSink:
    def __init__(self, path: Path, spec: SourceSpec):
        self.f = open(path, "w", encoding=spec.encoding, newline="")  # noqa: SIM115
        self.w = csv.writer(self.f)  # \r\n, like Excel / most export tools
        self.w.writerow(spec.columns)
        self.cols = spec.columns

    def write(self, rows: Sequence[dict]) -> None:
        cols = self.cols
        self.w.writerows([["" if r.get(c) is None else r.get(c) for c in cols] for r in rows])

    def close(self) -> None:
        self.f.close()


class _JsonlSink:
    def __init__(self, path: Path, spec: SourceSpec):
        self.f = open(path, "wb")  # noqa: SIM115

    def write(self, rows: Sequence[dict]) -> None:
        self.f.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    def close(self) -> None:
        self.f.close()


class _XlsxSink:
    def __init__(self, path: Path, spec: SourceSpec):
        self.path = path
        self.wb = Workbook(write_only=True)
        self.ws = self.wb.create_sheet("报名表")
        self.ws.append(list(spec.columns))
        self.cols = spec.columns

    def write(self, rows: Sequence[dict]) -> None:
        cols, ws = self.cols, self.ws
        for r in rows:
            ws.append([r.get(c) for c in cols])

    def close(self) -> None:
        fixed = dt.datetime(2026, 6, 30)
        self.wb.properties.created = fixed
        self.wb.properties.modified = fixed
        self.wb.properties.creator = "medscrm.synth"
        self.wb.save(self.path)
        _make_zip_deterministic(self.path)


def _make_zip_deterministic(path: Path) -> None:
    """Rewrite an OOXML zip with fixed entry timestamps and fixed docProps dates."""
    with zipfile.ZipFile(path) as zin:
        entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries:
            if name == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)", rf"\g<1>{FIXED_ISO}\g<3>", text
                )
                data = text.encode("utf-8")
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zout.writestr(info, data)
    path.write_bytes(buf.getvalue())


class _ParquetSink:
    def __init__(self, path: Path, spec: SourceSpec):
        self.pa = pa
        int_cols = {c for c in spec.columns if spec.custom_types.get(spec.custom.get(c, "")) == "int"}
        self.schema = pa.schema([(c, pa.int32() if c in int_cols else pa.string()) for c in spec.columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.cols = spec.columns
        self.empty = True

    def write(self, rows: Sequence[dict]) -> None:
        if not rows:
            return
        data = {c: [r.get(c) for r in rows] for c in self.cols}
        self.writer.write_table(self.pa.Table.from_pydict(data, schema=self.schema))
        self.empty = False

    def close(self) -> None:
        if self.empty:
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


_SINKS: dict[str, Callable[[Path, SourceSpec], Any]] = {
    "csv": _CsvSink,
    "jsonl": _JsonlSink,
    "xlsx": _XlsxSink,
    "parquet": _ParquetSink,
}
_KEY_FORMAT = {
    "crm": "C{:09d}",
    "webinar": "WS{:010d}",
    "events": "EV{:08d}",
    "survey": "RSP{:09d}",
    "patients": "PT{:08d}",
}


def write_mapping(path: Path, spec: SourceSpec) -> None:
    header = f"# Importer mapping for {spec.file} ({spec.format}). Generated by medscrm.synth.\n"
    text = yaml.safe_dump(spec.mapping_doc(), allow_unicode=True, sort_keys=False, width=1000)
    path.write_text(header + text, encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------------
@dataclass
class _Counters:
    rows: dict[str, int] = field(default_factory=dict)
    total: int = 0
    bad: int = 0


def generate(
    out_dir: Path,
    *,
    hcps: int,
    seed: int = 42,
    patients: int | None = None,
    bad_row_rate: float = 0.01,
    progress: bool = False,
) -> SynthManifest:
    """Generate a synthetic tenant's source exports into ``out_dir``; return (and write) the manifest.

    Files: one per source (see :mod:`medscrm.synth.sources`), ``mappings/<source>.yaml``,
    ``ground_truth.csv``, ``all_records.csv``, ``persons.csv`` and ``manifest.json``.
    """
    if hcps < 0:
        raise ValueError("hcps must be >= 0")
    if not 0.0 <= bad_row_rate <= 1.0:
        raise ValueError("bad_row_rate must be within [0, 1]")
    n_patients = hcps // 5 if patients is None else patients
    out_dir = Path(out_dir)
    (out_dir / "mappings").mkdir(parents=True, exist_ok=True)

    world = World(seed, hcps, bad_row_rate)
    builder = Builder(world)
    rng = world.rng
    specs = [s for s in ALL_SOURCES if s is not PATIENTS or n_patients > 0]
    for spec in specs:
        write_mapping(out_dir / "mappings" / f"{spec.name}.yaml", spec)

    events_p = 0.20
    if hcps > EVENTS_MAX_ROWS:
        events_p = 0.20 * min(1.0, (EVENTS_MAX_ROWS * 0.93) / (hcps * 0.20 * 1.21))

    sinks = {s.name: _SINKS[s.format](out_dir / s.file, s) for s in specs}
    counts = _Counters(rows={s.name: 0 for s in specs})
    gt_f = open(out_dir / "ground_truth.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
    ar_f = open(out_dir / "all_records.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
    ps_f = open(out_dir / "persons.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
    gt_w = csv.writer(gt_f, lineterminator="\n")
    ar_w = csv.writer(ar_f, lineterminator="\n")
    ps_w = csv.writer(ps_f, lineterminator="\n")
    gt_w.writerow(GROUND_TRUTH_COLUMNS)
    ar_w.writerow(RESOLVE_COLUMNS)
    ps_w.writerow(_PERSON_COLUMNS)
    resolve_fields = RESOLVE_COLUMNS[3:]
    field_cols = {s.name: [s.cols_for(f) for f in resolve_fields] for s in specs}

    def _first(row: dict, cols: tuple[str, ...]) -> str:
        for c in cols:  # several columns may feed one field: the first non-empty wins
            v = row.get(c)
            if v is not None and str(v).strip():
                return str(v)
        return ""

    def flush(bufs: dict[str, list[Row]]) -> None:
        for spec in specs:
            buf = bufs[spec.name]
            if not buf:
                continue
            rng.shuffle(buf)
            if spec is EVENTS and counts.rows["events"] + len(buf) > EVENTS_MAX_ROWS:
                del buf[EVENTS_MAX_ROWS - counts.rows["events"] :]
            keyfmt = _KEY_FORMAT.get(spec.name)
            n0 = counts.rows[spec.name]
            gt_rows, ar_rows = [], []
            cols = field_cols[spec.name]
            for k, (pkey, ptype, row, bad) in enumerate(buf):
                if keyfmt is not None:
                    row[spec.record_key] = keyfmt.format(n0 + k + 1)
                skey = str(row[spec.record_key])
                rid = f"{spec.name}:{skey}"
                gt_rows.append((rid, spec.name, skey, pkey, ptype, bad))
                ar_rows.append([rid, spec.name, ptype] + [_first(row, c) for c in cols])
                counts.bad += bad
            sinks[spec.name].write([b[2] for b in buf])
            gt_w.writerows(gt_rows)
            ar_w.writerows(ar_rows)
            counts.rows[spec.name] = n0 + len(buf)
            counts.total += len(buf)

    prog = None
    if progress:
        prog = Progress(
            TextColumn("[bold]synth[/] {task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
        )  # fmt: skip
        prog.start()
        t_hcp = prog.add_task("HCPs", total=hcps)
        t_pat = prog.add_task("patients", total=n_patients)
    try:
        for start in range(0, hcps, CHUNK):
            bufs: dict[str, list[Row]] = {s.name: [] for s in specs}
            stop = min(hcps, start + CHUNK)
            for i in range(start, stop):
                p = world.make_hcp(i)
                builder.hcp_rows(p, bufs, events_p)
                ps_w.writerow(_person_row(p))
            flush(bufs)
            if prog is not None:
                prog.update(t_hcp, completed=stop)
        for start in range(0, n_patients, CHUNK):
            bufs = {s.name: [] for s in specs}
            stop = min(n_patients, start + CHUNK)
            for j in range(start, stop):
                p = world.make_patient(j)
                builder.patient_rows(p, bufs)
                ps_w.writerow(_person_row(p))
            flush(bufs)
            if prog is not None:
                prog.update(t_pat, completed=stop)
    finally:
        for sink in sinks.values():
            sink.close()
        gt_f.close()
        ar_f.close()
        ps_f.close()
        if prog is not None:
            prog.stop()

    manifest = SynthManifest(
        seed=seed,
        hcps=hcps,
        patients=n_patients,
        tenant=TENANT,
        bad_row_rate=bad_row_rate,
        total_rows=counts.total,
        bad_rows=counts.bad,
        sources=[
            SourceInfo(
                name=s.name,
                file=s.file,
                format=s.format,
                encoding=s.encoding,
                mapping=f"mappings/{s.name}.yaml",
                rows=counts.rows[s.name],
                description=s.description,
                person_type=s.person_type,
            )
            for s in specs
        ],
    )
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


_PERSON_COLUMNS = (
    "person_key", "person_type", "name", "gender", "hospital_id", "hospital", "department", "title",
    "city", "province", "phone", "phone2", "email", "license_no", "wechat_unionid", "wechat_unionid2",
    "wecom_external_userid", "diabetes_type", "birth_year",
)  # fmt: skip


def _person_row(p: Person) -> list:
    h: Hospital | None = p.hosp
    return [
        p.key, p.ptype, p.name, p.gender, h.hid if h else "", h.name if h else "",
        p.dept[0] if p.dept else "", p.title[0] if p.title else "",
        h.city if h else p.city, h.province if h else "", p.phone, p.phone2 or "", p.email or "",
        p.license or "", p.unionid or "", p.unionid2 or "", p.ext_id or "", p.dtype or "", p.birth_year or "",
    ]  # fmt: skip
