"""Deterministic links on strong identifiers, with guards against shared / recycled values.

For every value of a strong identifier (licence number, unionid, WeCom external id, phone, e-mail)
the records holding it are grouped by *name compatibility* (same pinyin token form, or Jaro-Winkler
≥ ``name_compatible_jw``; nicknames and nameless records join the single group whose surname fits).
A value used by more than ``max_persons_per_value[column]`` such persons is not an identity (a
department landline, a rep's phone used to register doctors, a relative's phone): it yields no link
and is nulled in the feature table so it gives no evidence to the probabilistic model either.
Records whose licence numbers differ are never linked deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .cluster import same_identifier
from .settings import MatchSettings, jaro_winkler

__all__ = ["DeterministicResult", "deterministic_links"]


@dataclass
class DeterministicResult:
    edges: pd.DataFrame  # unique_id_l, unique_id_r, column
    shared: list[dict] = field(default_factory=list)  # values dropped as identifiers
    features: pd.DataFrame | None = None  # features with shared values nulled


def _name_groups(
    names: list[str | None],
    surnames: list[str | None],
    jw: float,
    givens: list[str | None] | None = None,
    nicks: list[str | None] | None = None,
) -> list[int | None]:
    """Group index per record (None: cannot be attributed). Full names first, then partials.

    A nickname joins the single group it is compatible with: the same surname (张医生, Dr. Zhang)
    or a given-name diminutive whose characters are in the group's given name (小梅 → 戚萍梅)."""
    keys: list[str] = []
    out: list[int | None] = [None] * len(names)
    for i, nm in enumerate(names):
        if nm is None:
            continue
        for g, k in enumerate(keys):
            if nm == k or jaro_winkler(nm, k) >= jw:
                out[i] = g
                break
        else:
            keys.append(nm)
            out[i] = len(keys) - 1
    key_surnames: dict[int, set[str]] = {}
    key_givens: dict[int, set[str]] = {}
    for i, g in enumerate(out):
        if g is None:
            continue
        if surnames[i]:
            key_surnames.setdefault(g, set()).add(surnames[i])
        if givens is not None and givens[i]:
            key_givens.setdefault(g, set()).add(givens[i])
    for i, nm in enumerate(names):
        if nm is not None:
            continue
        if not keys:
            out[i] = 0  # nobody named: one (unnamed) person
            continue
        fits: set[int] = set()
        if surnames[i]:
            fits |= {g for g, s in key_surnames.items() if surnames[i] in s}
        nick = nicks[i] if nicks is not None else None
        if nick:
            fits |= {g for g, gv in key_givens.items() if any(all(c in x for c in nick) for x in gv)}
        if len(fits) == 1:
            out[i] = next(iter(fits))
        elif not surnames[i] and not nick and len(keys) == 1:
            out[i] = 0
    return out


def _value_groups(values: np.ndarray, mask: np.ndarray) -> Iterator[tuple[object, list[int]]]:
    """(value, ascending row positions) for every value held by the rows in ``mask``, by value."""
    pos_all = np.flatnonzero(mask)
    codes, uniques = pd.factorize(values[pos_all], sort=True)
    order = np.argsort(codes, kind="stable")
    sorted_pos = pos_all[order]
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    for k, pos in enumerate(np.split(sorted_pos, cuts)):
        yield uniques[k], pos.tolist()


def _same_name_pair(pos: list[int], name_py: np.ndarray, account: bool, cjk_full: np.ndarray) -> bool:
    """Two records with the same (present) name: one person, whatever the other columns say."""
    a, b = pos
    if account and not (cjk_full[a] and cjk_full[b]):
        return False
    return name_py[a] is not None and name_py[a] == name_py[b]


def _objects(s: pd.Series) -> np.ndarray:
    """The column as Python objects with None for every missing value. A text column in pandas'
    string dtype (the default from pandas 3 on) holds NaN, a float, where the value is missing:
    the checks below (``is None``, truthiness, string similarity) need None there."""
    arr = s.to_numpy(dtype=object)
    return np.where(pd.isna(arr), None, arr)


def deterministic_links(features: pd.DataFrame, settings: MatchSettings) -> DeterministicResult:
    guards = settings["guards"]
    limits = guards.get("max_persons_per_value") or {}
    jw = float(guards.get("name_compatible_jw", 0.9))
    cols = [c for c in guards.get("deterministic_columns") or [] if c in features.columns]
    feats = features.copy()
    edges: list[tuple[str, str, str]] = []
    shared: list[dict] = []
    uid = feats["unique_id"].to_numpy()
    name_py = _objects(feats["name_py"])
    surname = _objects(feats["surname_py"])
    given = _objects(feats["name_given"]) if "name_given" in feats.columns else None
    nick = _objects(feats["name_nick"]) if "name_nick" in feats.columns else None
    accounts = set(guards.get("account_columns") or [])
    lic = _objects(feats["license_no"]) if "license_no" in feats.columns else None
    # a full CJK name (given name present): the only kind that argues against an account id
    cjk_full = (
        feats["name_given"].map(lambda g: isinstance(g, str) and bool(g)).to_numpy(bool)
        if "name_given" in feats.columns
        else np.zeros(len(feats), bool)
    )
    for col in cols:
        s = feats[col]
        mask = (s.notna() & s.duplicated(keep=False)).to_numpy(bool)
        if not mask.any():
            continue
        limit = int(limits.get(col, 1))
        to_null: list[int] = []
        for value, pos in _value_groups(s.to_numpy(object), mask):
            if len(pos) == 2 and _same_name_pair(pos, name_py, col in accounts, cjk_full):
                groups: list[int | None] = [0, 0]  # the common case: two records, one name
            elif col in accounts:
                # an account id (unionid, WeCom id) belongs to one WeChat user whatever the display
                # names say; only two different Chinese full names argue against it
                groups = _name_groups(
                    [name_py[p] if cjk_full[p] else None for p in pos],
                    [None] * len(pos),
                    jw,
                    [given[p] for p in pos] if given is not None else None,
                    [nick[p] for p in pos] if nick is not None else None,
                )
            else:
                groups = _name_groups(
                    [name_py[p] for p in pos],
                    [surname[p] for p in pos],
                    jw,
                    [given[p] for p in pos] if given is not None else None,
                    [nick[p] for p in pos] if nick is not None else None,
                )
            n_persons = len({g for g in groups if g is not None} or {0})
            if n_persons > limit:
                shared.append({"column": col, "value": value, "records": len(pos), "persons": n_persons})
                to_null.extend(pos)
                continue
            by_group: dict[int, list[int]] = {}
            for p, g in zip(pos, groups, strict=True):
                if g is not None:
                    by_group.setdefault(g, []).append(p)
            for members in by_group.values():
                members.sort(key=lambda p: uid[p])
                anchor = members[0]
                for p in members[1:]:
                    if (
                        lic is not None
                        and lic[p] is not None
                        and lic[anchor] is not None
                        and not same_identifier(lic[p], lic[anchor])
                    ):
                        continue
                    a, b = sorted((uid[anchor], uid[p]))
                    edges.append((a, b, col))
        if to_null:
            feats.iloc[to_null, feats.columns.get_loc(col)] = None
    e = pd.DataFrame(edges, columns=["unique_id_l", "unique_id_r", "column"])
    e = e.drop_duplicates(["unique_id_l", "unique_id_r"]).reset_index(drop=True)
    return DeterministicResult(edges=e, shared=shared, features=feats)
