"""Claiming due rows of outbox-like tables (sends, webhook deliveries, journey enrollments).

Several dispatchers may poll one table. Each takes a batch of due rows and marks them as its own, so
that no row is worked twice:

* PostgreSQL: the due rows are selected ``FOR UPDATE SKIP LOCKED`` (:func:`skip_locked`), so
  concurrent claimers, in this process or in other ``medscrm worker`` processes, skip each other's
  rows instead of waiting for them;
* DuckDB: one process writes the file, and its threads conflict on concurrent writes of one row
  (optimistic concurrency), so :func:`claiming` serialises the claimers of one table in this process.

A claimed row of a table with a lease (``lease_until``) belongs to its worker until the lease
expires; a row whose worker died is due again then (:func:`due_or_expired`). :func:`claim_ids` does
the whole claim for a table whose rows are all marked alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _local_lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


def skip_locked(q: sa.Select, bind: sa.Engine | sa.Connection, *, of: sa.Table | None = None) -> sa.Select:
    """``q`` with ``FOR UPDATE SKIP LOCKED`` (of table ``of`` only, when ``q`` joins others) on
    PostgreSQL; unchanged on DuckDB, which has no row locks."""
    if bind.dialect.name == "postgresql":
        return (
            q.with_for_update(skip_locked=True, of=of)
            if of is not None
            else q.with_for_update(skip_locked=True)
        )
    return q


def due_or_expired(
    *,
    status: sa.ColumnElement,
    waiting: str,
    due: sa.ColumnElement[bool],
    working: str,
    lease_until: sa.ColumnElement,
    now: Any,
) -> sa.ColumnElement[bool]:
    """Rows ready for a claim: those in state ``waiting`` whose time has come (``due``), and those in
    state ``working`` whose worker's lease ran out before ``now`` (the worker died or hung)."""
    return sa.or_(
        sa.and_(status == waiting, due),
        sa.and_(status == working, lease_until < now),
    )


@contextmanager
def claiming(engine: sa.Engine, table: sa.Table) -> Iterator[sa.Connection]:
    """A transaction to claim rows of ``table`` in: select them with :func:`skip_locked`, mark them as
    this worker's, and leave the block to commit. On DuckDB the claimers of ``table`` in this process
    take turns; on PostgreSQL they run side by side."""
    lock = None if engine.dialect.name == "postgresql" else _local_lock(table.name)
    if lock is not None:
        lock.acquire()
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        if lock is not None:
            lock.release()


def claim_ids(engine: sa.Engine, table: sa.Table, q: sa.Select, *, values: Mapping[str, Any]) -> list[Any]:
    """Claim the rows whose ids ``q`` selects (a select of ``table.c.id``, ordered and limited by the
    caller) and set ``values`` on all of them (the new state, the worker, the lease) in one
    transaction; returns the ids claimed, in ``q``'s order."""
    with claiming(engine, table) as conn:
        ids = list(conn.execute(skip_locked(q, conn, of=table)).scalars())
        if ids:
            conn.execute(table.update().where(table.c.id.in_(ids)).values(**values))
        return ids
