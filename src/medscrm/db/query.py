"""Query helpers shared by the engines' callers."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def in_ids(col: sa.ColumnElement, ids: Sequence[str]) -> sa.ColumnElement[bool]:
    """``col IN (SELECT unnest(:ids))``: the whole list is ONE bound array parameter (DuckDB and
    PostgreSQL), so a few thousand ids cost neither thousands of parameters nor a long plan, and the
    statement is the same whatever the list's length (compiled once, prepared once by the driver)."""
    arr = sa.bindparam("person_ids", value=list(ids), type_=postgresql.ARRAY(sa.String), unique=True)
    return col.in_(sa.select(sa.func.unnest(arr)))


def in_pairs(
    a: sa.ColumnElement, b: sa.ColumnElement, pairs: Sequence[tuple[str, str]]
) -> sa.ColumnElement[bool]:
    """``(a, b) IN (SELECT unnest(:as), unnest(:bs))``: a list of pairs as TWO bound array parameters
    zipped by the engine (DuckDB and PostgreSQL), e.g. the (person, tag) rows to delete in one
    statement instead of one statement per tag."""
    xs = sa.bindparam("pair_a", value=[x for x, _ in pairs], type_=postgresql.ARRAY(sa.String), unique=True)
    ys = sa.bindparam("pair_b", value=[y for _, y in pairs], type_=postgresql.ARRAY(sa.String), unique=True)
    return sa.tuple_(a, b).in_(sa.select(sa.func.unnest(xs), sa.func.unnest(ys)))
