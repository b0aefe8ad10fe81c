"""Matching features computed from raw standard-schema records.

:func:`build_features` takes a pandas DataFrame with a ``record_id`` column and any standard
columns (raw, un-normalised) and returns one row per record with the columns the match model
compares (see :data:`FEATURE_COLUMNS`) plus a :class:`FeatureReport` that counts malformed
values (never silently dropped: the value is set to null for matching and counted).

Normalisation is per *distinct* value (names, hospitals, titles ... repeat a lot), cached, so the
Python cost scales with the number of distinct values rather than records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml

from medscrm.schema import person as P

from .hospitals import HospitalIndex
from .names import parse_name

__all__ = ["FEATURE_COLUMNS", "FeatureReport", "build_features", "title_rank", "STRONG_ID_COLUMNS"]

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

    def as_dict(self) -> dict:
        return {
            "records": self.records,
            "malformed": dict(self.malformed),
            "malformed_examples": {k: v[:5] for k, v in self.malformed_examples.items()},
            "unusable_records": self.unusable_records,
            "partial_names": self.partial_names,
            "hospitals_resolved": self.hospitals_resolved,
            "hospitals_unresolved": self.hospitals_unresolved,
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


def _col(df: pd.DataFrame, name: str) -> list:
    if name in df.columns:
        return df[name].tolist()
    return [None] * len(df)


def _dept(v: object) -> tuple[str | None, str | None]:
    name = P.normalize_department(v)
    info = P.department_info(v)
    group = info.code.split(".")[0] if info is not None and info.code else name
    return name, group


def build_features(
    df: pd.DataFrame, hospitals: HospitalIndex | None = None, *, default_person_type: str = "hcp"
) -> tuple[pd.DataFrame, FeatureReport]:
    """Raw records (``record_id`` + standard columns) → feature table and report."""
    hospitals = hospitals or HospitalIndex()
    report = FeatureReport(records=len(df))
    n = len(df)

    def apply(fname: str, fn: Callable[[object], object], src: str | None = None) -> list:
        f = _safe(fn, fname, report)
        out = []
        for raw in _col(df, src or fname):
            v = f(raw)
            if v is _BAD:
                report.malformed[fname] += 1
                ex = report.malformed_examples.setdefault(fname, [])
                if len(ex) < 5:
                    ex.append(str(raw)[:60])
                v = None
            out.append(v)
        return out

    ptype = apply("person_type", P.normalize_person_type)
    ptype = [p or default_person_type for p in ptype]
    names = [parse_name(v) if isinstance(v, str) else parse_name(None) for v in _col(df, "name")]
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

    hosp_id: list[str | None] = []
    for i in range(n):
        m = hospitals.resolve(hosp_text[i], city[i])
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
    out = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
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
