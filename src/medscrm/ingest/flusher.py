"""Event ingestion behind the HTTP API: spool first, database second.

``Ingestor.submit`` puts accepted messages (and quarantined ones) into the durable spool and
returns a future that completes when they are on disk — the API answers 200 only then. A flusher
thread moves spooled records into the database in batches (:mod:`medscrm.ingest.store` writes
them). A batch the database refuses is stored again record by record, and what it still refuses is
quarantined, so one poison message never holds back the others; an outage of the database keeps the
spool and retries. :meth:`Ingestor.health` gives the backlog, the lag and the last error.

The checkpoint moves only after the database commit, so a crash between the two replays a batch
that de-duplication then absorbs: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from medscrm.common import backoff, run_until_stopped
from medscrm.db.bulk import append_rows
from medscrm.db.schema import quarantine
from medscrm.ingest.protocol import segment
from medscrm.ingest.spool import Checkpoint, Spool
from medscrm.ingest.store import (
    DEDUP_WINDOW,
    LINES,
    poison_rows,
    refused_rows,
    store_lines,
    store_records,
    tune_for_ingest,
)

log = logging.getLogger("medscrm.ingest")


class Ingestor:
    def __init__(
        self,
        engine: sa.Engine,
        spool_dir: Path | str,
        *,
        batch_size: int = 20000,
        batch_bytes: int = 16 * 1024 * 1024,
        fsync: bool = True,
        duckdb_checkpoint_threshold: str | None = "256MB",
        dedup_window: dt.timedelta = DEDUP_WINDOW,
    ):
        self.engine = engine
        self.spool = Spool(spool_dir, fsync=fsync)
        self.checkpoint = Checkpoint(spool_dir)
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.duckdb_checkpoint_threshold = duckdb_checkpoint_threshold
        self.dedup_window = dedup_window
        self._pos = self.checkpoint.load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.last_error: str | None = None
        self.stored_events = 0
        self._backlog, self._backlog_at = 0, 0.0
        self._failures = 0
        #: consecutive failures of one batch before its spool records are stored one by one
        self.isolate_after = 3
        self.quarantined_refused = 0
        #: spooled messages that could not be decoded or stored as they are (quarantined instead)
        self.quarantined_poison = 0
        #: when storage last advanced, or last found nothing to store (monotonic clock): with a
        #: backlog, the time since then is how long storage has been stalled
        self.advanced_at = time.monotonic()
        self.last_error_at: float | None = None
        #: called after each commit with ``(id, tenant_id, person_id, event)`` of the track events just
        #: stored whose person was known (the segment refresher hands those persons to the real-time tags at once)
        self.on_stored: Callable[[list[tuple]], None] | None = None

    # -- producer side -------------------------------------------------------------------------
    def backlog_bytes(self) -> int:
        """Spooled bytes not yet stored (cached for 0.5 s): the API pushes back when it is too big."""
        now = time.monotonic()
        if now - self._backlog_at < 0.5:
            return self._backlog
        total = 0
        for seg in self.spool.segments():
            if seg >= self._pos.segment:
                try:
                    total += (self.spool.dir / f"spool-{seg:012d}.log").stat().st_size
                except FileNotFoundError:
                    continue
        self._backlog, self._backlog_at = max(0, total - self._pos.offset), now
        return self._backlog

    def submit(self, records: list[dict], lines: bytes = b"") -> Future:
        """Spool ``records`` (dicts: callback events, quarantine entries) and ``lines`` (the
        newline-delimited spool lines of a request's accepted events, one spool record for all)."""
        return self.spool.append(self._payloads(records, lines))

    def submit_async(self, records: list[dict], lines: bytes = b"") -> asyncio.Future:
        """As :meth:`submit`, awaitable on the running event loop (cheaper for the API)."""
        return self.spool.append_async(self._payloads(records, lines))

    @staticmethod
    def _payloads(records: list[dict], lines: bytes) -> list[bytes]:
        payloads = [LINES + lines] if lines else []
        payloads += [orjson.dumps(r, default=_json_default) for r in records]
        return payloads

    # -- consumer side -------------------------------------------------------------------------
    def start(self) -> None:
        import pandas  # noqa: F401  (pyarrow loads it on the first flush; do it before traffic arrives)

        tune_for_ingest(self.engine, self.duckdb_checkpoint_threshold)
        for left in self.spool.dir.glob("flush-*.ndjson"):  # a flush's scratch file, left by a crash
            left.unlink(missing_ok=True)
        self._thread = threading.Thread(target=self._run, name="medscrm-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self.flush_pending()
        self.spool.close()

    def _run(self) -> None:
        run_until_stopped(
            self._step,
            self._stop,
            idle=lambda: time.sleep(0.02),
            retry_wait=lambda failures: backoff(failures, 0.2, 10.0),
            on_error=self._failed,
        )

    def _step(self) -> bool:
        self.spool.wait_for_data(self._pos, timeout=0.5)
        return self.flush_once() != 0

    def _failed(self, exc: Exception) -> None:  # the database is down or slow: keep the spool, retry
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = time.monotonic()
        log.warning("event flush failed, will retry: %s", self.last_error)

    def flush_pending(self) -> int:
        """Store everything spooled so far (used by tests, shutdown and the CLI)."""
        total = 0
        while True:
            n = self.flush_once()
            total += n
            if n == 0 and self._pos >= self.spool.end:
                return total

    def health(self) -> dict[str, Any]:
        """What the health endpoint reports (cheap: the backlog is cached, nothing is read)."""
        backlog = self.backlog_bytes()
        now = time.monotonic()
        return {
            "backlog_bytes": backlog,
            # seconds storage has not advanced while spooled records wait (0 when caught up)
            "lag_seconds": round(now - self.advanced_at, 1) if backlog > 0 else 0.0,
            "last_error": self.last_error,
            "last_error_seconds_ago": None
            if self.last_error_at is None
            else round(now - self.last_error_at, 1),
            "flusher_running": bool(self._thread and self._thread.is_alive()),
            "quarantined_poison": self.quarantined_poison,
            "quarantined_refused": self.quarantined_refused,
        }

    def _store(self, payloads: list[bytes]) -> int:
        recs, chunks = [], []
        poison: list[dict] = []
        for p in payloads:
            if p[:1] == LINES:
                if segment.suspect_lines(p):  # only then: line by line, in Python
                    p = self._screen_lines(p, poison)
                if len(p) > 1:
                    chunks.append(p)
                continue
            try:
                rec = orjson.loads(p)
                if not isinstance(rec, dict) or rec.get("k") not in ("event", "quarantine"):
                    raise ValueError("not a spool record object")
            except (ValueError, RecursionError) as exc:
                poison += poison_rows(p, f"the spooled record is not valid JSON: {exc}")
                continue
            recs.append(rec)
        stored = 0
        collect: list | None = [] if self.on_stored is not None and chunks else None
        with self.engine.begin() as conn:
            if recs:
                stored += store_records(conn, recs, dedup_window=self.dedup_window)
            if chunks:
                stored += store_lines(
                    conn, chunks, dedup_window=self.dedup_window, workdir=self.spool.dir, collect=collect
                )
            if poison:
                self._quarantine(conn, poison)
        if poison:
            self.quarantined_poison += len(poison)
            log.error("quarantined %d spooled messages that cannot be stored", len(poison))
        if collect and self.on_stored is not None:
            try:
                self.on_stored(collect)
            except Exception as exc:  # a listener must never fail a stored batch
                log.warning("on_stored listener failed: %s", exc)
        return stored

    def _screen_lines(self, chunk: bytes, poison: list[dict]) -> bytes:
        """The record's lines that can be stored; the others become quarantine rows in ``poison``
        (the door refuses them: these come from a spool written without its checks)."""
        keep = []
        for line in chunk[1:].splitlines():
            if not line.strip():
                continue
            problem = segment.line_problem(line)
            if problem is None:
                keep.append(line)
            else:
                poison += poison_rows(LINES + line, problem)
        return LINES + b"".join(x + b"\n" for x in keep)

    def _quarantine(self, conn: sa.Connection, rows: list[dict]) -> None:
        unattributed = [r for r in rows if not r["tenant_id"]]
        if unattributed:  # no tenant to file it under: kept beside the spool, never dropped
            with open(self.spool.dir / "poison-unattributed.ndjson", "ab") as fh:
                for r in unattributed:
                    fh.write(orjson.dumps({"reason": r["reason"], "payload": r["payload"]}) + b"\n")
            log.error(
                "%d spooled records without a tenant kept in poison-unattributed.ndjson", len(unattributed)
            )
        rows = [r for r in rows if r["tenant_id"]]
        if rows:
            append_rows(conn, quarantine, rows)

    def _store_isolating(self, payloads: list[bytes]) -> int:
        """Store the records one by one (a record of several lines, line by line when refused) and
        quarantine what the database refuses, so one poison message never holds back the others."""
        stored = 0
        for p in payloads:
            try:
                stored += self._store([p])
                continue
            except Exception as exc:
                if _is_outage(exc):
                    raise
                error = f"{type(exc).__name__}: {exc}"
            lines = [x for x in p[1:].splitlines() if x.strip()] if p[:1] == LINES else []
            if len(lines) > 1:
                for line in lines:
                    stored += self._store_isolating([LINES + line + b"\n"])
                continue
            log.error("the database refused a spooled request; quarantined: %s", error)
            with self.engine.begin() as conn:
                self._quarantine(conn, refused_rows(p, error))
            self.quarantined_refused += 1
        return stored

    def flush_once(self) -> int:
        with self._flush_lock:
            payloads, pos = self.spool.read(self._pos, self.batch_size, max_bytes=self.batch_bytes)
            if not payloads:
                if pos != self._pos:
                    self._pos = pos
                    self.checkpoint.save(pos)
                self.advanced_at = time.monotonic()  # nothing waits: not behind
                return 0
            try:
                self.stored_events += self._store(payloads)
                self._failures = 0
            except Exception as exc:
                if _is_outage(exc):
                    raise  # the database is down, unreachable or out of space: keep the spool, retry
                # the data was refused (a value the database cannot take, or that does not decode):
                # store the spool records one by one and quarantine those refused, so one poison
                # request never stalls the flusher — nothing is dropped. Refusals that name the data
                # are isolated at once; others (e.g. a conflict) are retried a few times first.
                self._failures += 1
                if self._failures < self.isolate_after and not _is_poison(exc):
                    raise
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.last_error_at = time.monotonic()
                log.warning("a flush was refused; storing its records one by one: %s", self.last_error)
                self.stored_events += self._store_isolating(payloads)
                self._failures = 0
            self.checkpoint.save(pos)
            if pos.segment != self._pos.segment:
                self.spool.drop_before(pos)
            self._pos = pos
            self.advanced_at = time.monotonic()  # last_error stays: the health answer gives its age
            return len(payloads)


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return str(v)


def _is_outage(exc: BaseException) -> bool:
    """A failure of the database itself (connection, I/O, disk) rather than of the data."""
    if isinstance(exc, sa.exc.DBAPIError):
        exc = exc.orig or exc
    try:
        import psycopg

        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return True
    except ImportError:  # pragma: no cover
        pass
    # lazy: off the server's start-up path
    import duckdb

    outage = duckdb.IOException | duckdb.ConnectionException | duckdb.OutOfMemoryException | OSError
    return isinstance(exc, outage)


def _is_poison(exc: BaseException) -> bool:
    """A refusal that names the data (it cannot decode, or the database says the value is invalid):
    retrying the same batch cannot succeed, so its records are isolated at once."""
    if isinstance(exc, ValueError | RecursionError | UnicodeError | OverflowError):
        return True  # our own decoding (JSONDecodeError is a ValueError)
    if isinstance(exc, sa.exc.DataError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        exc = exc.orig or exc
    try:
        import psycopg

        if isinstance(exc, psycopg.DataError):
            return True
    except ImportError:  # pragma: no cover
        pass
    # lazy: off the server's start-up path
    import duckdb

    return isinstance(exc, duckdb.InvalidInputException | duckdb.ConversionException)
