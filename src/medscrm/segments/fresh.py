"""Keeping dynamic segments fresh: incrementally as events arrive, and by full recompute on schedule.

The :class:`Refresher` runs inside ``medscrm serve`` (started in the FastAPI lifespan, beside the event
Ingestor; on DuckDB the server is the only process holding the file) as two threads:

* the **fast lane** follows newly stored events by a **watermark** on ``events.received_at`` (both
  engines; PostgreSQL has ``ix_events_received_at``, DuckDB prunes by zone maps). ``received_at`` is
  stamped when the API receives an event and the flusher stores batches a little later, so an event
  may become visible *behind* the watermark: the refresher remembers the ids (and sorted times) it saw
  over an ``overlap`` window and compares stored counts per band with them; a difference means late
  arrivals, which it fetches. Events map to persons (``events.person_id`` or the person of the
  ``user_id``); each dynamic segment whose rule reads one of a person's new events is re-evaluated
  **for those persons only** (``compile_rule(..., person_ids=...)``), and the entered/exited
  differences go to ``segment_members`` and ``segment_history``;
* the **slow lane** runs the real-time behaviour tags/scores (``medscrm.scores.realtime
  .refresh_persons``, when that module exists) for the same persons, then re-evaluates the segments
  that read tags or scores; and it runs the **scheduled full recomputes** (``refresh_every_minutes``,
  default :data:`~medscrm.segments.service.DEFAULT_REFRESH_MINUTES`, 0 = never; everything once at
  start-up, which covers events stored while no refresher ran). Rules with relative windows ("did not
  open the app in 30 days") change with time alone: the schedule catches those.

``Refresher.step()`` does one synchronous cycle of both (tests, tools).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.common import as_utc, backoff, run_until_stopped, utcnow
from medscrm.config import get_settings
from medscrm.db.schema import events, identities, segment_history, segment_members, segments
from medscrm.rules import RuleError, compile_rule, parse
from medscrm.rules.compile import in_ids
from medscrm.segments import service

log = logging.getLogger("medscrm.segments.fresh")

CHUNK = 5000  # persons per compiled query (one array parameter)
LOCK_CHUNK = 1000  # persons per membership transaction of the background refresher
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --- re-evaluating a few persons --------------------------------------------------------------------
@dataclass(frozen=True)
class _Item:
    """One dynamic segment, parsed, with what can change its members."""

    id: str
    key: str
    node: Any
    ctx: Any
    #: event names its rule (or a dynamic segment it refers to) reads: other events cannot move anyone
    events: frozenset[str]
    #: reads tags or scores (directly or through other segments): the real-time tag/score updates can move people
    reads_models: bool


@dataclass
class _Plan:
    """The parsed dynamic segments of one tenant (cached between cycles)."""

    signature: tuple
    built_at: float
    items: list[_Item] = field(default_factory=list)

    def reading_models(self) -> _Plan:
        """Only the segments whose rules read tags or scores."""
        keep = [it for it in self.items if it.reads_models]
        return _Plan(signature=self.signature, built_at=self.built_at, items=keep)


def _rule_reads(rule: Any, segs: dict[str, Any], seen: frozenset[str] = frozenset()) -> tuple[set[str], bool]:
    """(event names, reads tags/scores) of a JSON rule, through the dynamic segments it refers to."""
    names: set[str] = set()
    models = False
    stack = [rule]
    while stack:
        r = stack.pop()
        if not isinstance(r, dict):
            continue
        for k in ("event", "did", "then", "did_not"):
            if isinstance(r.get(k), str):
                names.add(r[k])
        if "tag" in r or "score" in r:
            models = True
        ref = r.get("segment")
        if isinstance(ref, str) and ref not in seen and ref in segs:
            info = segs[ref]
            if info.kind == "dynamic":
                n, m = _rule_reads(info.rule, segs, seen | {ref})
                names |= n
                models = models or m
            else:
                models = True  # a static segment's members change only by edits: treat as "may change"
        for k in ("and", "or"):
            if isinstance(r.get(k), list):
                stack.extend(r[k])
        if "not" in r:
            stack.append(r["not"])
    return names, models


def _signature(conn: sa.Connection, tenant_id: str) -> tuple:
    s = segments
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.max(s.c.updated_at)).where(s.c.tenant_id == tenant_id)
    ).one()
    return tuple(row)


def build_plan(conn: sa.Connection, *, tenant_id: str) -> _Plan:
    """Parse every dynamic segment of the tenant once; a segment whose rule no longer validates (a tag
    definition removed, …) is skipped with a warning (its last members stay until it is fixed)."""
    s = segments
    plan = _Plan(signature=_signature(conn, tenant_id), built_at=time.monotonic())
    rows = conn.execute(
        sa.select(s.c.id, s.c.key, s.c.rule).where(s.c.tenant_id == tenant_id, s.c.kind == "dynamic")
    ).all()
    if not rows:
        return plan
    base = service.context(conn, tenant_id=tenant_id)
    for seg_id, key, rule in rows:
        ctx = type(base)(fields=base.fields, tags=base.tags, scores=base.scores, segments=base.segments)
        ctx.defining_segment = key
        try:
            node = parse(rule, ctx)
        except RuleError as exc:
            log.warning("segment %s of tenant %s no longer validates, not refreshed: %s", key, tenant_id, exc)
            continue
        names, models = _rule_reads(rule, base.segments, frozenset({key}))
        plan.items.append(_Item(seg_id, key, node, ctx, frozenset(names), models))
    return plan


def refresh_persons(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_ids: Iterable[str],
    now: dt.datetime | None = None,
    plan: _Plan | None = None,
    events: Mapping[str, Iterable[str]] | None = None,
    models_changed: bool = True,
) -> dict[str, dict[str, int]]:
    """Re-evaluate the tenant's dynamic segments for just ``person_ids``; write the differences
    (members and entered/exited history). Returns ``{segment_key: {"entered": n, "exited": m}}`` for
    the segments that changed. Other persons' rows are not read or written.

    ``events`` (person → names of their new events) narrows the work to what can have changed: a
    segment is re-evaluated for a person when its rule reads one of those events, or reads tags/scores
    and ``models_changed`` (the real-time tags ran for them). Without ``events``: every segment."""
    now = now or utcnow()
    pids = sorted(set(person_ids))
    plan = plan or build_plan(conn, tenant_id=tenant_id)
    names = {p: set(v) for p, v in events.items()} if events is not None else None
    changes: dict[str, tuple[list[str], list[str]]] = {it.id: ([], []) for it in plan.items}
    m = segment_members
    for i in range(0, len(pids), CHUNK):
        chunk = pids[i : i + CHUNK]
        for it in plan.items:
            todo = chunk
            if names is not None and not (it.reads_models and models_changed):
                todo = [p for p in chunk if not it.events.isdisjoint(names.get(p, ()))]
            if not todo:
                continue
            q = compile_rule(it.node, tenant_id=tenant_id, now=now, ctx=it.ctx, person_ids=todo)
            new = set(conn.execute(q).scalars().all())  # fetchall: DuckDB's row-by-row fetch is slow
            old = set(
                conn.execute(
                    sa.select(m.c.person_id).where(
                        m.c.tenant_id == tenant_id, m.c.segment_id == it.id, in_ids(m.c.person_id, todo)
                    )
                )
                .scalars()
                .all()
            )
            changes[it.id][0].extend(sorted(new - old))
            changes[it.id][1].extend(sorted(old - new))
    out: dict[str, dict[str, int]] = {}
    for it in plan.items:
        entered, exited = changes[it.id]
        if entered or exited:
            apply_changes(
                conn, tenant_id=tenant_id, segment_id=it.id, entered=entered, exited=exited, now=now
            )
            out[it.key] = {"entered": len(entered), "exited": len(exited)}
    return out


def apply_changes(
    conn: sa.Connection,
    *,
    tenant_id: str,
    segment_id: str,
    entered: list[str],
    exited: list[str],
    now: dt.datetime,
) -> None:
    """Membership rows, history rows and the member count for one segment's differences."""
    m = segment_members
    scope = sa.and_(m.c.tenant_id == tenant_id, m.c.segment_id == segment_id)
    for i in range(0, len(exited), 5000):
        conn.execute(sa.delete(m).where(scope, m.c.person_id.in_(exited[i : i + 5000])))
    if entered:
        conn.execute(
            sa.insert(m),
            [
                {"tenant_id": tenant_id, "segment_id": segment_id, "person_id": p, "since": now}
                for p in entered
            ],
        )
    hist = [(p, "entered") for p in entered] + [(p, "exited") for p in exited]
    if hist:
        conn.execute(
            sa.insert(segment_history),
            [
                {
                    "tenant_id": tenant_id,
                    "segment_id": segment_id,
                    "person_id": p,
                    "change": c,
                    "changed_at": now,
                }
                for p, c in hist
            ],
        )
        hooks.emit(
            hooks.SEGMENT_CHANGED,
            conn=conn,
            tenant_id=tenant_id,
            segment_id=segment_id,
            entered=entered,
            exited=exited,
            now=now,
        )
    conn.execute(
        sa.update(segments)
        .where(segments.c.id == segment_id)
        .values(member_count=segments.c.member_count + (len(entered) - len(exited)))
    )


# --- the schedule ------------------------------------------------------------------------------------
def due_segments(
    conn: sa.Connection, *, now: dt.datetime, tenant_id: str | None = None
) -> list[tuple[str, str]]:
    """(tenant_id, key) of the dynamic segments whose full recompute is due."""
    s = segments
    q = sa.select(s.c.tenant_id, s.c.key, s.c.refresh_every_minutes, s.c.last_refreshed_at).where(
        s.c.kind == "dynamic"
    )
    if tenant_id is not None:
        q = q.where(s.c.tenant_id == tenant_id)
    out = []
    for tid, key, every, last in conn.execute(q.order_by(s.c.tenant_id, s.c.key)):
        every = service.DEFAULT_REFRESH_MINUTES if every is None else every
        if every == 0:
            continue
        if last is None or as_utc(last) + dt.timedelta(minutes=every) <= now:
            out.append((tid, key))
    return out


def refresh_all(
    engine: sa.Engine,
    *,
    tenant_id: str | None = None,
    due_only: bool = False,
    now: dt.datetime | None = None,
    on_done: Callable[[str, str, dict[str, Any]], None] | None = None,
    lock: Any = None,
) -> list[dict[str, Any]]:
    """Fully recompute the dynamic segments (of one tenant, or all; only the due ones with
    ``due_only``), each in its own transaction. A segment that fails is reported, not fatal."""
    now = now or utcnow()
    with engine.connect() as conn:
        if due_only:
            todo = due_segments(conn, now=now, tenant_id=tenant_id)
        else:
            s = segments
            q = sa.select(s.c.tenant_id, s.c.key).where(s.c.kind == "dynamic")
            if tenant_id is not None:
                q = q.where(s.c.tenant_id == tenant_id)
            todo = [tuple(r) for r in conn.execute(q.order_by(s.c.tenant_id, s.c.key))]
    results = []
    for tid, key in todo:
        try:
            with lock or contextlib.nullcontext():
                res = _retrying(
                    engine, lambda c, tid=tid, key=key: service.refresh(c, tenant_id=tid, key=key, now=now)
                )
            res["tenant_id"] = tid
        except Exception as exc:  # one broken segment must not stop the others
            log.warning("full recompute of segment %s (tenant %s) failed: %s", key, tid, exc)
            res = {"tenant_id": tid, "key": key, "error": str(exc)}
        results.append(res)
        if on_done:
            on_done(tid, key, res)
    return results


def _us(t: dt.datetime) -> int:
    return (as_utc(t) - _EPOCH) // dt.timedelta(microseconds=1)


def _retrying(engine: sa.Engine, fn: Callable[[sa.Connection], Any], tries: int = 4) -> Any:
    """Run ``fn`` in a transaction; retry DuckDB's optimistic-concurrency conflicts (another thread
    wrote the same rows) and PostgreSQL serialization failures/deadlocks."""
    for attempt in range(tries):
        try:
            with engine.begin() as conn:
                return fn(conn)
        except sa.exc.DBAPIError as exc:
            text = str(exc).lower()
            retry = "conflict" in text or "deadlock" in text or "serializ" in text
            if not retry or attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return None  # pragma: no cover


# --- real-time tags and scores --------------------------------------------------------------------------------------
def realtime_scores() -> Callable[..., int] | None:
    """``medscrm.scores.realtime.refresh_persons`` if that module is installed."""
    try:
        mod = importlib.import_module("medscrm.scores.realtime")
    except ImportError:
        return None
    return getattr(mod, "refresh_persons", None)


# --- the background refresher ------------------------------------------------------------------------
class Refresher:
    """Follows newly stored events and keeps dynamic segments (and the real-time behaviour tags) fresh.

    ``step()`` does one cycle synchronously (tests, tools); ``start()``/``stop()`` run the fast and
    the slow lane as daemon threads (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        poll: float = 0.2,
        overlap: dt.timedelta = dt.timedelta(seconds=30),
        recent: dt.timedelta = dt.timedelta(seconds=3),
        schedule_every: float = 5.0,
        full_on_start: bool = True,
        scores: bool | None = None,
        plan_ttl: float = 60.0,
        batch: int = 20_000,
        tenant_id: str | None = None,
        wake: Callable[[], int] | None = None,
        min_cycle: float = 0.2,
        scores_batch_at: dt.time | None = None,
        daily_jobs: list[Callable[[], Any]] | None = None,
    ):
        self.engine = engine
        #: further daily jobs of the layers above (e.g. the retention run), each called by the slow lane
        #: as often as it looks for the scores batch; each decides itself whether anything is due
        self.daily_jobs = list(daily_jobs or [])
        self._jobs_checked = -1e9
        #: the scheduled scores batch (``medscrm.scores.schedule``), daily at this China time; None: off
        self.scores_batch_at = scores_batch_at
        self._scores_checked = -1e9  # monotonic time of the last look for due tenants
        #: the fast lane starts a cycle at most this often while events keep coming (seconds)
        self.min_cycle = min_cycle
        #: a cheap counter that grows when events are stored (the in-process Ingestor's): the fast lane
        #: looks at the database as soon as it moves instead of waiting for the next poll
        self.wake = wake
        self.tenant_id = tenant_id  # follow one tenant only (None: all)
        self.poll = poll
        self.overlap = overlap
        self.recent = min(recent, overlap)
        self.schedule_every = schedule_every
        self.full_on_start = full_on_start
        # real-time behaviour tags and scores (MEDSCRM_REALTIME_SCORES=0 leaves them to the daily batch)
        self.use_scores = scores if scores is not None else get_settings().realtime_scores
        self.plan_ttl = plan_ttl
        self.batch = batch
        self.watermark: dt.datetime | None = None
        self._seen: dict[str, int] = {}  # event id → received_at (µs since the epoch)
        self._times: list[int] = []  # received_at of the ids seen in the overlap window, sorted
        self._floor = _EPOCH  # events received up to here are covered by the start-up full recompute
        self._plans: dict[str, _Plan] = {}
        self._pending: dict[str, dict[str, set[str]]] = {}  # affected persons of a failed cycle
        self._c1 = realtime_scores() if self.use_scores else None
        self._last_schedule = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._queue: dict[str, set[str]] = {}  # tenant → persons waiting for the real-time scores (slow lane)
        # tenant → persons whose tags/scores the real-time refresh changed, for the fast lane's segments reading them
        self._models_changed: dict[str, set[str]] = {}
        self._queue_cv = threading.Condition()
        # event id → when it was handed to the real-time scores by notify_stored (the fast lane does not hand it again)
        self._c1_given: dict[str, float] = {}
        self._c1_given_pruned = time.monotonic()
        self._c1_affected: dict[str, dict[str, set[str]]] = {}  # the last poll's persons to score
        self.last_error: str | None = None
        self.stats: dict[str, Any] = {
            "cycles": 0,
            "events": 0,
            "persons": 0,
            "entered": 0,
            "exited": 0,
            "late_events": 0,
            "scores_changed": 0,
            "full_recomputes": 0,
            "last_cycle_s": 0.0,
            "poll_s": 0.0,
            "segments_s": 0.0,
            "c1_pushed": 0,  # events whose persons the in-process Ingestor handed to the real-time scores (notify_stored)
            "c1_persons": 0,  # slow lane: persons given to the real-time score refresh, in how many batches
            "c1_batches": 0,
            "c1_s": 0.0,  # … the time the scores took, and the re-evaluation of the segments reading its output
            "c1_segments_s": 0.0,
            "visible_lag_max_s": None,
            "visible_lag_mean_s": None,
            "scores_batches": 0,  # scheduled scores batches run by the slow lane, and the last one's summary
            "last_scores_batch": None,
        }

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Two daemon threads: the fast lane follows events and updates memberships (a fraction of a
        second per cycle); the slow lane runs the real-time tags/scores for the same persons (then
        re-evaluates the segments that read tags or scores) and the scheduled full recomputes, so
        neither ever holds up a membership update."""
        if self.full_on_start:
            self._last_schedule = -1.0  # the slow lane starts with a full recompute of everything
        self._threads = [
            threading.Thread(target=self._run, name="medscrm-segment-refresher", daemon=True),
            threading.Thread(target=self._run_slow, name="medscrm-segment-refresher-slow", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        with self._queue_cv:
            self._queue_cv.notify_all()
        for t in self._threads:
            t.join(timeout=30)

    def _loop(self, fn: Callable[[], bool], lane: str) -> None:
        def step() -> bool:
            t0 = time.monotonic()
            busy = fn()
            if busy and lane == "fast" and self.min_cycle > 0:
                # under a steady load, cycles back to back each paid their fixed queries for a few
                # dozen events; a floor on the period lets each cycle take more events at once
                # and leaves the process's one core to the slow lane (real-time scores) meanwhile
                self._stop.wait(max(0.0, self.min_cycle - (time.monotonic() - t0)))
            return busy

        def failed(exc: Exception) -> None:  # database down or busy: keep the watermark, retry
            self.last_error = f"{lane}: {type(exc).__name__}: {exc}"
            log.warning("segment refresh (%s lane) failed, will retry: %s", lane, self.last_error)

        run_until_stopped(
            step,
            self._stop,
            # the slow lane waits for work inside its cycle; the fast lane idles until events arrive
            idle=self._idle if lane == "fast" else lambda: None,
            retry_wait=lambda failures: backoff(failures, self.poll, 10.0),
            on_error=failed,
        )

    def _idle(self) -> None:
        """Wait up to ``poll`` seconds, less when the ``wake`` counter says events were stored."""
        if self.wake is None:
            self._stop.wait(self.poll)
            return
        start, deadline = self.wake(), time.monotonic() + self.poll
        while time.monotonic() < deadline and self.wake() == start:
            if self._stop.wait(0.01):
                return

    def _run(self) -> None:
        self._loop(self._fast_cycle, "fast")

    def _run_slow(self) -> None:
        self._loop(self._slow_cycle, "slow")

    def _fast_cycle(self) -> bool:
        t0 = time.perf_counter()
        affected = self.poll_events()
        for tenant_id, by_person in self._pending.items():  # what a failed cycle left (the watermark moved)
            for pid, names in by_person.items():
                affected.setdefault(tenant_id, {}).setdefault(pid, set()).update(names)
        self._pending = {}
        for_c1, self._c1_affected = self._c1_affected, {}  # (a failed cycle's persons were handed already)
        if self.use_scores and self._c1 is not None and for_c1:
            # the real-time scores start on these persons now, beside the membership updates below (those whose events
            # the Ingestor already handed over through notify_stored are not queued twice)
            with self._queue_cv:
                for tenant_id, by_person in for_c1.items():
                    self._queue.setdefault(tenant_id, set()).update(by_person)
                self._queue_cv.notify_all()
        with self._queue_cv:  # persons whose tags/scores changed: segments reading those
            models, self._models_changed = self._models_changed, {}
        t1 = time.perf_counter()
        self.stats["poll_s"] += t1 - t0
        for n, (tenant_id, by_person) in enumerate(affected.items()):
            try:
                self.refresh_tenant(tenant_id, by_person, scores=False, events=by_person)
            except Exception:
                self._pending = dict(list(affected.items())[n:])  # retried next cycle
                raise
        t2 = time.perf_counter()
        self.stats["segments_s"] += t2 - t1
        for n, (tenant_id, pids) in enumerate(models.items()):
            try:
                self.refresh_tenant(tenant_id, pids, scores=False, models_only=True, count=False)
            except Exception:
                with self._queue_cv:  # retried next cycle
                    for t, p in list(models.items())[n:]:
                        self._models_changed.setdefault(t, set()).update(p)
                raise
        self.stats["c1_segments_s"] += time.perf_counter() - t2
        self.stats["cycles"] += 1
        self.stats["last_cycle_s"] = time.perf_counter() - t0
        return bool(affected) or bool(models)

    def _slow_cycle(self) -> bool:
        with self._queue_cv:
            if not self._queue and not self._schedule_due():
                self._queue_cv.wait(timeout=min(self.schedule_every, 1.0))
            queued, self._queue = self._queue, {}
        fn = self._c1
        for tenant_id, pids in queued.items():
            ordered = sorted(pids)
            for k in range(0, len(ordered), LOCK_CHUNK):
                part = ordered[k : k + LOCK_CHUNK]
                t0 = time.perf_counter()
                n = self._scores(fn, tenant_id, part, None) if fn is not None else 0
                if n:
                    # the segments reading tags/scores are re-evaluated by the fast lane's next cycle:
                    # the slow lane goes on with the next batch of real-time scores
                    with self._queue_cv:
                        self._models_changed.setdefault(tenant_id, set()).update(part)
                self.stats["c1_persons"] += len(part)
                self.stats["c1_batches"] += 1
                self.stats["c1_s"] += time.perf_counter() - t0
        self.run_schedule()
        self.run_scores_batch()
        self.run_daily_jobs()
        return bool(queued)

    #: how often the slow lane looks for tenants due for the scheduled scores batch (seconds)
    SCORES_CHECK_EVERY = 60.0

    def run_scores_batch(
        self, now: dt.datetime | None = None, force_check: bool = False
    ) -> list[dict[str, Any]]:
        """The scheduled scores batch for the tenants due (``medscrm.scores.schedule``), looked for at most
        every :data:`SCORES_CHECK_EVERY` seconds (a failed tenant is retried at the next look)."""
        if self.scores_batch_at is None:
            return []
        if not force_check and time.monotonic() - self._scores_checked < self.SCORES_CHECK_EVERY:
            return []
        self._scores_checked = time.monotonic()
        try:
            schedule = importlib.import_module("medscrm.scores.schedule")
        except ImportError:
            return []
        res = schedule.run_due(self.engine, now=now, at=self.scores_batch_at, tenant_id=self.tenant_id)
        if res:
            self.stats["scores_batches"] += sum(1 for r in res if "error" not in r)
            self.stats["last_scores_batch"] = res[-1]
        return res

    def run_daily_jobs(self, force_check: bool = False) -> list[Any]:
        """Call the daily jobs, at most every :data:`SCORES_CHECK_EVERY` seconds; a failing job is
        logged and called again at the next look."""
        if not self.daily_jobs:
            return []
        if not force_check and time.monotonic() - self._jobs_checked < self.SCORES_CHECK_EVERY:
            return []
        self._jobs_checked = time.monotonic()
        out = []
        for job in self.daily_jobs:
            try:
                out.append(job())
            except Exception as exc:  # the slow lane goes on; the job is retried at the next look
                log.warning("daily job %s failed: %s", getattr(job, "__name__", job), exc)
        return out

    def _schedule_due(self) -> bool:
        return self._last_schedule < 0 or time.monotonic() - self._last_schedule >= self.schedule_every

    def run_schedule(self, now: dt.datetime | None = None) -> int:
        """The due full recomputes (all dynamic segments the first time when ``full_on_start``)."""
        if not self._schedule_due():
            return 0
        first = self._last_schedule < 0
        self._last_schedule = time.monotonic()
        res = refresh_all(
            self.engine, tenant_id=self.tenant_id, due_only=not first, now=now or utcnow(), lock=self._lock
        )
        self.stats["full_recomputes"] += len(res)
        return len(res)

    # -- one cycle -------------------------------------------------------------------------------------
    def step(self, now: dt.datetime | None = None) -> bool:
        """One synchronous cycle (tests, tools): newly stored events → real-time tags/scores →
        segments, then the due full recomputes. True if there was work."""
        t0 = time.perf_counter()
        started = self.watermark is not None
        affected = self.poll_events()
        for tenant_id, by_person in affected.items():
            self.refresh_tenant(tenant_id, by_person, now=now, scores=self.use_scores, events=by_person)
        full = self.run_schedule(now)
        self.stats["cycles"] += 1
        self.stats["last_cycle_s"] = time.perf_counter() - t0
        return bool(affected) or full > 0 or not started

    def _scope(self) -> list[sa.ColumnElement[bool]]:
        return [] if self.tenant_id is None else [events.c.tenant_id == self.tenant_id]

    def poll_events(self) -> dict[str, dict[str, set[str]]]:
        """Newly stored events since the watermark (and late ones behind it) → affected persons."""
        e = events
        cols = (e.c.id, e.c.tenant_id, e.c.person_id, e.c.user_id, e.c.event, e.c.received_at)
        with self.engine.connect() as conn:
            if self.watermark is None:
                top = conn.execute(sa.select(sa.func.max(e.c.received_at)).where(*self._scope())).scalar()
                # never in the future: a row written with a future received_at must not hide new events
                self.watermark = min(as_utc(top), utcnow()) if top is not None else _EPOCH
                if self.full_on_start:
                    # what is stored now is covered by the start-up full recompute: late detection
                    # only looks after it
                    self._floor = self.watermark
                    return {}
            w = self.watermark
            rows = conn.execute(
                sa.select(*cols)
                .where(e.c.received_at > w, *self._scope())
                .order_by(e.c.received_at)
                .limit(self.batch)
            ).all()
            late = self._late(conn, w, cols)
        fresh = [r for r in rows if r.id not in self._seen] + late
        self.stats["late_events"] += len(late)
        if fresh:  # received by the API → visible here (the ingestion flusher's share of the latency)
            at = utcnow()
            lags = [(at - as_utc(r.received_at)).total_seconds() for r in fresh]
            self.stats["visible_lag_max_s"] = round(max(lags), 3)
            self.stats["visible_lag_mean_s"] = round(sum(lags) / len(lags), 3)
        for r in fresh:
            self._remember(r.id, _us(r.received_at))
        if rows:
            self.watermark = min(max(w, as_utc(rows[-1].received_at)), max(w, utcnow()))
        self._forget_before(_us(self.watermark - self.overlap))
        self.stats["events"] += len(fresh)
        affected = self._persons(fresh)
        with self._queue_cv:  # to score: the persons of events notify_stored did not hand over
            given = self._c1_given
            rest = [r for r in fresh if r.id not in given] if given else fresh
            now = time.monotonic()
            if now - self._c1_given_pruned > 5.0:
                cutoff = now - self.overlap.total_seconds()
                self._c1_given = {k: t for k, t in given.items() if t >= cutoff}
                self._c1_given_pruned = now
        self._c1_affected = affected if len(rest) == len(fresh) else self._persons(rest)
        return affected

    def notify_stored(self, rows: list[tuple]) -> None:
        """Track events the in-process Ingestor just committed, ``(id, tenant_id, person_id, event)``
        with the person known: their persons go to the real-time scores (the slow lane) at once, instead of after the
        fast lane's next poll; the fast lane still updates their memberships and does not hand these
        events to the real-time scores again. Called from the flusher thread."""
        if not (self.use_scores and self._c1 is not None) or not rows:
            return
        now = time.monotonic()
        n = 0
        with self._queue_cv:
            for eid, tenant_id, pid, _event in rows:
                if self.tenant_id is not None and tenant_id != self.tenant_id:
                    continue
                self._queue.setdefault(tenant_id, set()).add(pid)
                self._c1_given[eid] = now
                n += 1
            self.stats["c1_pushed"] += n
            self._queue_cv.notify_all()

    # the ids seen over the overlap window, and their received_at (µs) kept sorted for range counts
    def _remember(self, eid: str, t: int) -> None:
        if eid in self._seen:
            return
        self._seen[eid] = t
        if not self._times or t >= self._times[-1]:
            self._times.append(t)
        else:
            bisect.insort(self._times, t)

    def _forget_before(self, low: int) -> None:
        k = bisect.bisect_left(self._times, low)
        if k:
            del self._times[:k]
        if len(self._seen) > 2 * len(self._times) + 1000:  # drop stale ids now and then, not per cycle
            self._seen = {i: t for i, t in self._seen.items() if t >= low}

    def _seen_between(self, lo: int, hi: int) -> int:
        return bisect.bisect_left(self._times, hi) - bisect.bisect_left(self._times, lo)

    def _late(self, conn: sa.Connection, w: dt.datetime, cols: tuple) -> list:
        """Events stored since the last cycle with ``received_at`` at or behind the watermark: found by
        comparing counts per band (recent, then the rest of the overlap) with the ids already seen."""
        e = events
        out = []
        top = w + dt.timedelta(microseconds=1)
        floor = max(w - self.overlap, self._floor + dt.timedelta(microseconds=1))
        for lo, hi in ((max(w - self.recent, floor), top), (floor, max(w - self.recent, floor))):
            if lo >= hi:
                continue
            stored = conn.execute(
                sa.select(sa.func.count()).where(e.c.received_at >= lo, e.c.received_at < hi, *self._scope())
            ).scalar_one()
            if stored > self._seen_between(_us(lo), _us(hi)):
                rows = conn.execute(
                    sa.select(*cols).where(e.c.received_at >= lo, e.c.received_at < hi, *self._scope())
                ).all()
                out += [r for r in rows if r.id not in self._seen]
        return out

    def _persons(self, rows: list) -> dict[str, dict[str, set[str]]]:
        """tenant → person → names of their new events (events of unknown people are skipped)."""
        out: dict[str, dict[str, set[str]]] = {}
        users: dict[str, dict[str, set[str]]] = {}
        for r in rows:
            name = {r.event} if r.event else set()
            if r.person_id:
                out.setdefault(r.tenant_id, {}).setdefault(r.person_id, set()).update(name)
            elif r.user_id:
                users.setdefault(r.tenant_id, {}).setdefault(r.user_id, set()).update(name)
        if users:
            i = identities
            with self.engine.connect() as conn:
                for tenant_id, by_uid in users.items():
                    ul = sorted(by_uid)
                    for k in range(0, len(ul), 5000):
                        found = conn.execute(
                            sa.select(i.c.value, i.c.person_id)
                            .where(
                                i.c.tenant_id == tenant_id,
                                i.c.type == "user_id",
                                in_ids(i.c.value, ul[k : k + 5000]),
                            )
                            .distinct()
                        ).all()
                        for uid, pid in found:
                            out.setdefault(tenant_id, {}).setdefault(pid, set()).update(by_uid[uid])
        return {t: p for t, p in out.items() if p}

    def plan(self, conn: sa.Connection, tenant_id: str) -> _Plan:
        p = self._plans.get(tenant_id)
        if (
            p is None
            or time.monotonic() - p.built_at > self.plan_ttl
            or p.signature != _signature(conn, tenant_id)
        ):
            p = self._plans[tenant_id] = build_plan(conn, tenant_id=tenant_id)
        return p

    def status(self) -> dict[str, Any]:
        """Counters and lag, for the API and benchmarks."""
        wm = self.watermark
        with self._queue_cv:
            queued = sum(len(v) for v in self._queue.values())
        return {
            **self.stats,
            "running": any(t.is_alive() for t in self._threads),
            "watermark": wm.isoformat() if wm else None,
            "lag_s": round((utcnow() - wm).total_seconds(), 3) if wm and wm > _EPOCH else None,
            "queued_for_scores": queued,
            "realtime_scores": self._c1 is not None,
            "last_error": self.last_error,
        }

    def _scores(
        self, fn: Callable[..., int], tenant_id: str, pids: list[str], now: dt.datetime | None
    ) -> int:
        try:
            n = _retrying(self.engine, lambda c: fn(c, tenant_id=tenant_id, person_ids=pids, now=now)) or 0
        except Exception as exc:  # the scores must not hold up the segments
            log.warning("real-time scores failed for tenant %s: %s", tenant_id, exc)
            return 0
        self.stats["scores_changed"] += n
        return n

    def refresh_tenant(
        self,
        tenant_id: str,
        person_ids: Iterable[str],
        *,
        now: dt.datetime | None = None,
        scores: bool = True,
        events: Mapping[str, Iterable[str]] | None = None,
        models_only: bool = False,
        count: bool = True,
    ) -> dict:
        """The real-time tags and scores first when ``scores`` (rules may read them), then the
        segments: with ``events`` (person → new event names) only where those events or (after the scores)
        tags/scores can move someone; with ``models_only`` only the segments reading tags/scores."""
        pids = sorted(person_ids)
        if count:
            self.stats["persons"] += len(pids)
        fn = self._c1 if scores else None
        if fn is not None:
            self._scores(fn, tenant_id, pids, now)
        with self.engine.connect() as conn:
            plan = self.plan(conn, tenant_id)
        if models_only:
            plan = plan.reading_models()
        if not plan.items:
            return {}
        changed: dict[str, dict[str, int]] = {}
        # one writer of memberships at a time in this process (full recomputes too), held for at
        # most LOCK_CHUNK persons so that a big slow-lane batch never holds up the fast lane for long
        for k in range(0, len(pids), LOCK_CHUNK):
            part = pids[k : k + LOCK_CHUNK]
            with self._lock:
                got = _retrying(
                    self.engine,
                    lambda c, part=part: refresh_persons(
                        c,
                        tenant_id=tenant_id,
                        person_ids=part,
                        now=now,
                        plan=plan,
                        events=events,
                        models_changed=fn is not None or models_only,
                    ),
                )
            for key, v in got.items():
                acc = changed.setdefault(key, {"entered": 0, "exited": 0})
                acc["entered"] += v["entered"]
                acc["exited"] += v["exited"]
        for v in changed.values():
            self.stats["entered"] += v["entered"]
            self.stats["exited"] += v["exited"]
        return changed
