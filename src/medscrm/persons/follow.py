"""Identity resolution while `medscrm serve` runs: source records that belong to no person yet
(identify calls through /v1/identify, imports through the console or API) are linked into the
tenant's persons by the incremental run (:mod:`medscrm.persons.incremental`), within seconds, so
that a new doctor is found by phone without anyone running `medscrm identity run`.

A thread checks every ``interval`` seconds, and only when the event ingestor has stored something
since its last look (``wake``: a counter that grows) or when ``poll_every`` seconds have passed, which
tenants have more source records than linked ones (two counts per tenant), and runs the incremental
linking for those in its own transaction. A tenant without a previous full run (no saved model or
feature index) is left alone until its counts change: its first resolution is `medscrm identity run`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from medscrm.db.schema import person_records, source_records, tenants

log = logging.getLogger(__name__)


class IdentityFollower:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        wake: Callable[[], int] | None = None,
        interval: float = 1.0,
        poll_every: float = 30.0,
        model_file: Callable[[str], Any] | None = None,
    ):
        self.engine = engine
        self.wake = wake
        self.interval = interval
        self.poll_every = poll_every
        self._model_file = model_file
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_wake: int | None = None
        self._last_poll = 0.0
        #: tenant id -> the (records, linked) counts at which the incremental run could not start
        self._skipped: dict[str, tuple[int, int]] = {}
        self.runs = 0
        self.linked = 0
        self.errors = 0
        self.last_error: str | None = None

    # --- thread -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="identity-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - a conflict or a bad record must not stop the thread
                self.errors += 1
                self.last_error = str(exc)[:500]
                log.warning("incremental identity resolution failed: %s", exc)

    # --- one look -----------------------------------------------------------------------------------
    def _due(self) -> bool:
        now = time.monotonic()
        woken = False
        if self.wake is not None:
            w = self.wake()
            woken = w != self._seen_wake
            self._seen_wake = w
        if woken or now - self._last_poll >= self.poll_every or self.wake is None:
            self._last_poll = now
            return True
        return False

    def pending(self, conn: sa.Connection) -> dict[str, tuple[str, int, int]]:
        """Tenants with unlinked source records: id -> (slug, records, linked)."""
        recs = dict(
            conn.execute(
                sa.select(source_records.c.tenant_id, sa.func.count()).group_by(source_records.c.tenant_id)
            ).all()
        )
        linked = dict(
            conn.execute(
                sa.select(person_records.c.tenant_id, sa.func.count()).group_by(person_records.c.tenant_id)
            ).all()
        )
        slugs = dict(conn.execute(sa.select(tenants.c.id, tenants.c.slug)).all())
        return {
            t: (slugs.get(t, t), n, linked.get(t, 0))
            for t, n in recs.items()
            if n > linked.get(t, 0) and t in slugs
        }

    def step(self, *, force: bool = False) -> int:
        """Link the unlinked records of every tenant that has some; returns how many were linked."""
        if not force and not self._due():
            return 0
        # lazy: off the server's start-up path
        from medscrm.persons.incremental import run_incremental

        with self.engine.connect() as conn:
            todo = self.pending(conn)
        done = 0
        for tenant_id, (slug, n, linked) in todo.items():
            if self._skipped.get(tenant_id) == (n, linked):
                continue
            with self.engine.begin() as conn:
                rep = run_incremental(
                    conn, tenant_id=tenant_id, model_file=self._model_path(slug), actor="serve"
                )
            if rep is None:  # no previous full run to build on
                self._skipped[tenant_id] = (n, linked)
                continue
            self._skipped.pop(tenant_id, None)
            self.runs += 1
            done += rep.new_records
        self.linked += done
        return done

    def _model_path(self, slug: str):
        if self._model_file is not None:
            return self._model_file(slug)
        # lazy: off the server's start-up path
        from medscrm.identity.model import model_path

        return model_path(self.engine, slug)

    def status(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "linked": self.linked,
            "errors": self.errors,
            "last_error": self.last_error,
        }
