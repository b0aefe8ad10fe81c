"""``UTCDateTime`` (``medscrm.db.types``): whatever was written (naive = UTC, or aware in any zone),
both engines give back aware UTC datetimes for the same instant, and comparisons in SQL see the
instants (a value written at +08:00 sorts and filters as its UTC equivalent)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.db.bulk import append_rows
from medscrm.db.types import UTCDateTime

CST = dt.timezone(dt.timedelta(hours=8))


def _table(engine):
    md = sa.MetaData()
    t = sa.Table(
        f"utc_test_{uuid.uuid4().hex[:8]}",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", UTCDateTime()),
    )
    md.create_all(engine)
    return md, t


def test_values_come_back_aware_utc_on_both_engines(engine):
    md, t = _table(engine)
    try:
        naive = dt.datetime(2026, 3, 1, 9, 30)
        china = dt.datetime(2026, 3, 1, 17, 31, tzinfo=CST)  # 09:31 UTC
        with engine.begin() as c:
            c.execute(t.insert(), [{"id": 1, "ts": naive}, {"id": 2, "ts": china}, {"id": 3, "ts": None}])
        with engine.connect() as c:
            rows = dict(c.execute(sa.select(t.c.id, t.c.ts).order_by(t.c.id)).all())
            newest = c.execute(sa.select(sa.func.max(t.c.ts))).scalar()
            after = c.execute(
                sa.select(t.c.id).where(t.c.ts > dt.datetime(2026, 3, 1, 9, 30, 30, tzinfo=dt.UTC))
            ).scalars()
            after = list(after)
        assert rows[1] == naive.replace(tzinfo=dt.UTC) and rows[1].utcoffset() == dt.timedelta(0)
        assert rows[2] == china and rows[2].tzinfo is dt.UTC
        assert rows[3] is None
        assert newest == china and newest.tzinfo is dt.UTC
        assert after == [2]
    finally:
        md.drop_all(engine)


def test_bulk_appends_take_naive_values_as_utc_like_core_inserts(engine):
    """The bulk path (Arrow on DuckDB, COPY on PostgreSQL) bypasses the type's bind step; it still
    stores a naive value as UTC, even in a PostgreSQL session whose time zone is not UTC."""
    writer = engine
    if engine.dialect.name == "postgresql":
        writer = sa.create_engine(engine.url, connect_args={"options": "-c timezone=Asia/Shanghai"})
    md, t = _table(engine)
    try:
        naive = dt.datetime(2026, 3, 1, 9, 30)
        china = dt.datetime(2026, 3, 1, 17, 31, tzinfo=CST)  # 09:31 UTC
        with writer.begin() as c:
            append_rows(c, t, [{"id": 1, "ts": naive}, {"id": 2, "ts": china}, {"id": 3, "ts": None}])
            c.execute(t.insert().values(id=4, ts=naive))
        with engine.connect() as c:
            rows = dict(c.execute(sa.select(t.c.id, t.c.ts)).all())
        assert rows[1] == rows[4] == naive.replace(tzinfo=dt.UTC)
        assert rows[2] == china and rows[3] is None
        assert all(v.tzinfo is dt.UTC for v in (rows[1], rows[2], rows[4]))
    finally:
        md.drop_all(engine)
        if writer is not engine:
            writer.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.sampled_from([dt.UTC, CST, dt.timezone(dt.timedelta(hours=-5))]),
    )
)
def test_any_instant_round_trips(engine, at):
    md, t = _table(engine)
    try:
        with engine.begin() as c:
            c.execute(t.insert().values(id=1, ts=at))
        with engine.connect() as c:
            back = c.execute(sa.select(t.c.ts)).scalar()
        assert back == at and back.tzinfo is dt.UTC
    finally:
        md.drop_all(engine)
