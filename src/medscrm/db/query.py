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
