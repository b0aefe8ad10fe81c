"""The scorer's string similarities agree with DuckDB's, which Splink's SQL uses for the same levels."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.identity.settings import jaro_winkler, levenshtein

_CON = duckdb.connect()
# The settings compare ASCII columns only (pinyin names, digits of phones and licences): DuckDB
# measures UTF-8 bytes, so on Chinese characters the two would differ. Repeated letters exercise
# transpositions.
_TEXT = st.text(alphabet="zhangweilxu0123 -", max_size=12)


@settings(max_examples=400, deadline=None)
@given(_TEXT, _TEXT)
def test_jaro_winkler_matches_duckdb(a: str, b: str) -> None:
    ref = _CON.execute("select jaro_winkler_similarity(?, ?)", [a, b]).fetchone()[0]
    if a == b:
        assert jaro_winkler(a, b) == 1.0  # DuckDB gives 0.0 for two empty strings; equal is equal
    else:
        assert abs(jaro_winkler(a, b) - ref) < 1e-9, (a, b)


@settings(max_examples=400, deadline=None)
@given(_TEXT, _TEXT)
def test_levenshtein_matches_duckdb(a: str, b: str) -> None:
    assert levenshtein(a, b) == _CON.execute("select levenshtein(?, ?)", [a, b]).fetchone()[0]
