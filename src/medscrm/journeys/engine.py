"""The durable journey engine (旅程引擎).

State lives in the database: one ``journey_enrollments`` row per person and journey (current step,
``next_run_at``, visit counters), one ``journey_step_runs`` row per step execution, unique by its
idempotency key ``<enrollment id>:<step id>:<visit>``. ``run_due`` claims due enrollments
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several workers never take the same one; DuckDB: one
in-process runner) and, in ONE transaction, executes their steps, writes the history rows, the new
enrollment states and — through C3 ``request_send`` in the same connection — the outbox rows of
sends. A worker killed at any moment therefore either committed a step with its send, or neither:
a send happens exactly once. Waits are ``next_run_at`` values, so they survive restarts.

Triggers: event triggers follow newly stored events (a watermark on ``received_at``, re-reading a
short overlap; each event enrols at most once through ``trigger_ref``), segment entry/exit follow
``segment_history``, schedules fire at ``next_fire_at``; the API enrols directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from medscrm import hooks
from medscrm.common import MedscrmError, NotFound, backoff, new_id, utcnow
from medscrm.config import get_settings
from medscrm.db import bulk
from medscrm.db.claim import skip_locked
from medscrm.db.schema import (
    events,
    identities,
    identity_links,
    journey_enrollments,
    journey_step_runs,
    journey_triggers,
    journey_versions,
    journeys,
    person_tags,
    persons,
    segment_history,
    segment_members,
    segments,
    tag_history,
    tasks,
)
from medscrm.journeys.model import (
    WINDOWS,
    BranchStep,
    EventTrigger,
    ExitStep,
    GoalStep,
    Journey,
    PropertyFilter,
    ScheduleTrigger,
    SegmentTrigger,
    SendStep,
    SetAttributeStep,
    SplitStep,
    TagStep,
    TaskStep,
    WaitStep,
    WaitWindowStep,
    WebhookStep,
    parse_duration,
    validate_definition,
)

log = logging.getLogger("medscrm.journeys")
CHINA = ZoneInfo("Asia/Shanghai")
ACTIVE = "active"
MAX_CHAIN = 50  # steps one enrollment may take in one claim (graphs have no wait-free cycles)
MAX_ATTEMPTS = 5
TRIGGER_OVERLAP = dt.timedelta(minutes=2)  # events/segment changes committed late are still seen
_defs: dict[tuple[str, int], Journey] = {}
_defs_lock = threading.Lock()
_local_runner = threading.Lock()  # DuckDB: one runner per process


def journey_def(conn: sa.Connection, journey_id: str, version: int) -> Journey:
    """A journey version's definition (versions are immutable, so cached per process)."""
    k = (journey_id, int(version))
    j = _defs.get(k)
    if j is None:
        v = journey_versions
        d = conn.execute(
            sa.select(v.c.definition).where(v.c.journey_id == journey_id, v.c.version == version)
        ).scalar_one()
        j = validate_definition(d)
        with _defs_lock:
            _defs[k] = j
    return j


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def window_start(now: dt.datetime, window: str) -> dt.datetime | None:
    """None when ``now`` (China time) is inside the window, else the next start of the window (UTC)."""
    start, end = WINDOWS[window]
    local = now.astimezone(CHINA)
    h = local.hour
    inside = start <= h < end if start < end else (h >= start or h < end)
    if inside:
        return None
    cand = local.replace(hour=start, minute=0, second=0, microsecond=0)
    if cand <= local:
        cand += dt.timedelta(days=1)
    return cand.astimezone(dt.UTC)


def split_choice(key: str, weights: list[float]) -> int:
    """A deterministic weighted choice from the idempotency key: a retried step picks the same branch."""
    x = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    total = sum(weights)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w / total
        if x < acc:
            return i
    return len(weights) - 1


def _match_filter(props: dict[str, Any], f: PropertyFilter) -> bool:
    v = props.get(f.property)
    if f.op == "exists":
        return v is not None
    if f.op == "eq":
        return v == f.value or (v is not None and str(v) == str(f.value))
    if f.op == "ne":
        return not (v == f.value or (v is not None and str(v) == str(f.value)))
    if f.op in ("in", "not_in"):
        vals = f.value if isinstance(f.value, list) else [f.value]
        hit = v in vals or str(v) in {str(x) for x in vals}
        return hit if f.op == "in" else not hit
    if f.op == "contains":
        return v is not None and str(f.value) in str(v)
    try:
        a, b = float(v), float(f.value)
    except (TypeError, ValueError):
        return False
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[f.op]


# --- sending (C3) ------------------------------------------------------------------------------
def _send_api():
    try:
        from medscrm.outreach.send import SendRequest, request_send
    except ImportError:  # pragma: no cover - outreach is part of the product
        raise MedscrmError("channel sending (medscrm.outreach.send) is not installed") from None
    return SendRequest, request_send


def dispatch(
    engine: sa.Engine, *, worker_id: str, tenant_id: str | None = None, now=None, limit: int = 100
) -> int:
    """C3 ``dispatch_once`` (delivers queued sends); 0 when outreach is not installed."""
    try:
        from medscrm.outreach.send import dispatch_once
    except ImportError:
        return 0
    return dispatch_once(engine, worker_id=worker_id, tenant_id=tenant_id, limit=limit, now=now)


# --- one batch of claimed enrollments ------------------------------------------------------------
class _Batch:
    def __init__(self, conn: sa.Connection, *, worker_id: str, now: dt.datetime):
        self.conn = conn
        self.worker_id = worker_id
        self.now = now
        self.history: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.steps = 0
        self._rule_cache: dict[tuple, Any] = {}
        self._content: dict[tuple[str, str], str | None] = {}
        self._jkeys: dict[str, str] = {}

    # rules (branch conditions, goals) are compiled once per batch
    def _members(self, tenant_id: str, rule: Any, person_ids: list[str]) -> set[str]:
        from medscrm.rules import compile_rule, parse
        from medscrm.tags.service import rule_context

        ck = ("ctx", tenant_id)
        ctx = self._rule_cache.get(ck)
        if ctx is None:
            ctx = self._rule_cache[ck] = rule_context(self.conn, tenant_id=tenant_id)
        rk = (tenant_id, repr(rule))
        q = self._rule_cache.get(rk)
        if q is None:
            q = self._rule_cache[rk] = compile_rule(
                parse(rule, ctx), tenant_id=tenant_id, now=self.now, ctx=ctx
            )
        out: set[str] = set()
        for i in range(0, len(person_ids), 2000):
            out |= set(self.conn.execute(q.where(persons.c.id.in_(person_ids[i : i + 2000]))).scalars())
        return out

    def run(self, rows: list[Any]) -> None:
        goal_hits: dict[tuple[str, int], set[str]] = {}
        groups: dict[tuple[str, int], list[str]] = {}
        for r in rows:
            groups.setdefault((r.journey_id, r.version), []).append(r.person_id)
        for (jid, ver), pids in groups.items():
            j = journey_def(self.conn, jid, ver)
            if j.goal is not None:
                goal_hits[(jid, ver)] = self._members(_tenant_of(rows, jid), j.goal, pids)
        for r in rows:
            self._advance(r, goal_hits.get((r.journey_id, r.version), set()))

    def _advance(self, r: Any, goal_hits: set[str]) -> None:
        j = journey_def(self.conn, r.journey_id, r.version)
        st = {
            "id": r.id,
            "status": ACTIVE,
            "current_step": r.current_step,
            "step_state": r.step_state,
            "next_run_at": self.now,
            "attempt": 0,
            "visits": dict(r.visits or {}),
            "last_error": None,
            "updated_at": self.now,
            "finished_at": None,
        }
        if r.person_id in goal_hits:
            self._record(
                r,
                j.step(r.current_step),
                outcome="converted",
                reason="goal",
                visit=0,
                key=f"{r.id}:goal",
            )
            self._finish(st, "converted")
            self.updates.append(st)
            return
        for _ in range(MAX_CHAIN):
            step = j.step(st["current_step"])
            if st["step_state"] == "waiting":  # the wait is over
                st["step_state"] = "enter"
                self._move(st, step.next)
                if st["status"] != ACTIVE:
                    break
                continue
            visit = int(st["visits"].get(step.id, 0)) + 1
            st["visits"][step.id] = visit
            key = f"{r.id}:{step.id}:{visit}"
            nxt, until = self._execute(r, j, step, st, key, visit)
            self.steps += 1
            if st["status"] != ACTIVE:
                break
            if until is not None:
                st["step_state"] = "waiting"
                st["next_run_at"] = until
                break
            self._move(st, nxt)
            if st["status"] != ACTIVE:
                break
        self.updates.append(st)

    def _move(self, st: dict[str, Any], nxt: str | None) -> None:
        if nxt is None:
            self._finish(st, "completed")
        else:
            st["current_step"] = nxt
            st["step_state"] = "enter"
            st["next_run_at"] = self.now

    def _finish(self, st: dict[str, Any], status: str) -> None:
        st["status"] = status
        st["finished_at"] = self.now
        st["next_run_at"] = None

    def _record(self, r, step, *, outcome, reason=None, send_id=None, detail=None, visit, key) -> None:
        self.history.append(
            {
                "id": new_id("jsr"),
                "tenant_id": r.tenant_id,
                "journey_id": r.journey_id,
                "version": r.version,
                "enrollment_id": r.id,
                "person_id": r.person_id,
                "step_id": step.id,
                "step_type": step.type,
                "visit": visit,
                "idempotency_key": key,
                "outcome": outcome,
                "reason": reason,
                "send_id": send_id,
                "detail": detail,
                "worker_id": self.worker_id,
                "executed_at": self.now,
            }
        )

    def _jkey(self, journey_id: str) -> str:
        k = self._jkeys.get(journey_id)
        if k is None:
            k = self._jkeys[journey_id] = self.conn.execute(
                sa.select(journeys.c.key).where(journeys.c.id == journey_id)
            ).scalar_one()
        return k

    def _execute(
        self, r, j: Journey, step, st, key: str, visit: int
    ) -> tuple[str | None, dt.datetime | None]:
        """Run one step; returns (next step id, wait-until or None)."""
        rec = lambda **kw: self._record(r, step, visit=visit, key=key, **kw)  # noqa: E731
        if isinstance(step, WaitStep):
            until = self.now + parse_duration(step.duration)
            rec(outcome="waiting", detail={"until": until.isoformat()})
            return step.next, until
        if isinstance(step, WaitWindowStep):
            pref = self.conn.execute(
                sa.select(person_tags.c.value).where(
                    person_tags.c.tenant_id == r.tenant_id,
                    person_tags.c.person_id == r.person_id,
                    person_tags.c.tag_key == "time_preference",
                )
            ).scalar()
            window = pref if pref in WINDOWS else step.default_window
            until = window_start(self.now, window)
            detail = {"window": window, "preferred": pref in WINDOWS}
            if until is None:
                rec(outcome="done", reason="in_window", detail=detail)
                return step.next, None
            rec(outcome="waiting", detail={**detail, "until": until.isoformat()})
            return step.next, until
        if isinstance(step, BranchStep):
            hit = r.person_id in self._members(r.tenant_id, step.condition, [r.person_id])
            rec(outcome="done", reason="then" if hit else "else")
            return (step.then if hit else step.else_), None
        if isinstance(step, SplitStep):
            i = split_choice(key, [b.weight for b in step.branches])
            rec(outcome="done", reason=f"branch_{i}", detail={"branch": i, "label": step.branches[i].label})
            return step.branches[i].next, None
        if isinstance(step, SendStep | WebhookStep):
            return self._send(r, j, step, st, key, rec)
        if isinstance(step, TagStep):
            changed = self._tag(r, step, key)
            rec(outcome="done", reason=None if changed else "unchanged")
            return step.next, None
        if isinstance(step, SetAttributeStep):
            self._set_attribute(r, step)
            rec(outcome="done")
            return step.next, None
        if isinstance(step, TaskStep):
            assignee = self._task(r, step, key)
            rec(outcome="done", reason=None if assignee else "no_rep", detail={"assignee": assignee})
            return step.next, None
        if isinstance(step, GoalStep):
            rec(outcome="converted", reason="goal_step")
            self._finish(st, "converted")
            return None, None
        if isinstance(step, ExitStep):
            rec(outcome="done", reason="exit")
            self._finish(st, "completed")
            return None, None
        raise MedscrmError(f"step {step.id!r}: unknown type {step.type!r}")  # pragma: no cover

    def _content_id(self, tenant_id: str, ref: str) -> str | None:
        k = (tenant_id, ref)
        if k not in self._content:
            item = content_lookup(self.conn, tenant_id=tenant_id, ref=ref)
            self._content[k] = item["id"] if item else None
        return self._content[k]

    def _send(self, r, j: Journey, step, st, key: str, rec):
        SendRequest, request_send = _send_api()
        origin = f"journey:{r.journey_id}:{step.id}"
        ctx_vars = dict(r.context or {})
        if isinstance(step, SendStep):
            content_id = self._content_id(r.tenant_id, step.content)
            if content_id is None:
                rec(outcome="blocked", reason="content_missing", detail={"content": step.content})
                return (step.on_blocked or step.next), None
            req = SendRequest(
                tenant_id=r.tenant_id,
                person_id=r.person_id,
                channel=step.channel,
                content_id=content_id,
                idempotency_key=key,
                purpose=step.purpose,
                origin=origin,
                variables=self._send_vars(r, step, ctx_vars),
            )
        else:
            req = SendRequest(
                tenant_id=r.tenant_id,
                person_id=r.person_id,
                channel="webhook",
                content_id=None,
                idempotency_key=key,
                purpose="service",
                origin=origin,
                variables={
                    "journey": self._jkey(r.journey_id),
                    "step": step.id,
                    "person_id": r.person_id,
                    "enrollment_id": r.id,
                    "context": ctx_vars,
                    **step.payload,
                },
            )
        out = request_send(self.conn, req, now=self.now)
        status = getattr(out, "status", None)
        if status == "blocked":
            rec(outcome="blocked", reason=out.reason or "blocked", send_id=getattr(out, "send_id", None))
            nxt = step.on_blocked if isinstance(step, SendStep) and step.on_blocked else step.next
            return nxt, None
        rec(
            outcome="sent" if status == "queued" else str(status or "sent"),
            send_id=getattr(out, "send_id", None),
        )
        return step.next, None

    def _send_vars(self, r, step: SendStep, ctx_vars: dict[str, Any]) -> dict[str, Any]:
        out = {**ctx_vars, **step.variables}
        if step.channel == "wecom" and "sender" not in out:  # WeCom messages go out from the HCP's rep
            rep = self.rep_of(r.tenant_id, r.person_id)
            if rep:
                out["sender"] = rep
        return out

    def _tag(self, r, step: TagStep, key: str) -> bool:
        pt = person_tags
        where = (pt.c.tenant_id == r.tenant_id, pt.c.person_id == r.person_id, pt.c.tag_key == step.tag)
        old = self.conn.execute(sa.select(pt.c.value).where(*where)).first()
        old_value = old[0] if old else None
        reason = {"journey": self._jkey(r.journey_id), "step": step.id, "key": key}
        if step.type == "remove_tag":
            if old is None:
                return False
            self.conn.execute(sa.delete(pt).where(*where))
            new_value = None
        else:
            new_value = step.value if step.value is not None else "true"
            if old is not None and old_value == new_value:
                return False
            if old is not None:
                self.conn.execute(sa.delete(pt).where(*where))
            self.conn.execute(
                sa.insert(pt).values(
                    tenant_id=r.tenant_id,
                    person_id=r.person_id,
                    tag_key=step.tag,
                    value=new_value,
                    since=self.now,
                    source="journey",
                    reason=reason,
                )
            )
        self.conn.execute(
            sa.insert(tag_history).values(
                tenant_id=r.tenant_id,
                person_id=r.person_id,
                tag_key=step.tag,
                old_value=old_value,
                new_value=new_value,
                changed_at=self.now,
                reason=reason,
            )
        )
        return True

    def _set_attribute(self, r, step: SetAttributeStep) -> None:
        p = persons
        row = self.conn.execute(
            sa.select(p.c.attributes, p.c.lineage).where(p.c.tenant_id == r.tenant_id, p.c.id == r.person_id)
        ).first()
        if row is None:
            return
        attrs = dict(row.attributes or {})
        lineage = dict(row.lineage or {})
        attrs[step.attribute] = step.value
        lineage[step.attribute] = {
            "source": f"journey:{self._jkey(r.journey_id)}",
            "rule": f"step:{step.id}",
            "at": self.now.isoformat(),
        }
        self.conn.execute(
            sa.update(p)
            .where(p.c.tenant_id == r.tenant_id, p.c.id == r.person_id)
            .values(attributes=attrs, lineage=lineage, updated_at=self.now)
        )

    def rep_of(self, tenant_id: str, person_id: str) -> str | None:
        return rep_of(self.conn, tenant_id=tenant_id, person_id=person_id)

    def _task(self, r, step: TaskStep, key: str) -> str | None:
        assignee = self.rep_of(r.tenant_id, r.person_id) or step.assignee
        due = self.now + parse_duration(step.due) if step.due is not None else None
        self.conn.execute(
            sa.insert(tasks).values(
                id=new_id("tsk"),
                tenant_id=r.tenant_id,
                person_id=r.person_id,
                assignee=assignee,
                title=step.title,
                detail={"note": step.note, "journey": self._jkey(r.journey_id), "step": step.id},
                status="open",
                due_at=due,
                origin=f"journey:{r.journey_id}:{step.id}",
                idempotency_key=key,
                created_at=self.now,
            )
        )
        return assignee

    def flush(self) -> None:
        if self.history:
            bulk.append_rows(self.conn, journey_step_runs, self.history)
        if self.updates:
            _bulk_update(self.conn, self.updates)


def _tenant_of(rows: list[Any], journey_id: str) -> str:
    return next(r.tenant_id for r in rows if r.journey_id == journey_id)


def rep_of(conn: sa.Connection, *, tenant_id: str, person_id: str) -> str | None:
    """The person's rep: the WeCom user who has them as an external contact (identity links), else the
    ``rep_userid`` / ``owner_rep`` / ``owner`` attribute of the golden record."""
    row = conn.execute(
        sa.select(persons.c.attributes).where(persons.c.tenant_id == tenant_id, persons.c.id == person_id)
    ).first()
    attrs = (row[0] if row else None) or {}
    externals = set(
        conn.execute(
            sa.select(identities.c.value).where(
                identities.c.tenant_id == tenant_id,
                identities.c.person_id == person_id,
                identities.c.type == "wecom_external_userid",
            )
        ).scalars()
    )
    if attrs.get("wecom_external_userid"):
        externals.add(str(attrs["wecom_external_userid"]))
    if externals:
        il = identity_links
        rep = conn.execute(
            sa.select(il.c.value_b)
            .where(
                il.c.tenant_id == tenant_id,
                il.c.relation == "wecom_contact_of",
                il.c.type_a == "wecom_external_userid",
                il.c.value_a.in_(sorted(externals)),
            )
            .order_by(il.c.created_at.desc())
            .limit(1)
        ).scalar()
        if rep:
            return rep
    for k in ("rep_userid", "owner_rep", "owner"):
        if attrs.get(k):
            return str(attrs[k])
    return None


_UPD_COLS = (
    sa.Column("id", sa.String(40)),
    sa.Column("status", sa.String(16)),
    sa.Column("current_step", sa.String(64)),
    sa.Column("step_state", sa.String(16)),
    sa.Column("next_run_at", sa.DateTime(timezone=True)),
    sa.Column("attempt", sa.Integer),
    sa.Column("visits", sa.JSON),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
_UPD = sa.Table("_journey_upd", sa.MetaData(), *_UPD_COLS)


def _bulk_update(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Apply new enrollment states: small batches by executemany, larger ones through a temporary
    table (bulk append) and one ``UPDATE … FROM``."""
    e = journey_enrollments
    names = [c.name for c in _UPD_COLS if c.name != "id"]
    if len(rows) <= 20:
        stmt = (
            sa.update(e)
            .where(e.c.id == sa.bindparam("_id"))
            .values({n: sa.bindparam(f"_{n}") for n in names})
        )
        conn.execute(stmt, [{f"_{k}": v for k, v in r.items()} for r in rows])
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS _journey_upd (id varchar(40), status varchar(16), current_step "
            "varchar(64), step_state varchar(16), next_run_at timestamptz, attempt integer, visits jsonb, "
            "last_error text, updated_at timestamptz, finished_at timestamptz) ON COMMIT DELETE ROWS"
        )
    else:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS _journey_upd (id VARCHAR, status VARCHAR, current_step VARCHAR, "
            "step_state VARCHAR, next_run_at TIMESTAMPTZ, attempt INTEGER, visits JSON, last_error VARCHAR, "
            "updated_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)"
        )
        conn.exec_driver_sql("DELETE FROM _journey_upd")
    bulk.append_rows(conn, _UPD, rows)
    u = _UPD
    conn.execute(sa.update(e).where(e.c.id == u.c.id).values({n: u.c[n] for n in names}))
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql("DELETE FROM _journey_upd")


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


# --- enrolment -----------------------------------------------------------------------------------
def enroll_candidates(
    conn: sa.Connection,
    *,
    tenant_id: str,
    journey_row: Any,
    journey: Journey,
    candidates: list[tuple[str, str | None, dict[str, Any] | None]],
    now: dt.datetime,
    check_refs: bool = True,
) -> dict[str, Any]:
    """Enrol (person_id, trigger_ref, context) candidates under the re-entry rules and caps; returns
    {enrolled, skipped: {reason: n}}. Rows are appended in bulk in the caller's transaction."""
    e = journey_enrollments
    jid = journey_row["id"] if isinstance(journey_row, dict) else journey_row.id
    version = int(
        journey_row["current_version"] if isinstance(journey_row, dict) else journey_row.current_version
    )
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    if not candidates:
        return {"enrolled": 0, "skipped": skipped}
    if conn.dialect.name == "postgresql":  # serialise enrolments of one journey (re-entry checks)
        conn.execute(sa.select(journeys.c.id).where(journeys.c.id == jid).with_for_update())
    refs = [c[1] for c in candidates if c[1]]
    seen_refs: set[str] = set()
    if check_refs and refs:
        for i in range(0, len(refs), 5000):
            seen_refs |= set(
                conn.execute(
                    sa.select(e.c.trigger_ref).where(
                        e.c.tenant_id == tenant_id,
                        e.c.journey_id == jid,
                        e.c.trigger_ref.in_(refs[i : i + 5000]),
                    )
                ).scalars()
            )
    history: dict[str, list[Any]] = {}
    hq = sa.select(e.c.person_id, e.c.status, e.c.entered_at).where(
        e.c.tenant_id == tenant_id, e.c.journey_id == jid
    )
    pids = list({c[0] for c in candidates})
    total = 0
    for i in range(0, len(pids), 5000):
        for pid, status, entered in conn.execute(hq.where(e.c.person_id.in_(pids[i : i + 5000]))):
            h = history.setdefault(pid, [0, False, None])
            h[0] += 1
            h[1] = h[1] or status == ACTIVE
            h[2] = max(h[2], _aware(entered)) if h[2] else _aware(entered)
    if journey.caps.max_enrollments is not None:
        total = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(e)
                .where(e.c.tenant_id == tenant_id, e.c.journey_id == jid)
            ).scalar_one()
        )
    mode, days = journey.reentry.mode, journey.reentry.days
    per_person = journey.caps.per_person
    cap = journey.caps.max_enrollments
    rows = []
    taken: set[str] = set()
    entry = journey.entry_step
    for pid, ref, ctx in candidates:
        if ref and (ref in seen_refs):
            skip("duplicate_trigger")
            continue
        if pid in taken:
            skip("already_enrolled")
            continue
        count, active, last = history.get(pid, (0, False, None))
        if active:
            skip("already_active")
            continue
        if count:
            if mode == "never":
                skip("reentry_never")
                continue
            if mode == "after" and last is not None and last > now - dt.timedelta(days=days or 0):
                skip("reentry_too_soon")
                continue
        if per_person is not None and count >= per_person:
            skip("per_person_cap")
            continue
        if cap is not None and total + len(rows) >= cap:
            skip("max_enrollments")
            continue
        taken.add(pid)
        if ref:
            seen_refs.add(ref)
        rows.append(
            {
                "id": new_id("jen"),
                "tenant_id": tenant_id,
                "journey_id": jid,
                "version": version,
                "person_id": pid,
                "status": ACTIVE,
                "current_step": entry,
                "step_state": "enter",
                "next_run_at": now,
                "attempt": 0,
                "visits": {},
                "trigger_ref": ref,
                "context": ctx or {},
                "last_error": None,
                "entered_at": now,
                "updated_at": now,
                "finished_at": None,
            }
        )
    for i in range(0, len(rows), 50_000):
        bulk.append_rows(conn, e, rows[i : i + 50_000])
    if len(rows) >= 10_000 and conn.dialect.name == "postgresql":
        # keep planner statistics fresh after a bulk enrolment (else the trigger anti-joins and claims
        # are planned for an empty table: nested loops over a million rows)
        conn.exec_driver_sql("ANALYZE journey_enrollments")
    return {"enrolled": len(rows), "skipped": skipped}


# --- triggers ------------------------------------------------------------------------------------
def poll_triggers(
    engine: sa.Engine, *, now: dt.datetime | None = None, tenant_id: str | None = None, batch: int = 50_000
) -> int:
    """Enrol people from event, segment and schedule triggers of running journeys; returns how many."""
    now = now or utcnow()
    t, j = journey_triggers, journeys
    total = 0
    with engine.begin() as conn:
        q = (
            sa.select(t, j.c.current_version, j.c.id.label("jid"))
            .join(j, sa.and_(j.c.id == t.c.journey_id, j.c.tenant_id == t.c.tenant_id))
            .where(j.c.status == "running", t.c.kind != "api")
            .order_by(t.c.journey_id, t.c.trigger_key)
        )
        if tenant_id:
            q = q.where(t.c.tenant_id == tenant_id)
        for row in list(conn.execute(skip_locked(q, conn, of=t))):
            journey = journey_def(conn, row.journey_id, row.current_version)
            idx = int(row.trigger_key.split(":", 1)[0])
            if idx >= len(journey.triggers):
                continue
            trig = journey.triggers[idx]
            jrow = {"id": row.journey_id, "current_version": row.current_version}
            if isinstance(trig, EventTrigger):
                total += _poll_events(conn, row, trig, jrow, journey, now, batch)
            elif isinstance(trig, SegmentTrigger):
                total += _poll_segment(conn, row, trig, jrow, journey, now, batch)
            elif isinstance(trig, ScheduleTrigger):
                total += _poll_schedule(conn, row, trig, jrow, journey, now)
    return total


def _set_trigger(conn, row, **values) -> None:
    t = journey_triggers
    conn.execute(
        sa.update(t)
        .where(
            t.c.tenant_id == row.tenant_id,
            t.c.journey_id == row.journey_id,
            t.c.trigger_key == row.trigger_key,
        )
        .values(**values)
    )


def _poll_events(conn, row, trig: EventTrigger, jrow, journey: Journey, now, batch: int) -> int:
    ev = events
    wm = _aware(row.watermark) or now
    floor = _aware(row.next_fire_at) or wm  # events before the start/resume never count
    rows = list(
        conn.execute(
            sa.select(ev.c.id, ev.c.person_id, ev.c.user_id, ev.c.properties, ev.c.received_at)
            .where(
                ev.c.tenant_id == row.tenant_id,
                ev.c.event == trig.event,
                ev.c.received_at > max(wm - TRIGGER_OVERLAP, floor),
                ev.c.received_at <= now,
                ~sa.exists(  # re-read overlap: skip events that already enrolled someone
                    sa.select(sa.literal(1)).where(
                        journey_enrollments.c.tenant_id == row.tenant_id,
                        journey_enrollments.c.journey_id == row.journey_id,
                        journey_enrollments.c.trigger_ref == sa.literal("event:") + ev.c.id,
                    )
                ),
            )
            .order_by(ev.c.received_at)
            .limit(batch)
        )
    )
    if not rows:
        return 0
    fresh = [r for r in rows if trig_match(r, trig)]
    unknown_users = sorted({r.user_id for r in fresh if not r.person_id and r.user_id})
    by_user: dict[str, str] = {}
    for i in range(0, len(unknown_users), 5000):
        for v, pid in conn.execute(
            sa.select(identities.c.value, identities.c.person_id).where(
                identities.c.tenant_id == row.tenant_id,
                identities.c.type == "user_id",
                identities.c.value.in_(unknown_users[i : i + 5000]),
            )
        ):
            by_user[v] = pid
    cands = []
    for r in fresh:
        pid = r.person_id or by_user.get(r.user_id or "")
        if not pid:
            continue
        cands.append((pid, f"event:{r.id}", {"event": trig.event, "properties": r.properties or {}}))
    res = enroll_candidates(
        conn, tenant_id=row.tenant_id, journey_row=jrow, journey=journey, candidates=cands, now=now
    )
    newest = max(_aware(r.received_at) for r in rows)
    if newest > wm:
        _set_trigger(conn, row, watermark=newest, updated_at=now)
    return res["enrolled"]


def trig_match(r, trig: EventTrigger) -> bool:
    props = r.properties or {}
    return all(_match_filter(props, f) for f in trig.where)


def _poll_segment(conn, row, trig: SegmentTrigger, jrow, journey: Journey, now, batch: int) -> int:
    sid = segment_id(conn, tenant_id=row.tenant_id, key=trig.segment)
    h = segment_history
    change = "entered" if trig.type == "segment_entry" else "exited"
    wm = _aware(row.watermark) or now
    floor = _aware(row.next_fire_at) or wm
    rows = list(
        conn.execute(
            sa.select(h.c.person_id, h.c.changed_at)
            .where(
                h.c.tenant_id == row.tenant_id,
                h.c.segment_id == sid,
                h.c.change == change,
                h.c.changed_at > max(wm - TRIGGER_OVERLAP, floor),
                h.c.changed_at <= now,
                ~sa.exists(  # re-read overlap: skip changes that already enrolled the person
                    sa.select(sa.literal(1)).where(
                        journey_enrollments.c.tenant_id == row.tenant_id,
                        journey_enrollments.c.journey_id == row.journey_id,
                        journey_enrollments.c.person_id == h.c.person_id,
                        journey_enrollments.c.entered_at >= h.c.changed_at,
                    )
                ),
            )
            .order_by(h.c.changed_at)
            .limit(batch)
        )
    )
    if not rows:
        return 0
    cands = [
        (
            r.person_id,
            f"seg:{change}:{r.person_id}:{_aware(r.changed_at).isoformat()}",
            {"segment": trig.segment},
        )
        for r in rows
    ]
    res = enroll_candidates(
        conn, tenant_id=row.tenant_id, journey_row=jrow, journey=journey, candidates=cands, now=now
    )
    newest = max(_aware(r.changed_at) for r in rows)
    if newest > wm:
        _set_trigger(conn, row, watermark=newest, updated_at=now)
    return res["enrolled"]


def _poll_schedule(conn, row, trig: ScheduleTrigger, jrow, journey: Journey, now) -> int:
    fire = _aware(row.next_fire_at)
    if fire is None or fire > now:
        return 0
    sid = segment_id(conn, tenant_id=row.tenant_id, key=trig.segment)
    m = segment_members
    pids = list(
        conn.execute(
            sa.select(m.c.person_id)
            .where(m.c.tenant_id == row.tenant_id, m.c.segment_id == sid)
            .order_by(m.c.person_id)
        ).scalars()
    )
    stamp = fire.strftime("%Y%m%dT%H%M%S")
    cands = [(p, f"sch:{row.trigger_key}:{stamp}:{p}", {"scheduled_at": fire.isoformat()}) for p in pids]
    res = enroll_candidates(
        conn,
        tenant_id=row.tenant_id,
        journey_row=jrow,
        journey=journey,
        candidates=cands,
        now=now,
        check_refs=False,
    )
    nxt = None
    if trig.every is not None:
        step = parse_duration(trig.every)
        nxt = fire + step
        while nxt <= now:
            nxt += step
    _set_trigger(conn, row, next_fire_at=nxt, updated_at=now)
    return res["enrolled"]


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


class JourneyRunner:
    """The in-process engine for ``medscrm serve`` on the embedded database: a daemon thread that ticks
    every ``interval`` seconds (errors are logged and retried; the state is in the database)."""

    def __init__(self, engine: sa.Engine, *, worker_id: str = "serve", interval: float = 1.0):
        self.engine = engine
        self.worker_id = worker_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.ticks = 0

    def start(self) -> JourneyRunner:
        self._thread = threading.Thread(target=self._run, name="medscrm-journeys", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                if _any_running(self.engine):
                    r = tick(self.engine, worker_id=self.worker_id)
                    busy = bool(r["steps"] or r["enrolled"])
                else:
                    dispatch(self.engine, worker_id=self.worker_id)
                self.ticks += 1
                self.last_error = None
            except Exception as exc:  # the database is busy or down: retry on the next tick
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("journey tick failed: %s", self.last_error)
            if not busy:
                self._stop.wait(self.interval)


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
    while not stop.is_set():
        try:
            r = tick(engine, worker_id=worker_id, tenant_id=tenant_id)
        except Exception as exc:
            log.warning("worker %s: tick failed: %s", worker_id, exc)
            if once:
                raise
            stop.wait(min(10.0, interval * 5))
            continue
        for k, v in r.items():
            totals[k] += v
        totals["ticks"] += 1
        if on_tick:
            on_tick(r)
        if once:
            break
        if not (r["steps"] or r["enrolled"] or r["dispatched"]):
            stop.wait(interval)
    return totals


def merge_enrollments(
    conn: sa.Connection, *, tenant_id: str, merged: dict[str, str], now: dt.datetime | None = None
) -> dict[str, int]:
    """Identity merged ``old`` person → ``survivor``: the old person's active enrollments move to the
    survivor, except in a journey the survivor is already in, where they exit (one doctor must not
    get a journey's messages twice, from two enrollments that both resolve to them). Runs on the
    ``persons.merged`` event, in the merge's transaction. Returns ``{"moved": n, "exited": n}``."""
    merged = {o: s for o, s in merged.items() if s and s != o}
    if not merged:
        return {"moved": 0, "exited": 0}
    now = now or utcnow()
    e = journey_enrollments
    olds, survivors = sorted(merged), sorted(set(merged.values()))
    rows = conn.execute(
        sa.select(e.c.id, e.c.journey_id, e.c.person_id)
        .where(e.c.tenant_id == tenant_id, e.c.status == ACTIVE, e.c.person_id.in_(olds))
        .order_by(e.c.entered_at, e.c.id)
    ).all()
    if not rows:
        return {"moved": 0, "exited": 0}
    taken = {
        (j, p)
        for j, p in conn.execute(
            sa.select(e.c.journey_id, e.c.person_id).where(
                e.c.tenant_id == tenant_id, e.c.status == ACTIVE, e.c.person_id.in_(survivors)
            )
        ).all()
    }
    moved = exited = 0
    for eid, jid, old in rows:
        surv = merged[old]
        if (jid, surv) in taken:
            conn.execute(
                sa.update(e)
                .where(e.c.id == eid)
                .values(
                    status="exited",
                    finished_at=now,
                    updated_at=now,
                    next_run_at=None,
                    last_error=f"merged into {surv}, already in this journey · 已合并至 {surv}（其已在此旅程中）",
                )
            )
            exited += 1
        else:
            conn.execute(sa.update(e).where(e.c.id == eid).values(person_id=surv, updated_at=now))
            taken.add((jid, surv))
            moved += 1
    return {"moved": moved, "exited": exited}


@hooks.subscribe(hooks.PERSONS_MERGED, "journeys.enrollments")
def _on_persons_merged(
    conn: sa.Connection,
    *,
    tenant_id: str,
    merged: dict[str, str],
    split: dict[str, list[str]],
    now: dt.datetime,
    actor: str,
) -> dict[str, int]:
    # a split person's enrollments stay where they are: which part the journey meant is not known
    n = merge_enrollments(
        conn, tenant_id=tenant_id, merged={o: s for o, s in merged.items() if o not in split}, now=now
    )
    return {"enrollments_moved": n["moved"], "enrollments_exited": n["exited"]}


def content_lookup(conn: sa.Connection, *, tenant_id: str, ref: str) -> dict[str, Any] | None:
    """The content item (C5) with id or key ``ref`` (expiry applied), or None."""
    from medscrm.content import service as content

    try:
        return content.get_item(conn, tenant_id=tenant_id, item_id=ref)
    except NotFound:
        return None


def segment_id(conn: sa.Connection, *, tenant_id: str, key: str) -> str:
    sid = conn.execute(
        sa.select(segments.c.id).where(segments.c.tenant_id == tenant_id, segments.c.key == key)
    ).scalar()
    if sid is None:
        raise NotFound(f"segment {key!r} not found")
    return sid
