"""Group-committed audit rows for hot read paths (the profile API).

PIPL wants every read of personal data audited, and an audit row that may be lost is no audit: a read
is answered only once its row is committed. Committing one transaction per read, though, made the
audit the bottleneck of the profile API (one commit per request; on DuckDB, one writer at a time).

:class:`AuditWriter` keeps durability and drops the per-read commit: a caller hands its row over and
blocks; one writer thread takes every row handed over meanwhile and stores them in one transaction
(a multi-row INSERT, one commit), then wakes the callers of that batch. Under load many reads share a
commit; alone, a read waits for one small transaction, as before. If the transaction fails, every
caller of that batch gets :class:`AuditFailed` and the read fails too (fail closed).
"""

from __future__ import annotations

import collections
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from medscrm.accounts.service import audit_row
from medscrm.common import MedscrmError
from medscrm.db.schema import audit_log

#: the writer thread exits after this many idle seconds (a later write starts a new one)
IDLE_EXIT_S = 30.0
#: the most rows one transaction stores (the rest wait for the next one)
MAX_BATCH = 1000


class AuditFailed(MedscrmError):
    """The audit row could not be stored, so the read it records must not be answered."""


@dataclass
class _Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class AuditWriter:
    """One per engine (:func:`writer_for`); thread-safe."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._cv = threading.Condition()
        self._queue: collections.deque[_Batch] = collections.deque()  # the last one is still open
        self._thread: threading.Thread | None = None
        self.commits = 0  # transactions stored (for tests and status)
        self.rows = 0

    def write(self, *, timeout: float = 30.0, **row: Any) -> None:
        """Store one audit row (keywords of :func:`medscrm.accounts.service.audit_row`); returns once
        it is committed, raises :class:`AuditFailed` if not."""
        row = audit_row(**row)
        with self._cv:
            if not self._queue or len(self._queue[-1].rows) >= MAX_BATCH:
                self._queue.append(_Batch())
            batch = self._queue[-1]
            batch.rows.append(row)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="medscrm-audit-writer", daemon=True)
                self._thread.start()
            self._cv.notify()
        if not batch.done.wait(timeout):
            raise AuditFailed(f"audit: the row was not committed within {timeout:.0f}s")
        if batch.error is not None:
            raise AuditFailed(f"audit: the row could not be stored: {batch.error}") from batch.error

    def _next_batch(self) -> _Batch | None:
        with self._cv:
            while not self._queue:
                if not self._cv.wait(IDLE_EXIT_S) and not self._queue:
                    self._thread = None
                    return None
            return self._queue.popleft()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(audit_log.insert(), batch.rows)
                self.commits += 1
                self.rows += len(batch.rows)
            except Exception as exc:  # noqa: BLE001 — handed to every waiting caller
                batch.error = exc
            batch.done.set()


_writers: weakref.WeakKeyDictionary[sa.Engine, AuditWriter] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def writer_for(engine: sa.Engine) -> AuditWriter:
    with _lock:
        w = _writers.get(engine)
        if w is None:
            w = _writers[engine] = AuditWriter(engine)
        return w


def audit_committed(engine: sa.Engine, **row: Any) -> None:
    """Store an audit row through the engine's group-committing writer (see the module docstring)."""
    writer_for(engine).write(**row)
