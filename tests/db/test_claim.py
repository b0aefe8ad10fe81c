"""Claiming due rows of an outbox-like table (``medscrm.db.claim``), on DuckDB and PostgreSQL: concurrent
claimers never take one row twice, a lease that ran out makes a row due again, and on PostgreSQL a
row another transaction holds is skipped instead of waited for."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from medscrm.db.claim import claim_ids, claiming, due_or_expired, skip_locked

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def outbox(engine):
    md = sa.MetaData()
    t = sa.Table(
        f"claim_test_{uuid.uuid4().hex[:8]}",
        md,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
    )
    md.create_all(engine)
    yield t
    md.drop_all(engine)


def _due(t, now):
    return due_or_expired(
        status=t.c.status, waiting="pending", due=t.c.due_at <= now, working="working",
        lease_until=t.c.lease_until, now=now,
    )  # fmt: skip


def _claim(engine, t, worker, now=NOW, limit=7):
    q = sa.select(t.c.id).where(_due(t, now)).order_by(t.c.due_at, t.c.id).limit(limit)
    return claim_ids(
        engine,
        t,
        q,
        values={"status": "working", "worker_id": worker, "lease_until": now + dt.timedelta(minutes=1)},
    )


def test_concurrent_claimers_never_take_a_row_twice(engine, outbox):
    ids = [f"r{i:03d}" for i in range(120)]
    with engine.begin() as c:
        c.execute(outbox.insert(), [{"id": i, "status": "pending", "due_at": NOW} for i in ids])
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            mine = taken.setdefault(name, [])
            while got := _claim(engine, outbox, name):
                mine.extend(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{k}",)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    everything = [i for got in taken.values() for i in got]
    assert sorted(everything) == ids  # each row once, none lost
    with engine.connect() as c:
        owners = dict(c.execute(sa.select(outbox.c.id, outbox.c.worker_id)).all())
    assert all(i in taken[owners[i]] for i in ids)  # the row names the worker that claimed it


def test_a_row_is_due_again_once_its_lease_runs_out(engine, outbox):
    with engine.begin() as c:
        c.execute(
            outbox.insert(),
            [
                {"id": "later", "status": "pending", "due_at": NOW + dt.timedelta(hours=1),
                 "worker_id": None, "lease_until": None},
                {"id": "leased", "status": "working", "due_at": NOW, "worker_id": "old",
                 "lease_until": NOW + dt.timedelta(seconds=30)},
            ],
        )  # fmt: skip
    assert _claim(engine, outbox, "w1") == []  # not due yet; still leased
    assert _claim(engine, outbox, "w1", now=NOW + dt.timedelta(seconds=31)) == ["leased"]
    # w1's new lease (one minute from 31 s) holds the row; once it runs out both rows are due
    assert _claim(engine, outbox, "w2", now=NOW + dt.timedelta(seconds=61)) == []
    assert _claim(engine, outbox, "w2", now=NOW + dt.timedelta(hours=1)) == ["leased", "later"]


@pytest.mark.postgres
def test_postgres_skips_a_row_another_transaction_holds(pg_engine):
    md = sa.MetaData()
    t = sa.Table(
        f"claim_test_{uuid.uuid4().hex[:8]}",
        md,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
    )
    md.create_all(pg_engine)
    try:
        with pg_engine.begin() as c:
            c.execute(t.insert(), [{"id": i, "status": "pending", "due_at": NOW} for i in ("a", "b")])
        with claiming(pg_engine, t) as holder:  # a claimer still working inside its transaction
            held = holder.execute(skip_locked(sa.select(t.c.id).where(t.c.id == "a"), holder, of=t)).scalars()
            assert list(held) == ["a"]
            # another claimer does not wait for "a": it takes "b" at once
            assert _claim(pg_engine, t, "w2") == ["b"]
    finally:
        md.drop_all(pg_engine)
