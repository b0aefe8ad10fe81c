"""Executing journey steps: one batch of claimed enrollments, each advanced through its steps.

:class:`_Batch` runs, in the caller's transaction, every node type of a journey (waits, windows,
branches, splits, sends and webhooks through ``outreach.send.request_send``, tags, attributes, tasks,
goals, exits), collects the ``journey_step_runs`` history rows and the new enrollment states, and
writes both in bulk (:meth:`_Batch.flush`). Step outcomes are keyed by the idempotency key
``<enrollment id>:<step id>:<visit>``, so a retried step does the same thing (a split picks the same
branch, a send is requested once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from medscrm.common import MedscrmError, NotFound, new_id
from medscrm.content import service as content
from medscrm.db import bulk
from medscrm.db.schema import (
    identities,
    identity_links,
    journey_enrollments,
    journey_step_runs,
    journey_versions,
    journeys,
    person_tags,
    persons,
    tag_history,
    tasks,
)
from medscrm.journeys.model import (
    WINDOWS,
    BranchStep,
    ExitStep,
    GoalStep,
    Journey,
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
from medscrm.persons.restrictions import REASON as RESTRICTED_REASON
from medscrm.persons.restrictions import restricted
from medscrm.rules import compile_rule, parse
from medscrm.tags.service import rule_context

CHINA = ZoneInfo("Asia/Shanghai")
ACTIVE = "active"
#: how long a restricted person's enrollment waits before the engine looks at it again
RESTRICTED_RECHECK = dt.timedelta(hours=1)
MAX_CHAIN = 50  # steps one enrollment may take in one claim (graphs have no wait-free cycles)
_defs: dict[tuple[str, int], Journey] = {}
_defs_lock = threading.Lock()


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


# --- sending (outreach) ------------------------------------------------------------------------------
def _send_api():
    try:
        from medscrm.outreach.send import SendRequest, request_send
    except ImportError:  # pragma: no cover - outreach is part of the product
        raise MedscrmError("channel sending (medscrm.outreach.send) is not installed") from None
    return SendRequest, request_send


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
        held: set[tuple[str, str]] = set()
        for tenant_id in {r.tenant_id for r in rows}:
            pids = [r.person_id for r in rows if r.tenant_id == tenant_id]
            held |= {(tenant_id, p) for p in restricted(self.conn, tenant_id=tenant_id, person_ids=pids)}
        for (jid, ver), pids in groups.items():
            j = journey_def(self.conn, jid, ver)
            if j.goal is not None:
                goal_hits[(jid, ver)] = self._members(_tenant_of(rows, jid), j.goal, pids)
        for r in rows:
            if (r.tenant_id, r.person_id) in held:
                self._hold(r)
                continue
            self._advance(r, goal_hits.get((r.journey_id, r.version), set()))

    def _hold(self, r: Any) -> None:
        """A person whose processing is restricted takes no step: the enrollment stays where it is
        and is looked at again later (the restriction may be lifted)."""
        self.updates.append(
            {
                "id": r.id,
                "status": ACTIVE,
                "current_step": r.current_step,
                "step_state": r.step_state,
                "next_run_at": self.now + RESTRICTED_RECHECK,
                "attempt": 0,
                "visits": dict(r.visits or {}),
                "last_error": RESTRICTED_REASON,
                "updated_at": self.now,
                "finished_at": None,
            }
        )

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


def content_lookup(conn: sa.Connection, *, tenant_id: str, ref: str) -> dict[str, Any] | None:
    """The content library's item with id or key ``ref`` (expiry applied), or None."""

    try:
        return content.get_item(conn, tenant_id=tenant_id, item_id=ref)
    except NotFound:
        return None
