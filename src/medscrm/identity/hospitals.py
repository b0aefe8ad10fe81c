"""Hospital name → canonical ``hospital_id`` through the shipped alias dictionary, keyed by city.

An alias only identifies a hospital together with its city: 协和医院 is 北京协和医院 in 北京,
武汉协和医院 in 武汉 and 福建医科大学附属协和医院 in 福州. Resolution order:

1. exact key (NFKC, simplified, lower-case, no whitespace/punctuation) in the alias index; a
   campus or branch suffix (…院区, …分院, 东院, 本部) is dropped when the full name is not an alias; an
   ambiguous alias is settled by the record's city (or a city/province written in front of the
   name: "广州 孙逸仙纪念医院", "太原山医大一院"); still ambiguous → unresolved;
2. the same after dropping 省/市 and a leading city/province prefix;
3. fuzzy fallback: character-bigram Dice similarity against the names/aliases of hospitals in the
   same city (or all hospitals, with a stricter threshold, when the city is unknown); the best
   candidate must be unique and clear the threshold.

Unresolved names get a text id ``"x:<city>:<key>"`` so that two records quoting the same unknown
hospital in the same city still agree. Tenants extend the dictionary with a CSV or YAML of extra
aliases (columns/keys ``hospital_id, alias[, city]``; new hospitals may add ``name, city``).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from medscrm.reference import load_hospitals
from medscrm.schema.person import normalize_city, to_simplified

from .names import pinyin_of

__all__ = ["HospitalIndex", "HospitalMatch", "hospital_key", "load_extra_aliases"]

_KEY_DROP_RE = re.compile(r"[\s\-_·.,，。()（）\[\]【】'\"/&]+")
#: A campus or branch written after the hospital's name (in key form: no spaces or brackets):
#: 北京协和医院(西单院区), 华西医院温江院区, 瑞金医院北部院区, 中山一院东院, …医院分院/本部/总院.
#: Doctors rotate between the campuses of one hospital, so a campus is the hospital itself.
_CAMPUS_RE = re.compile(
    r"^(.{2,}?(?:医院|院))(?:[\u4e00-\u9fff]{0,6}?(?:院区|分院|院部|院本部)|[东西南北新老]院|本部|总院)$"
)


def hospital_key(text: str) -> str:
    s = unicodedata.normalize("NFKC", text)
    s = to_simplified(s).lower()
    return _KEY_DROP_RE.sub("", s)


@dataclass(frozen=True)
class HospitalMatch:
    hospital_id: str | None  # canonical id, or "x:<city>:<key>" text id, or None (no hospital)
    city: str | None  # the hospital's city when resolved
    method: str  # exact | city | prefix | fuzzy | text | none
    province: str | None = None


def _bigrams(s: str) -> frozenset[str]:
    return frozenset(s[i : i + 2] for i in range(len(s) - 1)) if len(s) > 1 else frozenset([s])


def load_extra_aliases(path: str | Path) -> list[dict]:
    """Read tenant aliases: CSV with a header or YAML (a list of mappings, or {aliases: [...]})."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or []
        if isinstance(data, dict):
            data = data.get("aliases") or []
        return [dict(d) for d in data]
    with p.open(encoding="utf-8-sig", newline="") as fh:
        return [dict(r) for r in csv.DictReader(fh)]


# Unambiguous urban districts → their city (WeChat profiles and address fields often give the district).
_DISTRICTS = {
    "北京": "东城 西城 海淀 丰台 石景山 通州 昌平 大兴 顺义 房山 门头沟 怀柔 平谷 密云 延庆",
    "上海": "黄浦 徐汇 长宁 静安 虹口 杨浦 浦东 浦东新区 闵行 宝山 嘉定 金山 松江 青浦 奉贤 崇明",
    "广州": "越秀 海珠 荔湾 天河 白云 番禺 花都 南沙 从化 增城",
    "深圳": "福田 罗湖 南山 宝安 龙岗 盐田 龙华 坪山 光明",
    "天津": "河东 南开 红桥 滨海新区 津南 东丽 西青 北辰 武清 宝坻",
    "重庆": "渝中 沙坪坝 九龙坡 南岸 渝北 大渡口 巴南 北碚",
    "成都": "锦江 青羊 金牛 武侯 成华 龙泉驿 温江 双流 郫都",
    "武汉": "江岸 江汉 硚口 汉阳 武昌 洪山 东西湖 江夏 黄陂",
    "杭州": "上城 拱墅 滨江 萧山 余杭 临平 钱塘 富阳",
    "南京": "玄武 秦淮 建邺 栖霞 雨花台 江宁 浦口 六合",
    "西安": "碑林 莲湖 雁塔 未央 灞桥 长安 临潼",
}
DISTRICT_CITY = {d: c for c, ds in _DISTRICTS.items() for d in ds.split()}
DISTRICT_CITY.update({d + "区": c for d, c in list(DISTRICT_CITY.items()) if not d.endswith("区")})


class _FuzzyPool:
    """Names as bigram sets with an inverted index: Dice similarity against the names that share
    at least one bigram with the query (the others score 0 and were never candidates)."""

    def __init__(self) -> None:
        self.hids: list[str] = []
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = {}

    def add(self, hid: str, grams: frozenset[str]) -> None:
        i = len(self.hids)
        self.hids.append(hid)
        self.sizes.append(len(grams))
        for g in grams:
            self.postings.setdefault(g, []).append(i)

    def best_dice(self, grams: frozenset[str]) -> dict[str, float]:
        """hospital id → its best Dice score against ``grams`` (only ids sharing a bigram)."""
        inter: dict[int, int] = {}
        for g in grams:
            for i in self.postings.get(g, ()):
                inter[i] = inter.get(i, 0) + 1
        best: dict[str, float] = {}
        n = len(grams)
        for i, k in inter.items():
            hid = self.hids[i]
            score = 2 * k / (n + self.sizes[i])
            if score > best.get(hid, 0.0):
                best[hid] = score
        return best


class HospitalIndex:
    def __init__(self, extra_aliases: Iterable[dict] = ()) -> None:
        self.hospitals: dict[str, dict] = {}
        self.index: dict[str, set[str]] = {}
        for h in load_hospitals():
            self.hospitals[h["hospital_id"]] = h
            for a in [h["name"], *h["aliases"]]:
                self._add(a, h["hospital_id"])
        for row in extra_aliases:
            hid = str(row.get("hospital_id") or "").strip()
            alias = str(row.get("alias") or "").strip()
            if not hid or not alias:
                continue
            if hid not in self.hospitals:
                city = normalize_city(row.get("city")) or ""
                self.hospitals[hid] = {
                    "hospital_id": hid,
                    "name": row.get("name") or alias,
                    "aliases": [],
                    "city": city,
                    "province": row.get("province") or "",
                }
                self._add(str(self.hospitals[hid]["name"]), hid)
            self._add(alias, hid)
        self.cities = sorted({h["city"] for h in self.hospitals.values() if h["city"]}, key=len, reverse=True)
        self._city_set = frozenset(self.cities)
        self._city_lengths = sorted({len(c) for c in self.cities}, reverse=True)
        self.city_by_pinyin = {pinyin_of(c): c for c in self.cities}
        for d, c in DISTRICT_CITY.items():
            self.city_by_pinyin.setdefault(pinyin_of(d), c)
        self.province_of_city = {
            h["city"]: h["province"] for h in self.hospitals.values() if h.get("province")
        }
        self.provinces = sorted(
            {h["province"] for h in self.hospitals.values() if h.get("province")}, key=len, reverse=True
        )
        # fuzzy pools (all hospitals, and per city) as inverted bigram indexes: a fuzzy lookup
        # only touches the names that share a bigram with the text
        self._by_city: dict[str, _FuzzyPool] = {}
        self._all = _FuzzyPool()
        for key, ids in self.index.items():
            if len(key) < 3:
                continue
            grams = _bigrams(key)
            for hid in ids:
                self._all.add(hid, grams)
                self._by_city.setdefault(self.hospitals[hid]["city"], _FuzzyPool()).add(hid, grams)
        self._cache: dict[tuple[str, str], HospitalMatch] = {}
        self._strict_cache: dict[tuple[str, str], HospitalMatch] = {}
        self._alias_cache: dict[str, bool] = {}

    def _add(self, alias: str, hid: str) -> None:
        k = hospital_key(alias)
        if not k:
            return
        for variant in {k, k.replace("省", "").replace("市", "")}:
            if variant:
                self.index.setdefault(variant, set()).add(hid)

    def canonical_city(self, city: str | None) -> str | None:
        """A city as the index knows it (English pinyin spellings mapped: "Taiyuan" → 太原)."""
        if not city:
            return None
        if city.isascii():
            key = "".join(city.lower().split())
            for suffix in ("district", "qu", "city", "shi"):
                if key.endswith(suffix) and key[: -len(suffix)] in self.city_by_pinyin:
                    key = key[: -len(suffix)]
            return self.city_by_pinyin.get(key, city)
        return DISTRICT_CITY.get(city, city)

    def _pick(self, ids: set[str], city: str | None) -> str | None:
        if len(ids) == 1:
            return next(iter(ids))
        if city:
            hit = [i for i in ids if self.hospitals[i]["city"] == city]
            if len(hit) == 1:
                return hit[0]
        return None

    def _lookup(self, key: str, city: str | None) -> tuple[str | None, bool]:
        ids = self.index.get(key)
        if ids is None:
            return None, False
        return self._pick(ids, city), True

    def resolve(self, text: str | None, city: str | None = None) -> HospitalMatch:
        if not text:
            return HospitalMatch(None, None, "none")
        city = self.canonical_city(city)
        ck = (text, city or "")
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._resolve(text, city)
            if len(self._cache) < 500_000:
                self._cache[ck] = hit
        return hit

    #: Index keys too generic to mark a hospital inside free text (variants of 医院 / 省立医院 ...).
    _GENERIC_KEYS = frozenset({"医院", "立医院", "一医院", "总医院", "人医"})

    def is_alias(self, text: str) -> bool:
        """True when ``text`` is a known hospital name/alias (possibly ambiguous without a city)."""
        hit = self._alias_cache.get(text)
        if hit is None:
            k = hospital_key(text)
            hit = len(k) >= 2 and k in self.index and k not in self._GENERIC_KEYS
            if len(self._alias_cache) < 1_000_000:
                self._alias_cache[text] = hit
        return hit

    def resolve_strict(self, text: str | None, city: str | None = None) -> HospitalMatch:
        """Like :meth:`resolve` but only dictionary hits (no fuzzy match, no text id): for hospitals
        found in free text, where a wrong guess costs more than no hospital."""
        if not text:
            return HospitalMatch(None, None, "none")
        city = self.canonical_city(city)
        ck = (text, city or "")
        m = self._cache.get(ck) or self._strict_cache.get(ck)
        if m is None:
            m = self._resolve(text, city, fuzzy=False)
            if len(self._strict_cache) < 500_000:
                self._strict_cache[ck] = m
        if m.method in ("exact", "city", "prefix"):
            return m
        return HospitalMatch(None, None, "none")

    def _found(self, hid: str, method: str) -> HospitalMatch:
        return HospitalMatch(
            hid, self.hospitals[hid]["city"] or None, method, self.hospitals[hid].get("province") or None
        )

    def _resolve(self, text: str, city: str | None, *, fuzzy: bool = True) -> HospitalMatch:
        key = hospital_key(text)
        if not key:
            return HospitalMatch(None, None, "none")
        hid, known = self._lookup(key, city)
        if hid:
            return self._found(hid, "exact")
        if known:  # an ambiguous alias: only the record's own city can settle it
            return HospitalMatch(f"x:{city or ''}:{key}", city, "text")
        campus = _CAMPUS_RE.match(key)
        if campus:  # a campus / branch of a hospital is that hospital (resolved without the suffix)
            return self._resolve(campus.group(1), city, fuzzy=fuzzy)
        # a city / province written in front of the name
        stripped, prefix_city = key, None
        for n in self._city_lengths:  # the longest city name the key starts with
            c = key[:n]
            if c not in self._city_set:
                continue
            if len(key) > n + 1:
                stripped, prefix_city = key[n:], c
                break
        if prefix_city is None:
            for p in self.provinces:
                if key.startswith(p) and len(key) > len(p) + 1:
                    stripped = key[len(p) :].lstrip("省市")
                    break
        use_city = city or prefix_city
        for k in (
            key,
            stripped,
            stripped.replace("省", "").replace("市", ""),
            key.replace("省", "").replace("市", ""),
        ):
            hid, k_known = self._lookup(k, use_city)
            known = known or k_known
            if hid:
                return self._found(hid, "prefix" if k != key else "city")
        if known and not use_city:
            return HospitalMatch(f"x::{key}", None, "text")  # ambiguous alias without a city
        if not fuzzy:
            return HospitalMatch(f"x:{use_city or ''}:{key}", use_city, "text")
        # fuzzy, within the city when known
        pool = self._by_city.get(use_city) if use_city else self._all
        threshold = 0.72 if use_city else 0.85
        best = pool.best_dice(_bigrams(key)) if pool is not None else {}
        if best:
            ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
            top = ranked[0]
            if top[1] >= threshold and (len(ranked) == 1 or ranked[1][1] < top[1] - 0.05):
                return self._found(top[0], "fuzzy")
        return HospitalMatch(f"x:{use_city or ''}:{key}", use_city, "text")
