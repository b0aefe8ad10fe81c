"""Query helpers shared by the engines' callers."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


def in_ids(col: sa.ColumnElement, ids: Sequence[str], *, row_filter: bool = False) -> sa.ColumnElement[bool]:
    """``col IN (SELECT unnest(:ids))``: the whole list is ONE bound array parameter (DuckDB and
    PostgreSQL), so a few thousand ids cost neither thousands of parameters nor a long plan, and the
    statement is the same whatever the list's length (compiled once, prepared once by the driver).

    ``row_filter``: on DuckDB also ``list_contains(:ids, col)``, a filter on the rows themselves. The
    semi-join alone is applied above the table's other filters: where those are costly (JSON
    attributes of every person) DuckDB evaluated them for the whole table before dropping all but
    the few persons asked for. (Elsewhere the term compiles to TRUE: PostgreSQL uses its index.)"""
    arr = sa.bindparam("person_ids", value=list(ids), type_=postgresql.ARRAY(sa.String), unique=True)
    semi = col.in_(sa.select(sa.func.unnest(arr)))
    return sa.and_(semi, _listed(arr, col)) if row_filter else semi


class _listed(FunctionElement):
    """``list_contains(array, value)`` on DuckDB; TRUE elsewhere (see :func:`in_ids`)."""

    type = sa.Boolean()
    name = "listed"
    inherit_cache = True


@compiles(_listed)
def _listed_default(element, compiler, **kw):
    return compiler.process(sa.true(), **kw)


@compiles(_listed, "duckdb")
def _listed_duckdb(element, compiler, **kw):
    arr, col = list(element.clauses)
    return f"list_contains({compiler.process(arr, **kw)}, {compiler.process(col, **kw)})"


def in_pairs(
    a: sa.ColumnElement, b: sa.ColumnElement, pairs: Sequence[tuple[str, str]]
) -> sa.ColumnElement[bool]:
    """``(a, b) IN (SELECT unnest(:as), unnest(:bs))``: a list of pairs as TWO bound array parameters
    zipped by the engine (DuckDB and PostgreSQL), e.g. the (person, tag) rows to delete in one
    statement instead of one statement per tag."""
    xs = sa.bindparam("pair_a", value=[x for x, _ in pairs], type_=postgresql.ARRAY(sa.String), unique=True)
    ys = sa.bindparam("pair_b", value=[y for _, y in pairs], type_=postgresql.ARRAY(sa.String), unique=True)
    return sa.tuple_(a, b).in_(sa.select(sa.func.unnest(xs), sa.func.unnest(ys)))
