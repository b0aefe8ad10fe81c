"""Match configuration as data: load ``settings/<person_type>.yaml`` and compile it.

The same comparison-level definitions are compiled to Splink SQL (:func:`splink_settings`) and to
a pure-Python evaluator (:func:`level_of`), so Splink's gamma levels and :mod:`explain` agree.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from jellyfish import jaro_winkler_similarity as _jw
from jellyfish import levenshtein_distance as _lev

__all__ = [
    "MatchSettings",
    "load_settings",
    "splink_settings",
    "level_of",
    "jaro_winkler",
    "levenshtein",
]

MatchSettings = dict[str, Any]
#: The packaged settings files (hcp.yaml, patient.yaml).
SETTINGS_DIR = Path(__file__).resolve().parent / "settings"


def load_settings(settings: str | Path | dict | None = None, person_type: str = "hcp") -> MatchSettings:
    """A settings file path, a dict, or None (the packaged default for ``person_type``)."""
    if isinstance(settings, dict):
        return copy.deepcopy(settings)
    if settings is None:
        path = SETTINGS_DIR / f"{person_type}.yaml"
        if not path.exists():
            raise ValueError(f"no packaged match settings for person type {person_type!r}")
        text = path.read_text(encoding="utf-8")
    else:
        text = Path(settings).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    _validate(data)
    return data


def _validate(data: dict) -> None:
    for key in ("thresholds", "blocking_rules", "comparisons", "guards", "training"):
        if key not in data:
            raise ValueError(f"match settings: missing section {key!r}")
    for comp in data["comparisons"]:
        levels = comp.get("levels") or []
        if not levels or not levels[0].get("null_level"):
            raise ValueError(f"comparison {comp.get('name')!r}: the first level must be the null level")
        if levels[-1].get("when"):
            raise ValueError(f"comparison {comp.get('name')!r}: the last level must be the else level")
        for lv in levels:
            for cond in lv.get("when") or []:
                if len(cond) != 1 or next(iter(cond)) not in _KINDS:
                    raise ValueError(f"comparison {comp.get('name')!r}: bad condition {cond!r}")


_KINDS = ("missing", "exact", "jw", "lev", "absdiff", "either")


def _cond_sql(cond: dict, dialect: str) -> str:
    kind, arg = next(iter(cond.items()))
    jw = "jaro_winkler" if dialect == "spark" else "jaro_winkler_similarity"
    # identifier quoting: Spark SQL reads "x" as a string literal, it quotes identifiers with backticks
    q = "`" if dialect == "spark" else '"'
    if kind == "missing":
        return f"{q}{arg}_l{q} IS NULL OR {q}{arg}_r{q} IS NULL"
    if kind == "exact":
        return f"{q}{arg}_l{q} = {q}{arg}_r{q}"
    if kind == "jw":
        col, t = arg
        return f"{jw}({q}{col}_l{q}, {q}{col}_r{q}) >= {float(t)}"
    if kind == "lev":
        col, k = arg
        return f"levenshtein({q}{col}_l{q}, {q}{col}_r{q}) <= {int(k)}"
    if kind == "absdiff":
        col, k = arg
        return f"abs({q}{col}_l{q} - {q}{col}_r{q}) <= {int(k)}"
    if kind == "either":
        return f"({q}{arg}_l{q} = 1 OR {q}{arg}_r{q} = 1)"
    raise ValueError(kind)


_JW_CALL_RE = re.compile(r"\bjaro_winkler\s*\(", re.IGNORECASE)


def rule_sql(rule: str, dialect: str = "duckdb") -> str:
    """A blocking / training rule in the engine's SQL: the settings write the portable
    ``jaro_winkler(l.c, r.c)`` (a similarity in [0, 1]); DuckDB calls it ``jaro_winkler_similarity``."""
    if dialect == "spark":
        return rule
    return _JW_CALL_RE.sub("jaro_winkler_similarity(", rule)


_EITHER_PART_RE = re.compile(r"\(\s*l\.(\w+)\s*=\s*1\s+or\s+r\.\1\s*=\s*1\s*\)", re.IGNORECASE)


def prediction_rules(rules: list[str], dialect: str = "duckdb") -> list[str]:
    """The blocking rules as Splink runs them: a rule with an either-side flag
    ``(l.f = 1 or r.f = 1)`` becomes two rules, ``... and l.f = 1`` then ``... and r.f = 1`` (the
    same pairs: Splink drops the second rule's pairs already found by the first). A one-sided
    filter is pushed below the join; the OR form joined every pair of the block and filtered after."""
    out = []
    for rule in rules:
        m = _EITHER_PART_RE.search(rule)
        if m is None:
            out.append(rule_sql(rule, dialect))
            continue
        for side in ("l", "r"):
            out.append(rule_sql(rule[: m.start()] + f"{side}.{m.group(1)} = 1" + rule[m.end() :], dialect))
    return out


def rule_columns(rule: str) -> set[str]:
    """The feature columns a blocking / training rule reads (``l.col`` / ``r.col``)."""
    return set(re.findall(r"\b[lr]\.(\w+)", rule))


def _level_sql(level: dict, dialect: str) -> str:
    conds = level.get("when") or []
    if not conds:
        return "ELSE"
    if len(conds) == 1:
        return _cond_sql(conds[0], dialect)
    return " AND ".join(f"({_cond_sql(c, dialect)})" for c in conds)


def splink_settings(settings: MatchSettings, dialect: str = "duckdb", model: dict | None = None) -> dict:
    """The Splink settings dict; with ``model`` (a trained Splink model dict) its m/u are reused."""
    trained: dict[str, list[dict]] = {}
    if model:
        for c in model.get("comparisons", []):
            trained[c["output_column_name"]] = c["comparison_levels"]
    comparisons = []
    for comp in settings["comparisons"]:
        levels = []
        tlevels = trained.get(comp["name"])
        for i, lv in enumerate(comp["levels"]):
            d: dict[str, Any] = {"sql_condition": _level_sql(lv, dialect), "label_for_charts": lv["label"]}
            if lv.get("null_level"):
                d["is_null_level"] = True
            else:
                if lv.get("m") is not None:
                    d["m_probability"] = float(lv["m"])
                if lv.get("tf"):
                    d["tf_adjustment_column"] = lv["tf"]
                    d["tf_adjustment_weight"] = float(lv.get("tf_weight", 1.0))
                if tlevels and i < len(tlevels):
                    for k in ("m_probability", "u_probability"):
                        if tlevels[i].get(k) is not None:
                            d[k] = tlevels[i][k]
            levels.append(d)
        comparisons.append(
            {
                "output_column_name": comp["name"],
                "comparison_levels": levels,
                "comparison_description": comp["name"],
            }
        )
    out = {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": prediction_rules(list(settings["blocking_rules"]), dialect),
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": [],
        "max_iterations": 25,
        "em_convergence": 0.0001,
    }
    if model and model.get("probability_two_random_records_match"):
        out["probability_two_random_records_match"] = model["probability_two_random_records_match"]
    return out


# ------------------------------------------------------------------------------------------------
# pure-Python evaluation of the same levels


@lru_cache(maxsize=200_000)
def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity (the standard definition, prefix weight 0.1 over at most 4
    characters, boost above 0.7: as DuckDB and rapidfuzz compute it, so Splink agrees), through
    jellyfish's native implementation; equal strings (two empty ones included) are 1.0."""
    if a == b:
        return 1.0
    return _jw(a, b)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (jellyfish's native implementation)."""
    if a == b:
        return 0
    return _lev(a, b)


_PD_NA = pd.NA


def _isnull(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is _PD_NA


def _cond_py(cond: dict, left: dict, right: dict) -> bool:
    kind, arg = next(iter(cond.items()))
    if kind == "missing":
        return _isnull(left.get(arg)) or _isnull(right.get(arg))
    if kind == "either":
        return (not _isnull(left.get(arg)) and int(left[arg]) == 1) or (
            not _isnull(right.get(arg)) and int(right[arg]) == 1
        )
    col = arg if kind == "exact" else arg[0]
    a, b = left.get(col), right.get(col)
    if _isnull(a) or _isnull(b):
        return False  # SQL: comparisons with NULL are not true
    if kind == "exact":
        return a == b
    if kind == "jw":
        return jaro_winkler(str(a), str(b)) >= float(arg[1])
    if kind == "lev":
        return levenshtein(str(a), str(b)) <= int(arg[1])
    if kind == "absdiff":
        return abs(int(a) - int(b)) <= int(arg[1])
    raise ValueError(kind)


def level_of(comp: dict, left: dict, right: dict) -> int:
    """The gamma value Splink assigns: -1 for the null level, else levels counted from the else level
    (0) upwards (Splink numbers the non-null levels from the top, highest first)."""
    levels = comp["levels"]
    n = len(levels) - 1  # non-null levels
    for i, lv in enumerate(levels):
        conds = lv.get("when") or []
        if all(_cond_py(c, left, right) for c in conds):
            if lv.get("null_level"):
                return -1
            return n - i
    return 0


def _within_one(a: str, b: str) -> bool:
    """Levenshtein distance <= 1, in linear time."""
    la, lb = len(a), len(b)
    if la < lb:
        a, b, la, lb = b, a, lb, la
    if la - lb > 1:
        return False
    i = 0
    while i < lb and a[i] == b[i]:
        i += 1
    if la == lb:
        return a[i + 1 :] == b[i + 1 :]
    return a[i + 1 :] == b[i:]


def compile_levels(comp: dict):
    """``level_of`` for one comparison, compiled once to Python code: ``fn(left, right) -> gamma``."""
    levels = comp["levels"]
    n = len(levels) - 1
    cols: list[str] = []
    for lv in levels:
        for cond in lv.get("when") or []:
            arg = next(iter(cond.values()))
            c = arg if isinstance(arg, str) else arg[0]
            if c not in cols:
                cols.append(c)
    var = {c: i for i, c in enumerate(cols)}
    lines = ["def gamma(left, right):"]
    for c, i in var.items():
        for side, v in (("left", "l"), ("right", "r")):
            lines.append(f"    {v}{i} = {side}.get({c!r})")
            lines.append(f"    if {v}{i} is not None and {v}{i}.__class__ is not str and _isnull({v}{i}):")
            lines.append(f"        {v}{i} = None")
    consts: dict[str, Any] = {}
    for k, lv in enumerate(levels):
        g = -1 if lv.get("null_level") else n - k
        exprs = []
        for cond in lv.get("when") or []:
            kind, arg = next(iter(cond.items()))
            i = var[arg if isinstance(arg, str) else arg[0]]
            a, b = f"l{i}", f"r{i}"
            both = f"({a} is not None and {b} is not None"
            if kind == "missing":
                exprs.append(f"({a} is None or {b} is None)")
            elif kind == "either":
                exprs.append(f"(({a} is not None and int({a}) == 1) or ({b} is not None and int({b}) == 1))")
            elif kind == "exact":
                exprs.append(f"{both} and {a} == {b})")
            elif kind == "jw":
                name = f"_c{len(consts)}"
                consts[name] = float(arg[1])
                exprs.append(f"{both} and jaro_winkler(str({a}), str({b})) >= {name})")
            elif kind == "lev":
                name = f"_c{len(consts)}"
                consts[name] = int(arg[1])
                if int(arg[1]) == 1:
                    exprs.append(f"{both} and _within_one(str({a}), str({b})))")
                else:
                    exprs.append(f"{both} and levenshtein(str({a}), str({b})) <= {name})")
            elif kind == "absdiff":
                name = f"_c{len(consts)}"
                consts[name] = int(arg[1])
                exprs.append(f"{both} and abs(int({a}) - int({b})) <= {name})")
            else:  # pragma: no cover - validated when loading
                raise ValueError(kind)
        if exprs:
            lines.append(f"    if {' and '.join(exprs)}:")
            lines.append(f"        return {g}")
        else:
            lines.append(f"    return {g}")
            break
    else:
        lines.append("    return 0")
    ns: dict[str, Any] = {
        "_isnull": _isnull,
        "jaro_winkler": jaro_winkler,
        "levenshtein": levenshtein,
        "_within_one": _within_one,
        **consts,
    }
    exec(compile("\n".join(lines), f"<comparison {comp.get('name')}>", "exec"), ns)  # noqa: S102
    return ns["gamma"]
