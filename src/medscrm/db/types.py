"""Column types shared by the tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm.common import as_utc


class UTCDateTime(sa.types.TypeDecorator):
    """A ``TIMESTAMPTZ`` column that stores UTC and always gives back aware UTC datetimes.

    The drivers differ: psycopg returns aware values in the session's time zone (a ``ZoneInfo``),
    DuckDB in its own tzinfo class, and some read paths naive values. Here every value read is an
    aware datetime whose ``tzinfo`` is ``datetime.UTC``; a naive value written is taken as UTC, an
    aware one is converted. Reads through the table's columns (Core selects, the ORM) are
    normalised; raw SQL (``text()``, ``exec_driver_sql``) bypasses the type, so values read that way
    still go through :func:`medscrm.common.as_utc`. The bulk loads of ``db/bulk.py`` bypass it too
    and store a naive value as UTC themselves (Arrow's UTC timestamps; COPY after ``as_utc``)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # ``ts + timedelta(days=7)``: the interval is bound as an interval, as DateTime does
        if isinstance(value, dt.datetime):
            return self
        return self.impl_instance.coerce_compared_value(op, value)

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return as_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return as_utc(value)
