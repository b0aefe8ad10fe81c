"""Reference data shipped with medscrm (hospitals, ...).

``load_hospitals()`` returns the bundled list of real Chinese hospitals used by the synthetic-data
generator and as a seed for hospital master data. Aliases are deliberately ambiguous (several
协和医院, dozens of 人民医院): an alias only identifies a hospital together with its city.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

__all__ = ["HOSPITAL_GRADES", "load_hospitals", "hospitals_by_alias"]

HOSPITAL_GRADES = ("三级甲等", "三级乙等", "二级甲等", "二级乙等", "一级", "未定级")


@lru_cache(maxsize=1)
def _hospitals() -> tuple[dict, ...]:
    text = resources.files(__package__).joinpath("data/hospitals.csv").read_text(encoding="utf-8")
    out = []
    for row in csv.DictReader(text.splitlines()):
        row["aliases"] = [a for a in row["aliases"].split("|") if a]
        out.append(row)
    return tuple(out)


def load_hospitals() -> list[dict]:
    """Return the reference hospitals as dicts.

    Keys: ``hospital_id``, ``name``, ``aliases`` (list of str: short names, English names and
    abbreviations), ``city``, ``province`` (short form, e.g. 四川), ``grade`` (one of
    :data:`HOSPITAL_GRADES`). A fresh list of fresh dicts is returned on each call.
    """
    return [{**h, "aliases": list(h["aliases"])} for h in _hospitals()]


def hospitals_by_alias() -> dict[str, list[dict]]:
    """Map every name and alias to the hospitals it may denote (ambiguous aliases map to several)."""
    out: dict[str, list[dict]] = {}
    for h in load_hospitals():
        for key in [h["name"], *h["aliases"]]:
            bucket = out.setdefault(key, [])
            if h not in bucket:
                bucket.append(h)
    return out
