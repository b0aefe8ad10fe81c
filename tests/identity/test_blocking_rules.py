"""Blocking rules as Splink runs them: the either-flag split and the portable jaro_winkler filter
produce exactly the pairs of the rule as written (checked in DuckDB on random records)."""

from __future__ import annotations

import duckdb
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.identity.incremental import parse_blocking_rule
from medscrm.identity.settings import (
    jaro_winkler,
    load_settings,
    prediction_rules,
    rule_columns,
    rule_sql,
)

NAMES = ["wang wei", "wang wen", "wang wei", "li na", "li nan", None]
RECORD = st.fixed_dictionaries(
    {
        "s": st.sampled_from(["wang", "li", None]),
        "h": st.sampled_from(["h1", "h2", None]),
        "f": st.sampled_from([0, 1]),
        "n": st.sampled_from(NAMES),
    }
)


def _pairs(con: duckdb.DuckDBPyConnection, rules: list[str]) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for r in rules:
        q = f"select l.id, r.id from df l join df r on ({r}) and l.id < r.id"
        out |= set(con.execute(q).fetchall())
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(RECORD, min_size=2, max_size=30))
def test_either_flag_split_gives_the_same_pairs(records):
    df = pd.DataFrame(records).assign(id=range(len(records)))
    con = duckdb.connect()
    con.register("df", df)
    rule = "l.s = r.s and (l.f = 1 or r.f = 1) and l.h = r.h"
    split = prediction_rules([rule])
    assert split == [
        "l.s = r.s and l.f = 1 and l.h = r.h",
        "l.s = r.s and r.f = 1 and l.h = r.h",
    ]
    assert _pairs(con, split) == _pairs(con, [rule])


@settings(max_examples=60, deadline=None)
@given(st.lists(RECORD, min_size=2, max_size=30))
def test_jaro_winkler_filter_matches_the_python_scorer(records):
    """The DuckDB form of the portable filter keeps exactly the pairs the incremental linker keeps."""
    df = pd.DataFrame(records).assign(id=range(len(records)))
    con = duckdb.connect()
    con.register("df", df)
    rule = "l.s = r.s and jaro_winkler(l.n, r.n) >= 0.88"
    got = _pairs(con, [rule_sql(rule)])
    cols, flag, similar = parse_blocking_rule(rule)
    assert (cols, flag, similar) == (("s",), None, (("n", 0.88),))
    want = {
        (i, j)
        for i in range(len(records))
        for j in range(i + 1, len(records))
        if records[i]["s"] is not None
        and records[i]["s"] == records[j]["s"]
        and records[i]["n"] is not None
        and records[j]["n"] is not None
        and (records[i]["n"] == records[j]["n"] or jaro_winkler(records[i]["n"], records[j]["n"]) >= 0.88)
    }
    assert got == want


def test_packaged_rules_translate_and_name_their_columns():
    rules = load_settings(None, "hcp")["blocking_rules"]
    translated = prediction_rules(rules)
    assert not any("jaro_winkler(" in r for r in translated)  # DuckDB spelling only
    assert any("jaro_winkler_similarity(l.name_py, r.name_py) >= 0.88" in r for r in translated)
    assert prediction_rules(rules, "spark") != translated  # Spark keeps the portable name
    assert rule_columns("jaro_winkler(l.name_py, r.name_py) >= 0.9 and l.city = r.city") == {
        "name_py",
        "city",
    }
    for r in rules:  # every packaged rule is one the incremental linker can index
        parse_blocking_rule(r)
