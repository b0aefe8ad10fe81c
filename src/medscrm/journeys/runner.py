"""Running journeys: claiming due enrollments, the tick, the in-process runner and the worker loop.

``run_due`` claims due enrollments (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several workers never
take the same one; DuckDB: one in-process runner) and executes their steps in ONE transaction
(:class:`~medscrm.journeys.steps._Batch`). A batch that fails is retried one enrollment at a time;
the failing one is rescheduled with backoff. :func:`tick` is one round: poll triggers, run due
steps, deliver queued sends.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import sqlalchemy as sa

from medscrm.common import PollingThread, backoff, run_until_stopped, utcnow
from medscrm.config import get_settings
from medscrm.db.claim import skip_locked
from medscrm.db.schema import journey_enrollments, journeys
from medscrm.journeys.steps import ACTIVE, _Batch
from medscrm.journeys.triggers import poll_triggers

log = logging.getLogger("medscrm.journeys")
MAX_ATTEMPTS = 5
_local_runner = threading.Lock()  # DuckDB: one runner per process


def dispatch(
    engine: sa.Engine, *, worker_id: str, tenant_id: str | None = None, now=None, limit: int = 100
) -> int:
    """Outreach's ``dispatch_once`` (delivers queued sends); 0 when outreach is not installed."""
    try:
        from medscrm.outreach.send import dispatch_once
    except ImportError:
        return 0
    return dispatch_once(engine, worker_id=worker_id, tenant_id=tenant_id, limit=limit, now=now)


# --- claiming and running --------------------------------------------------------------------------
def _claim(
    conn: sa.Connection, *, limit: int, now: dt.datetime, tenant_id: str | None, ids: list[str] | None = None
):
    e, j = journey_enrollments, journeys
    q = (
        sa.select(e)
        .join(j, j.c.id == e.c.journey_id)
        .where(e.c.status == ACTIVE, e.c.next_run_at <= now, j.c.status == "running")
        .order_by(e.c.next_run_at)
        .limit(limit)
    )
    if tenant_id:
        q = q.where(e.c.tenant_id == tenant_id)
    if ids is not None:
        q = q.where(e.c.id.in_(ids))
    return list(conn.execute(skip_locked(q, conn, of=e)))


def run_due(
    engine: sa.Engine,
    *,
    worker_id: str,
    limit: int = 500,
    now: dt.datetime | None = None,
    tenant_id: str | None = None,
) -> int:
    """Claim up to ``limit`` due enrollments and execute their steps in one transaction; returns the
    number of step executions. A batch that fails is retried one enrollment at a time; the failing
    enrollment is rescheduled with backoff (``failed`` after 5 attempts) and the others go on."""
    now = now or utcnow()
    local = engine.dialect.name != "postgresql"
    if local:
        _local_runner.acquire()
    try:
        claimed: list[str] = []
        try:
            with engine.begin() as conn:
                rows = _claim(conn, limit=limit, now=now, tenant_id=tenant_id)
                claimed = [r.id for r in rows]
                if not rows:
                    return 0
                b = _Batch(conn, worker_id=worker_id, now=now)
                b.run(rows)
                b.flush()
                return b.steps
        except Exception as exc:
            if not claimed:
                raise
            log.warning("journey batch failed (%s); retrying one by one", exc)
        total = 0
        for eid in claimed:
            try:
                with engine.begin() as conn:
                    rows = _claim(conn, limit=1, now=now, tenant_id=tenant_id, ids=[eid])
                    if not rows:
                        continue
                    b = _Batch(conn, worker_id=worker_id, now=now)
                    b.run(rows)
                    b.flush()
                    total += b.steps
            except Exception as exc:  # this enrollment's step fails: record, back off, go on
                _record_failure(engine, eid, f"{type(exc).__name__}: {exc}", now)
        return total
    finally:
        if local:
            _local_runner.release()


def _record_failure(engine: sa.Engine, eid: str, error: str, now: dt.datetime) -> None:
    e = journey_enrollments
    with engine.begin() as conn:
        attempt = int(conn.execute(sa.select(e.c.attempt).where(e.c.id == eid)).scalar() or 0) + 1
        values: dict[str, Any] = {"attempt": attempt, "last_error": error[:2000], "updated_at": now}
        if attempt >= MAX_ATTEMPTS:
            values.update(status="failed", finished_at=now, next_run_at=None)
        else:
            values["next_run_at"] = now + dt.timedelta(seconds=backoff(attempt, 10, 3600, factor=4))
        conn.execute(sa.update(e).where(e.c.id == eid).values(**values))
    log.warning("journey enrollment %s failed (attempt %d): %s", eid, attempt, error)


# --- the loop ------------------------------------------------------------------------------------
def tick(
    engine: sa.Engine,
    *,
    worker_id: str,
    now: dt.datetime | None = None,
    tenant_id: str | None = None,
    limit: int = 500,
    max_batches: int = 50,
    dispatch_sends: bool = True,
) -> dict[str, int]:
    """One round: poll triggers, run due steps (up to ``max_batches`` batches), deliver queued sends."""
    enrolled = poll_triggers(engine, now=now, tenant_id=tenant_id)
    steps = 0
    for _ in range(max_batches):
        n = run_due(engine, worker_id=worker_id, limit=limit, now=now, tenant_id=tenant_id)
        steps += n
        if n == 0:
            break
    sent = dispatch(engine, worker_id=worker_id, tenant_id=tenant_id, now=now) if dispatch_sends else 0
    return {"enrolled": enrolled, "steps": steps, "dispatched": sent}


class JourneyRunner(PollingThread):
    """The in-process engine for ``medscrm serve`` on the embedded database: a daemon thread that ticks
    every ``interval`` seconds (errors are logged and retried; the state is in the database)."""

    thread_name = "medscrm-journeys"

    def __init__(self, engine: sa.Engine, *, worker_id: str = "serve", interval: float = 1.0):
        super().__init__(interval=interval)
        self.engine = engine
        self.worker_id = worker_id
        self.ticks = 0

    def step(self) -> bool:
        busy = False
        if _any_running(self.engine):
            r = tick(self.engine, worker_id=self.worker_id)
            busy = bool(r["steps"] or r["enrolled"])
        else:
            dispatch(self.engine, worker_id=self.worker_id)
        self.ticks += 1
        return busy

    def failed(self, exc: Exception) -> None:  # the database is busy or down: retry on the next tick
        super().failed(exc)
        log.warning("journey tick failed: %s", self.last_error)


def _any_running(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(journeys.c.id).where(journeys.c.status == "running").limit(1)).first()
            is not None
        )


def start_background(engine: sa.Engine) -> JourneyRunner | None:
    """Start the in-process runner on the embedded database (DuckDB); None on PostgreSQL, where
    ``medscrm worker`` processes run journeys. ``MEDSCRM_JOURNEY_RUNNER=0`` disables it."""
    if engine.dialect.name != "duckdb" or not get_settings().journey_runner:
        return None
    return JourneyRunner(engine).start()


def worker_loop(
    engine: sa.Engine,
    *,
    worker_id: str,
    once: bool = False,
    interval: float = 1.0,
    tenant_id: str | None = None,
    stop: threading.Event | None = None,
    on_tick=None,
) -> dict[str, int]:
    """``medscrm worker``: tick until stopped (SIGTERM/SIGINT set ``stop``); ``once``: one tick."""
    stop = stop or threading.Event()
    totals = {"enrolled": 0, "steps": 0, "dispatched": 0, "ticks": 0}

    def step() -> bool:
        r = tick(engine, worker_id=worker_id, tenant_id=tenant_id)
        for k, v in r.items():
            totals[k] += v
        totals["ticks"] += 1
        if on_tick:
            on_tick(r)
        return bool(r["steps"] or r["enrolled"] or r["dispatched"])

    def failed(exc: Exception) -> None:
        log.warning("worker %s: tick failed: %s", worker_id, exc)

    run_until_stopped(
        step, stop, idle=interval, retry_wait=lambda _n: min(10.0, interval * 5), on_error=failed, once=once
    )
    return totals
