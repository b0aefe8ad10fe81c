"""Bulk appends, the one place that talks to each driver directly.

DuckDB: an Arrow table registered on the same connection (same transaction) and inserted with one
statement. PostgreSQL: ``COPY ... FROM STDIN`` through psycopg 3. Both keep the caller's
transaction: a failure later in the import rolls the appended rows back.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa

from medscrm.db.engine import UnsupportedBackend

_counter = itertools.count()


def _arrow_type(col: sa.Column) -> pa.DataType:
    t = col.type
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(t, sa.Integer):
        return pa.int64()
    return pa.string()  # strings and JSON (as text; the engine casts to JSON)


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return str(v)


def dumps(v: Any) -> str | None:
    if v is None:
        return None
    return orjson.dumps(v, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def append_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """Append ``rows`` (dicts keyed by column name; JSON columns as Python objects) to ``table``."""
    if not rows:
        return 0
    cols = list(table.columns)
    json_cols = {c.name for c in cols if isinstance(c.type, sa.JSON) or "JSON" in type(c.type).__name__}
    name = conn.dialect.name
    if name == "duckdb":
        arrays = []
        for c in cols:
            if c.name in json_cols:
                vals = [dumps(r.get(c.name)) for r in rows]
            else:
                vals = [r.get(c.name) for r in rows]
            arrays.append(pa.array(vals, type=_arrow_type(c)))
        tbl = pa.Table.from_arrays(arrays, names=[c.name for c in cols])
        raw = conn.connection.driver_connection
        view = f"_medscrm_bulk_{next(_counter)}"
        raw.register(view, tbl)
        try:
            collist = ", ".join(f'"{c.name}"' for c in cols)
            raw.execute(f'INSERT INTO "{table.name}" ({collist}) SELECT {collist} FROM {view}')
        finally:
            raw.unregister(view)
        return len(rows)
    if name == "postgresql":
        from psycopg import sql

        raw = conn.connection.driver_connection
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in cols)
        )
        names = [c.name for c in cols]
        with raw.cursor() as cur, cur.copy(stmt) as cp:
            for r in rows:
                cp.write_row([dumps(r.get(n)) if n in json_cols else r.get(n) for n in names])
        return len(rows)
    raise UnsupportedBackend(f"bulk append is not implemented for the {name!r} backend")
