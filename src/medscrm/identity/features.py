"""Matching features computed from raw standard-schema records.

:func:`build_features` takes a pandas DataFrame with a ``record_id`` column and any standard
columns (raw, un-normalised) and returns one row per record with the columns the match model
compares (see :data:`FEATURE_COLUMNS`) plus a :class:`FeatureReport` that counts malformed
values (never silently dropped: the value is set to null for matching and counted).

Normalisation is per *distinct* value (names, hospitals, titles ... repeat a lot), cached, so the
Python cost scales with the number of distinct values rather than records.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from medscrm.schema import person as P

from .hospitals import HospitalIndex, HospitalMatch
from .names import ParsedName, name_in_remark, parse_name

__all__ = [
    "FEATURE_COLUMNS",
    "FeatureReport",
    "RemarkInfo",
    "STRONG_ID_COLUMNS",
    "build_features",
    "parse_remark",
    "title_rank",
]

#: Numeric feature columns (0/1 flags and the title rank); every other one is text or None.
_NUMBER_COLUMNS = frozenset({"name_partial", "name_from_remark", "hospital_from_remark", "title_rank"})

#: Identifier columns used for deterministic links (feature column names).
STRONG_ID_COLUMNS: tuple[str, ...] = ("license_no", "unionid", "wecom_id", "phone", "email")

FEATURE_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "person_type",
    "name_full",  # normalised full name (null for nicknames)
    "name_py",  # order-insensitive pinyin token form of the full name
    "surname_py",  # surname reading (also set for nicknames)
    "name_partial",  # 1 when the name is a nickname pattern (surname only)
    "name_given",  # CJK given name of a full name (for nickname compatibility)
    "name_nick",  # given-name diminutive of a nickname (小梅, 伟伟 → 梅 / 伟)
    "name_from_remark",  # 1 when the name came from the rep's remark (the record's own was a nickname)
    "hospital_from_remark",  # 1 when the hospital came from the rep's remark
    "gender",
    "hospital_id",
    "city",
    "province",
    "department",
    "dept_group",
    "title",
    "title_rank",
    "phone",
    "email",
    "license_no",
    "unionid",
    "wecom_id",
)


@dataclass
class FeatureReport:
    records: int = 0
    malformed: Counter = field(default_factory=Counter)  # field -> count of malformed values
    malformed_examples: dict[str, list[str]] = field(default_factory=dict)
    unusable_records: int = 0  # no usable identifying field at all
    partial_names: int = 0
    hospitals_resolved: int = 0
    hospitals_unresolved: int = 0
    names_from_remark: int = 0
    hospitals_from_remark: int = 0
    phones_from_remark: int = 0

    def as_dict(self) -> dict:
        return {
            "records": self.records,
            "malformed": dict(self.malformed),
            "malformed_examples": {k: v[:5] for k, v in self.malformed_examples.items()},
            "unusable_records": self.unusable_records,
            "partial_names": self.partial_names,
            "hospitals_resolved": self.hospitals_resolved,
            "hospitals_unresolved": self.hospitals_unresolved,
            "names_from_remark": self.names_from_remark,
            "hospitals_from_remark": self.hospitals_from_remark,
            "phones_from_remark": self.phones_from_remark,
        }


_LEVEL_RANK = {"senior": 4, "associate_senior": 3, "intermediate": 2, "junior": 1, "junior_assistant": 0}


@lru_cache(maxsize=1)
def _title_levels() -> dict[str, int]:
    text = resources.files("medscrm.schema").joinpath("data", "titles.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {k: _LEVEL_RANK.get(v.get("level"), -1) for k, v in (data.get("professional") or {}).items()}


def title_rank(title: str | None) -> int | None:
    if not title:
        return None
    r = _title_levels().get(title)
    return None if r is None or r < 0 else r


def _safe(fn: Callable[[object], object], fname: str, report: FeatureReport) -> Callable[[object], object]:
    cache: dict[object, object] = {}

    def run(v: object) -> object:
        if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
            return None
        try:
            return cache[v]
        except KeyError:
            pass
        try:
            out = fn(v)
        except (P.FieldValueError, ValueError, TypeError):
            out = _BAD
        cache[v] = out
        return out

    return run


_BAD = object()


def _spread(values: list, codes: np.ndarray) -> list:
    """Per-distinct ``values`` back over the rows (``codes`` from :func:`pandas.factorize`; -1 → None)."""
    arr = np.empty(len(values) + 1, dtype=object)
    arr[: len(values)] = values
    arr[len(values)] = None
    return arr[codes].tolist()


def _col(df: pd.DataFrame, name: str) -> list:
    if name in df.columns:
        return df[name].tolist()
    return [None] * len(df)


def _dept(v: object) -> tuple[str | None, str | None]:
    name = P.normalize_department(v)
    info = P.department_info(v)
    group = info.code.split(".")[0] if info is not None and info.code else name
    return name, group


#: Columns holding a rep's free-text remark about the person (WeCom 备注).
REMARK_COLUMNS: tuple[str, ...] = ("remark", "rep_remark")

_REMARK_SPLIT_RE = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f·]+")
#: a mainland mobile number written in free text ("张伟 13800138000", "138-0013-8000", "+86 138…")
_MOBILE_IN_TEXT_RE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])")
#: a display name with more after the name: "张伟-协和心内", "李娜（华西呼吸）", "王芳 瑞金内分泌"
_NAME_WITH_ORG_RE = re.compile(r"[\u4e00-\u9fff]{2,4}\s*[-_—~|/·（(\s]\s*[\u4e00-\u9fff]{2,}")
_HOSPITAL_LIKE_RE = re.compile("[\u4e00-\u9fff]{0,8}?(?:医院|附院|[一二三四五六七八九十]院|医大)(?!长)")


@dataclass(frozen=True)
class RemarkInfo:
    """What a rep's remark says about the person (every part optional)."""

    name: ParsedName | None = None  # full name, or a surname-only nickname (王主任)
    hospital: HospitalMatch | None = None  # resolved through the alias dictionary only
    department: str | None = None  # a department alias as written (心内, 呼吸科)


_NO_REMARK = RemarkInfo()


def _spans(seg: str, found: Callable[[str], bool], min_len: int, max_len: int) -> list[tuple[int, int]]:
    """Greedy leftmost-longest substrings of ``seg`` accepted by ``found``."""
    out, i, n = [], 0, len(seg)
    while i < n:
        for j in range(min(n, i + max_len), i + min_len - 1, -1):
            if found(seg[i:j]):
                out.append((i, j))
                i = j
                break
        else:
            i += 1
    return out


def _cut(pieces: list[str], find: Callable[[str], list[tuple[int, int]]]) -> tuple[list[str], list[str]]:
    """Split every piece by the spans ``find`` returns: (matched texts, remaining pieces)."""
    hits, rest = [], []
    for p in pieces:
        last = 0
        for a, b in find(p):
            hits.append(p[a:b])
            if a > last:
                rest.append(p[last:a])
            last = b
        if last < len(p):
            rest.append(p[last:])
    return hits, rest


@lru_cache(maxsize=262144)
def _is_department(text: str) -> bool:
    info = P.department_info(text)
    return info is not None and bool(info.code)


def parse_remark(text: object, hospitals: HospitalIndex, city: str | None = None) -> RemarkInfo:
    """Parse a rep's remark ("协和 心内 张伟主任", "华西医院呼吸科李娜", "瑞金 内分泌 王主任").

    The text is cut into CJK pieces (spaces, punctuation, brackets, digits and Latin letters
    separate them; Latin text is ignored); hospital names are found through the alias dictionary
    (an ambiguous alias such as 协和 needs ``city``; a short form without 医院 such as 瑞金 is tried
    as 瑞金医院), departments through the department dictionary, and the name in what is left
    (:func:`medscrm.identity.names.name_in_remark`). Two different full names → no name. Never raises.
    """
    if not isinstance(text, str) or not text.strip():
        return _NO_REMARK
    try:
        return _parse_remark(unicodedata.normalize("NFKC", text), hospitals, city)
    except Exception:  # noqa: BLE001 - a remark that cannot be parsed says nothing
        return _NO_REMARK


def _parse_remark(text: str, hospitals: HospitalIndex, city: str | None) -> RemarkInfo:
    pieces = [p for p in _REMARK_SPLIT_RE.split(P.to_simplified(text)) if p]
    if not pieces:
        return _NO_REMARK
    hosp_txt, pieces = _cut(pieces, lambda p: _spans(p, hospitals.is_alias, 2, 14))
    more, pieces = _cut(pieces, lambda p: [m.span() for m in _HOSPITAL_LIKE_RE.finditer(p)])
    hosp_txt += more
    dept_txt, pieces = _cut(pieces, lambda p: _spans(p, _is_department, 2, 7))
    names: list[ParsedName] = []
    for p in pieces:
        if len(p) >= 2 and hospitals.resolve_strict(p + "医院", city).hospital_id:
            hosp_txt.append(p + "医院")  # 瑞金 → 瑞金医院
            continue
        pn = name_in_remark(p)
        if pn.surname_py:
            names.append(pn)
    full = {n.py_key: n for n in names if n.full}
    name = None
    if len(full) == 1:
        name = next(iter(full.values()))
    elif not full and len({n.surname_py for n in names}) == 1:
        name = names[0]
    hosp = None
    for h in hosp_txt:
        m = hospitals.resolve_strict(h, city)
        if m.hospital_id:
            if hosp is not None and hosp.hospital_id != m.hospital_id:
                hosp = None  # two different hospitals: say nothing
                break
            hosp = m
    return RemarkInfo(name=name, hospital=hosp, department=dept_txt[0] if dept_txt else None)


def build_features(
    df: pd.DataFrame, hospitals: HospitalIndex | None = None, *, default_person_type: str = "hcp"
) -> tuple[pd.DataFrame, FeatureReport]:
    """Raw records (``record_id`` + standard columns) → feature table and report."""
    hospitals = hospitals or HospitalIndex()
    report = FeatureReport(records=len(df))
    n = len(df)

    def apply(fname: str, fn: Callable[[object], object], src: str | None = None) -> list:
        # once per distinct value (factorised), then spread back over the rows
        col = src or fname
        if col not in df.columns:
            return [None] * n
        f = _safe(fn, fname, report)
        codes, uniq = pd.factorize(df[col], use_na_sentinel=True)
        vals = [f(raw) for raw in uniq.tolist()]
        bad = [k for k, v in enumerate(vals) if v is _BAD]
        if bad:
            counts = np.bincount(codes[codes >= 0], minlength=len(vals))
            ex = report.malformed_examples.setdefault(fname, [])
            for k in bad:
                report.malformed[fname] += int(counts[k])
                if len(ex) < 5:
                    ex.append(str(uniq[k])[:60])
                vals[k] = None
        return _spread(vals, codes)

    ptype = apply("person_type", P.normalize_person_type)
    ptype = [p or default_person_type for p in ptype]
    if "name" in df.columns:
        ncodes, nuniq = pd.factorize(df["name"], use_na_sentinel=True)
        names = _spread([parse_name(v if isinstance(v, str) else None) for v in nuniq.tolist()], ncodes)
        names = [parse_name(None) if p is None else p for p in names]
    else:
        names = [parse_name(None)] * n
    gender = apply("gender", P.normalize_gender)
    gender = [None if g == "U" else g for g in gender]
    city = apply("city", P.normalize_city)
    city = [hospitals.canonical_city(c) for c in city]
    province = apply("province", P.normalize_province)
    hosp_text = apply("hospital", P.normalize_hospital)
    dept = apply("department", _dept)
    title = apply("title", P.normalize_title)
    phone = apply("phone", P.normalize_phone)
    email = apply("email", P.normalize_email)
    lic = apply("license_no", P.normalize_license_no)
    unionid = apply("wechat_unionid", P.normalize_unionid)
    wecom = apply("wecom_external_userid", P.normalize_wecom_external_userid)

    # the rep's remark fills what the record lacks (never overrides a present full name,
    # hospital or department)
    name_from_remark = [0] * n
    hosp_from_remark = [0] * n
    remark_hosp: list[HospitalMatch | None] = [None] * n
    rcol = next((c for c in REMARK_COLUMNS if c in df.columns), None)
    if rcol is not None:
        rcache: dict[tuple[str, str | None], RemarkInfo] = {}
        for i, raw in enumerate(_col(df, rcol)):
            if not isinstance(raw, str) or not raw.strip():
                continue
            info = rcache.get((raw, city[i]))
            if info is None:
                info = rcache[(raw, city[i])] = parse_remark(raw, hospitals, city[i])
            own = names[i]
            if (
                info.name is not None
                and own.full is None
                and (info.name.full or (own.surname_py is None and own.nick is None))
            ):
                names[i] = info.name
                name_from_remark[i] = 1
            if info.hospital is not None and hosp_text[i] is None:
                remark_hosp[i] = info.hospital
                hosp_from_remark[i] = 1
            if info.department and dept[i] is None:
                with contextlib.suppress(P.FieldValueError, ValueError, TypeError):
                    dept[i] = _dept(info.department)
            if phone[i] is None:
                # reps often keep the mobile in the remark ("张伟 13800138000"); exactly one number
                found = {m.group(0) for m in _MOBILE_IN_TEXT_RE.finditer(unicodedata.normalize("NFKC", raw))}
                if len(found) == 1:
                    with contextlib.suppress(P.FieldValueError, ValueError, TypeError):
                        phone[i] = P.normalize_phone(found.pop())
                        report.phones_from_remark += 1
    # WeChat display names written as "实名-单位科室" (张伟-协和心内, 李娜（华西呼吸）) carry the
    # hospital and department: read them like a remark, only where the record lacks them and only
    # when the name found there is the record's own name
    ncache: dict[tuple[str, str | None], RemarkInfo] = {}
    for i, raw in enumerate(_col(df, "name")):
        if not isinstance(raw, str) or not _NAME_WITH_ORG_RE.search(raw):
            continue
        if hosp_text[i] is not None and dept[i] is not None:
            continue
        info = ncache.get((raw, city[i]))
        if info is None:
            info = ncache[(raw, city[i])] = parse_remark(raw, hospitals, city[i])
        if info.name is None or not info.name.full or info.name.py_key != names[i].py_key:
            continue
        if info.hospital is not None and hosp_text[i] is None and remark_hosp[i] is None:
            remark_hosp[i] = info.hospital
            hosp_from_remark[i] = 1
        if info.department and dept[i] is None:
            with contextlib.suppress(P.FieldValueError, ValueError, TypeError):
                dept[i] = _dept(info.department)
    report.names_from_remark = sum(name_from_remark)
    report.hospitals_from_remark = sum(hosp_from_remark)

    hosp_id: list[str | None] = []
    for i in range(n):
        m = remark_hosp[i] or hospitals.resolve(hosp_text[i], city[i])
        hosp_id.append(m.hospital_id)
        if m.hospital_id:
            if m.hospital_id.startswith("x:"):
                report.hospitals_unresolved += 1
            else:
                report.hospitals_resolved += 1
        if city[i] is None and m.city:
            city[i] = m.city
        if province[i] is None:
            province[i] = (
                m.province or hospitals.province_of_city.get(city[i]) if city[i] or m.province else None
            )

    rows = {
        "unique_id": [str(x) for x in df["record_id"].tolist()],
        "person_type": ptype,
        "name_full": [p.full for p in names],
        "name_py": [p.py_key for p in names],
        "surname_py": [p.surname_py for p in names],
        "name_partial": [1 if p.partial else 0 for p in names],
        "name_given": [p.given if p.full else None for p in names],
        "name_nick": [p.nick for p in names],
        "name_from_remark": name_from_remark,
        "hospital_from_remark": hosp_from_remark,
        "gender": gender,
        "hospital_id": hosp_id,
        "city": city,
        "province": province,
        "department": [d[0] if d else None for d in dept],
        "dept_group": [d[1] if d else None for d in dept],
        "title": title,
        "title_rank": [title_rank(t) for t in title],
        "phone": phone,
        "email": email,
        "license_no": lic,
        "unionid": unionid,
        "wecom_id": wecom,
    }
    # text columns stay Python objects with None for a missing value: pandas 3 would otherwise infer
    # its string dtype, whose missing value is NaN (a float), and every consumer tests ``is None``
    out = pd.DataFrame(
        {c: pd.Series(rows[c], dtype=None if c in _NUMBER_COLUMNS else object) for c in FEATURE_COLUMNS}
    )
    out["title_rank"] = out["title_rank"].astype("Int64")
    report.partial_names = int(out["name_partial"].sum())
    usable = (
        out["name_py"].notna()
        | out["phone"].notna()
        | out["email"].notna()
        | out["license_no"].notna()
        | out["unionid"].notna()
        | out["wecom_id"].notna()
    )
    out["usable"] = usable.astype(int)
    report.unusable_records = int((~usable).sum())
    return out, report
