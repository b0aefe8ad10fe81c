"""Journeys service: create, versions, lifecycle, enrolment, per-step statistics.

Keyword-only functions; the caller owns the transaction. Every lifecycle change is audited.
A definition that does not validate (structure, graph, references) is never saved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound, as_utc, new_id, utcnow
from medscrm.db.schema import (
    journey_enrollments,
    journey_step_runs,
    journey_triggers,
    journey_versions,
    journeys,
    persons,
    segment_members,
    tag_definitions,
)
from medscrm.journeys.engine import content_lookup, enroll_candidates, segment_id
from medscrm.journeys.model import (
    BranchStep,
    Journey,
    JourneyError,
    ScheduleTrigger,
    SendStep,
    TagStep,
    WebhookStep,
    definition_json,
    validate_definition,
)
from medscrm.outreach import settings as outreach_settings
from medscrm.outreach.send import cancel_pending_sends
from medscrm.rules import RuleError, compile_rule, parse
from medscrm.rules.errors import Problem
from medscrm.tags.service import rule_context

STATUSES = ("draft", "running", "paused", "stopped")
ACTIVE = "active"


# --- references to the tenant's data -------------------------------------------------------------
def _channel_ready(conn: sa.Connection, *, tenant_id: str, channel: str) -> bool:
    """Whether the tenant has configured ``channel`` (the outreach channel configurations, credentials sealed)."""

    return outreach_settings.channel_config(conn, tenant_id=tenant_id, channel=channel) is not None


def check_references(
    conn: sa.Connection,
    *,
    tenant_id: str,
    journey: Journey,
    strict: bool = False,
    now: dt.datetime | None = None,
) -> list[Problem]:
    """Problems with what the journey refers to: segments, rule fields of branches and the goal, tags,
    content (exists; approved and unexpired when ``strict``), channel credentials."""

    problems: list[Problem] = []
    ctx = rule_context(conn, tenant_id=tenant_id)
    for i, t in enumerate(journey.triggers):
        seg = getattr(t, "segment", None)
        if seg is not None and seg not in ctx.segments:
            problems.append(Problem(f"triggers[{i}].segment", f"unknown segment {seg!r}"))
    for label, rule in [("goal", journey.goal)] + [
        (f"steps[{s.id}].condition", s.condition) for s in journey.steps if isinstance(s, BranchStep)
    ]:
        if rule is None:
            continue
        try:
            compile_rule(parse(rule, ctx), tenant_id=tenant_id, ctx=ctx, now=now)
        except RuleError as exc:
            problems.extend(Problem(f"{label}.{p.path}" if p.path else label, p.reason) for p in exc.problems)
    known_tags = set(
        conn.execute(
            sa.select(tag_definitions.c.key).where(tag_definitions.c.tenant_id == tenant_id)
        ).scalars()
    )
    channels_checked: dict[str, bool] = {}
    for s in journey.steps:
        label = f"steps[{s.id}]"
        if isinstance(s, TagStep) and s.tag not in known_tags:
            problems.append(
                Problem(f"{label}.tag", f"unknown tag {s.tag!r} (define it first: medscrm tags define)")
            )
        if isinstance(s, SendStep | WebhookStep):
            channel = s.channel if isinstance(s, SendStep) else "webhook"
            if channel not in channels_checked:
                channels_checked[channel] = _channel_ready(conn, tenant_id=tenant_id, channel=channel)
            if not channels_checked[channel]:
                problems.append(
                    Problem(
                        f"{label}.channel" if isinstance(s, SendStep) else label,
                        f"no credentials for channel {channel!r} in this tenant (configure the channel first)",
                    )
                )
        if isinstance(s, SendStep):
            item = content_lookup(conn, tenant_id=tenant_id, ref=s.content)
            if item is None:
                problems.append(Problem(f"{label}.content", f"unknown content {s.content!r}"))
            elif strict and item.get("status") != "approved":
                problems.append(
                    Problem(
                        f"{label}.content",
                        f"content {s.content!r} is {item.get('status')}; only approved content can be sent",
                    )
                )
            elif strict and item.get("expires_at") and as_utc(item["expires_at"]) <= (now or utcnow()):
                problems.append(Problem(f"{label}.content", f"content {s.content!r} has expired"))
    return problems


def validate(
    conn: sa.Connection | None, *, tenant_id: str | None, definition: Any, strict: bool = False
) -> Journey:
    """Structure and graph (always), then references when a connection is given; JourneyError lists all."""
    journey = validate_definition(definition)
    if conn is not None and tenant_id is not None:
        problems = check_references(conn, tenant_id=tenant_id, journey=journey, strict=strict)
        if problems:
            raise JourneyError(problems)
    return journey


# --- reads ---------------------------------------------------------------------------------------
def _row(conn: sa.Connection, tenant_id: str, key: str) -> dict[str, Any]:
    j = journeys
    row = conn.execute(sa.select(j).where(j.c.tenant_id == tenant_id, j.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"journey {key!r} not found")
    return dict(row)


def definition_of(conn: sa.Connection, *, journey_id: str, version: int) -> dict[str, Any]:
    v = journey_versions
    d = conn.execute(
        sa.select(v.c.definition).where(v.c.journey_id == journey_id, v.c.version == version)
    ).scalar()
    if d is None:
        raise NotFound(f"journey version {journey_id}@{version} not found")
    return d


def get_journey(conn: sa.Connection, *, tenant_id: str, key: str) -> dict[str, Any]:
    """The journey with its current definition, version, status and the versions that still hold people."""
    row = _row(conn, tenant_id, key)
    row["definition"] = definition_of(conn, journey_id=row["id"], version=row["current_version"])
    e = journey_enrollments
    row["active_by_version"] = {
        int(v): int(n)
        for v, n in conn.execute(
            sa.select(e.c.version, sa.func.count())
            .where(e.c.tenant_id == tenant_id, e.c.journey_id == row["id"], e.c.status == ACTIVE)
            .group_by(e.c.version)
        )
    }
    row["versions"] = [
        dict(r)
        for r in conn.execute(
            sa.select(
                journey_versions.c.version,
                journey_versions.c.created_by,
                journey_versions.c.created_at,
                journey_versions.c.note,
            )
            .where(journey_versions.c.journey_id == row["id"])
            .order_by(journey_versions.c.version)
        ).mappings()
    ]
    return row


def list_journeys(conn: sa.Connection, *, tenant_id: str) -> list[dict[str, Any]]:
    j, e = journeys, journey_enrollments
    counts = {
        (jid, st): int(n)
        for jid, st, n in conn.execute(
            sa.select(e.c.journey_id, e.c.status, sa.func.count())
            .where(e.c.tenant_id == tenant_id)
            .group_by(e.c.journey_id, e.c.status)
        )
    }
    out = []
    for r in conn.execute(sa.select(j).where(j.c.tenant_id == tenant_id).order_by(j.c.key)).mappings():
        d = dict(r)
        by = {st: n for (jid, st), n in counts.items() if jid == r["id"]}
        d["enrollments"] = by
        d["active"] = by.get(ACTIVE, 0)
        out.append(d)
    return out


# --- create / edit -------------------------------------------------------------------------------
def create(
    conn: sa.Connection,
    *,
    tenant_id: str,
    definition: Any,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Create a journey as a draft (version 1). JourneyError (nothing saved) when invalid."""
    now = now or utcnow()
    journey = validate(conn, tenant_id=tenant_id, definition=definition)
    if conn.execute(
        sa.select(journeys.c.id).where(journeys.c.tenant_id == tenant_id, journeys.c.key == journey.key)
    ).first():
        raise JourneyError([Problem("key", f"journey {journey.key!r} already exists (edit it with update)")])
    jid = new_id("jny")
    conn.execute(
        sa.insert(journeys).values(
            id=jid,
            tenant_id=tenant_id,
            key=journey.key,
            name=journey.name,
            status="draft",
            current_version=1,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
    )
    _insert_version(conn, tenant_id, jid, 1, journey, actor, now, "created")
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.create",
        object_type="journey",
        object_id=journey.key,
        detail={"version": 1},
    )
    return get_journey(conn, tenant_id=tenant_id, key=journey.key)


def _insert_version(conn, tenant_id, jid, version, journey: Journey, actor, now, note) -> None:
    conn.execute(
        sa.insert(journey_versions).values(
            id=new_id("jnv"),
            tenant_id=tenant_id,
            journey_id=jid,
            version=version,
            definition=definition_json(journey),
            created_by=actor,
            created_at=now,
            note=note,
        )
    )


def update(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    definition: Any,
    actor: str,
    migrate: bool = False,
    step_map: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Save an edited definition as a new version. People already in the journey stay on their version
    (``migrate=False``) or move to the new one (``migrate=True``): each person's current step maps through
    ``step_map`` (old id → new id), else to the step with the same id; a step that maps nowhere is an
    error naming it (nothing saved)."""
    now = now or utcnow()
    row = _row(conn, tenant_id, key)
    if row["status"] == "stopped":
        raise InvalidInput("status", f"journey {key!r} is stopped; create a new journey instead")
    journey = validate(conn, tenant_id=tenant_id, definition=definition, strict=row["status"] == "running")
    if journey.key != key:
        raise JourneyError([Problem("key", f"the key of a journey cannot change ({key!r})")])
    step_map = step_map or {}
    new_ids = {s.id for s in journey.steps}
    problems = [
        Problem(f"step_map.{old}", f"unknown step {new!r} in the new version")
        for old, new in step_map.items()
        if new not in new_ids
    ]
    e = journey_enrollments
    moved = 0
    if migrate:
        where = [e.c.tenant_id == tenant_id, e.c.journey_id == row["id"], e.c.status == ACTIVE]
        current = [
            (s, int(n))
            for s, n in conn.execute(
                sa.select(e.c.current_step, sa.func.count()).where(*where).group_by(e.c.current_step)
            )
        ]
        for step, n in current:
            target = step_map.get(step, step)
            if target not in new_ids:
                problems.append(
                    Problem(
                        f"step_map.{step}",
                        f"{n} people are at step {step!r}, which the new version does not have: map it to a step",
                    )
                )
    if problems:
        raise JourneyError(problems)
    version = int(row["current_version"]) + 1
    _insert_version(
        conn, tenant_id, row["id"], version, journey, actor, now, "migrated" if migrate else "kept"
    )
    if migrate:
        for step, _n in current:
            target = step_map.get(step, step)
            values: dict[str, Any] = {"version": version, "current_step": target, "updated_at": now}
            if target != step:  # a different step: start it afresh
                values.update(step_state="enter", next_run_at=now)
            r = conn.execute(sa.update(e).where(*where, e.c.current_step == step).values(**values))
            moved += r.rowcount or 0
    conn.execute(
        sa.update(journeys)
        .where(journeys.c.id == row["id"])
        .values(current_version=version, name=journey.name, updated_at=now)
    )
    _sync_triggers(conn, tenant_id, row["id"], journey, now, reset=False)
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.update",
        object_type="journey",
        object_id=key,
        detail={"version": version, "migrate": migrate, "moved": moved, "step_map": step_map},
    )
    out = get_journey(conn, tenant_id=tenant_id, key=key)
    out["moved"] = moved
    return out


# --- lifecycle -----------------------------------------------------------------------------------
_TRANSITIONS = {
    "start": ("draft",),
    "pause": ("running",),
    "resume": ("paused",),
    "stop": ("draft", "running", "paused"),
}


def _transition(conn, tenant_id, key, action, actor, now) -> dict[str, Any]:
    row = _row(conn, tenant_id, key)
    if row["status"] not in _TRANSITIONS[action]:
        raise InvalidInput("status", f"cannot {action} journey {key!r}: it is {row['status']}")
    return row


def start(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    actor: str,
    now: dt.datetime | None = None,
    enrol_current: bool = False,
) -> dict[str, Any]:
    """draft → running: the definition must pass every check, content approved; triggers start from now.

    A segment-entry trigger only sees persons who enter its segment from now on; ``enrol_current``
    also enrols the segment's current members at once, under the same re-entry rules and caps as a
    trigger's entry (the result's ``enrolled_at_start``: {enrolled, skipped: {reason: n}})."""
    now = now or utcnow()
    row = _transition(conn, tenant_id, key, "start", actor, now)
    d = definition_of(conn, journey_id=row["id"], version=row["current_version"])
    journey = validate(conn, tenant_id=tenant_id, definition=d, strict=True)
    conn.execute(
        sa.update(journeys)
        .where(journeys.c.id == row["id"])
        .values(status="running", started_at=now, updated_at=now)
    )
    _sync_triggers(conn, tenant_id, row["id"], journey, now, reset=True)
    at_start = _enrol_current_members(conn, tenant_id, row, journey, now) if enrol_current else None
    detail: dict[str, Any] = {"version": row["current_version"], "enrol_current": enrol_current}
    if at_start is not None:
        detail["enrolled_at_start"] = at_start["enrolled"]
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.start",
        object_type="journey",
        object_id=key,
        detail=detail,
    )
    out = get_journey(conn, tenant_id=tenant_id, key=key)
    if at_start is not None:
        out["enrolled_at_start"] = at_start
    return out


def _entry_segments(journey) -> list[str]:
    return list(dict.fromkeys(t.segment for t in journey.triggers if t.type == "segment_entry"))


def _current_member_ids(
    conn: sa.Connection, tenant_id: str, segment_keys: list[str]
) -> list[tuple[str, str]]:
    """(person_id, segment key) of the active persons in these segments now, each person once."""
    out: dict[str, str] = {}
    for seg_key in segment_keys:
        sid = segment_id(conn, tenant_id=tenant_id, key=seg_key)
        m = segment_members
        for pid in conn.execute(
            sa.select(m.c.person_id)
            .join(persons, sa.and_(persons.c.tenant_id == m.c.tenant_id, persons.c.id == m.c.person_id))
            .where(m.c.tenant_id == tenant_id, m.c.segment_id == sid, persons.c.status == "active")
            .order_by(m.c.person_id)
        ).scalars():
            out.setdefault(pid, seg_key)
    return list(out.items())


def current_members(conn: sa.Connection, *, tenant_id: str, key: str) -> dict[str, Any]:
    """Who "enrol current members" would enrol at start: the segment-entry triggers' segments and
    the number of distinct active persons in them now (before re-entry rules and caps)."""
    row = _row(conn, tenant_id, key)
    journey = validate_definition(definition_of(conn, journey_id=row["id"], version=row["current_version"]))
    segs = _entry_segments(journey)
    try:
        n = len(_current_member_ids(conn, tenant_id, segs))
    except NotFound:  # a trigger's segment is missing: start refuses it with the reason
        n = 0
    return {"segments": segs, "count": n}


def _enrol_current_members(conn, tenant_id: str, row, journey, now: dt.datetime) -> dict[str, Any]:
    members = _current_member_ids(conn, tenant_id, _entry_segments(journey))
    cands = [
        (pid, f"seg:start:{row['id']}:{row['current_version']}:{pid}", {"segment": seg, "at_start": True})
        for pid, seg in members
    ]
    return enroll_candidates(
        conn, tenant_id=tenant_id, journey_row=row, journey=journey, candidates=cands, now=now
    )


def pause(
    conn: sa.Connection, *, tenant_id: str, key: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """running → paused: nobody moves on, triggers enrol nobody (events that arrive meanwhile are skipped)."""
    now = now or utcnow()
    row = _transition(conn, tenant_id, key, "pause", actor, now)
    conn.execute(
        sa.update(journeys).where(journeys.c.id == row["id"]).values(status="paused", updated_at=now)
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.pause",
        object_type="journey",
        object_id=key,
    )
    return get_journey(conn, tenant_id=tenant_id, key=key)


def resume(
    conn: sa.Connection, *, tenant_id: str, key: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """paused → running: waits that ended meanwhile run at once; triggers continue from now."""
    now = now or utcnow()
    row = _transition(conn, tenant_id, key, "resume", actor, now)
    conn.execute(
        sa.update(journeys).where(journeys.c.id == row["id"]).values(status="running", updated_at=now)
    )
    d = definition_of(conn, journey_id=row["id"], version=row["current_version"])
    _sync_triggers(conn, tenant_id, row["id"], validate_definition(d), now, reset=True)
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.resume",
        object_type="journey",
        object_id=key,
    )
    return get_journey(conn, tenant_id=tenant_id, key=key)


def stop(
    conn: sa.Connection, *, tenant_id: str, key: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """→ stopped (final): everyone still in the journey leaves (status stopped)."""
    now = now or utcnow()
    row = _transition(conn, tenant_id, key, "stop", actor, now)
    e = journey_enrollments
    n = conn.execute(
        sa.update(e)
        .where(e.c.tenant_id == tenant_id, e.c.journey_id == row["id"], e.c.status == ACTIVE)
        .values(status="stopped", finished_at=now, updated_at=now, next_run_at=None)
    ).rowcount
    conn.execute(
        sa.update(journeys)
        .where(journeys.c.id == row["id"])
        .values(status="stopped", stopped_at=now, updated_at=now)
    )
    # sends this journey queued and no provider has seen yet are cancelled (Send Blocked on the timeline)

    cancelled = cancel_pending_sends(
        conn, tenant_id=tenant_id, origin_prefix=f"journey:{row['id']}:", reason="journey_stopped"
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.stop",
        object_type="journey",
        object_id=key,
        detail={"stopped_enrollments": n, "cancelled_sends": cancelled},
    )
    return get_journey(conn, tenant_id=tenant_id, key=key)


def _sync_triggers(
    conn, tenant_id: str, jid: str, journey: Journey, now: dt.datetime, *, reset: bool
) -> None:
    """One cursor row per trigger; ``reset`` moves event/segment watermarks to now (start, resume)."""
    t = journey_triggers
    existing = {
        r.trigger_key: r
        for r in conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id, t.c.journey_id == jid))
    }
    wanted = {}
    for i, trig in enumerate(journey.triggers):
        tk = f"{i}:{trig.type}"
        nfa = None
        if isinstance(trig, ScheduleTrigger):
            nfa = trig.at
        wanted[tk] = (trig.type, nfa)
    # next_fire_at: a schedule's next firing; for event/segment triggers the start/resume time, before
    # which nothing counts (the watermark re-reads a short overlap for rows committed late)
    for tk, (kind, nfa) in wanted.items():
        if kind != "schedule":
            nfa = now
        if tk in existing:
            vals: dict[str, Any] = {"kind": kind, "updated_at": now}
            if reset:
                vals["watermark"] = now
                if kind != "schedule":
                    vals["next_fire_at"] = now
            if kind == "schedule" and existing[tk].kind != kind:
                vals["next_fire_at"] = nfa
            conn.execute(
                sa.update(t)
                .where(t.c.tenant_id == tenant_id, t.c.journey_id == jid, t.c.trigger_key == tk)
                .values(**vals)
            )
        else:
            conn.execute(
                sa.insert(t).values(
                    tenant_id=tenant_id,
                    journey_id=jid,
                    trigger_key=tk,
                    kind=kind,
                    watermark=now,
                    next_fire_at=nfa,
                    updated_at=now,
                )
            )
    for tk in set(existing) - set(wanted):
        conn.execute(
            sa.delete(t).where(t.c.tenant_id == tenant_id, t.c.journey_id == jid, t.c.trigger_key == tk)
        )


# --- enrolment (API trigger and the engine's triggers) --------------------------------------------
def enroll(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    person_ids: list[str],
    actor: str,
    context: dict[str, Any] | None = None,
    ref: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Enrol persons through the journey's ``api`` trigger (the journey must be running). Re-entry rules and
    caps apply; returns {enrolled, skipped: {reason: n}}. ``ref`` makes a call idempotent per person."""
    now = now or utcnow()
    row = _row(conn, tenant_id, key)
    if row["status"] != "running":
        raise InvalidInput("status", f"journey {key!r} is {row['status']}; start it first")
    journey = validate_definition(definition_of(conn, journey_id=row["id"], version=row["current_version"]))
    if not any(t.type == "api" for t in journey.triggers):
        raise InvalidInput(
            "triggers", f"journey {key!r} has no api trigger; add {{type: api}} to enrol by API"
        )
    known = set()
    for i in range(0, len(person_ids), 5000):
        chunk = person_ids[i : i + 5000]
        known |= set(
            conn.execute(
                sa.select(persons.c.id).where(
                    persons.c.tenant_id == tenant_id, persons.c.id.in_(chunk), persons.c.status == "active"
                )
            ).scalars()
        )
    unknown = [p for p in person_ids if p not in known]
    cands = [
        (p, f"api:{ref}:{p}" if ref else None, context or {}) for p in dict.fromkeys(person_ids) if p in known
    ]
    res = enroll_candidates(
        conn, tenant_id=tenant_id, journey_row=row, journey=journey, candidates=cands, now=now
    )
    if unknown:
        res["skipped"]["unknown_person"] = len(unknown)
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="journey.enroll",
        object_type="journey",
        object_id=key,
        detail={"requested": len(person_ids), "enrolled": res["enrolled"]},
    )
    return res


# --- statistics ----------------------------------------------------------------------------------
def step_stats(conn: sa.Connection, *, tenant_id: str, key: str) -> list[dict[str, Any]]:
    """Per step of the current version: entered (executions), waiting (people there now), sent (queued
    sends), blocked by reason, converted (people who went through the step and reached the goal)."""
    row = _row(conn, tenant_id, key)
    journey = validate_definition(definition_of(conn, journey_id=row["id"], version=row["current_version"]))
    r, e = journey_step_runs, journey_enrollments
    base = [r.c.tenant_id == tenant_id, r.c.journey_id == row["id"]]
    entered: dict[str, int] = {}
    sent: dict[str, int] = {}
    blocked: dict[str, dict[str, int]] = {}
    for step, outcome, reason, n in conn.execute(
        sa.select(r.c.step_id, r.c.outcome, r.c.reason, sa.func.count())
        .where(*base)
        .group_by(r.c.step_id, r.c.outcome, r.c.reason)
    ):
        entered[step] = entered.get(step, 0) + int(n)
        if outcome == "sent":
            sent[step] = sent.get(step, 0) + int(n)
        elif outcome == "blocked":
            blocked.setdefault(step, {})[reason or "unknown"] = int(n)
    waiting = dict(
        (s, int(n))
        for s, n in conn.execute(
            sa.select(e.c.current_step, sa.func.count())
            .where(e.c.tenant_id == tenant_id, e.c.journey_id == row["id"], e.c.status == ACTIVE)
            .group_by(e.c.current_step)
        )
    )
    converted_ids = sa.select(e.c.id).where(
        e.c.tenant_id == tenant_id, e.c.journey_id == row["id"], e.c.status == "converted"
    )
    converted = dict(
        (s, int(n))
        for s, n in conn.execute(
            sa.select(r.c.step_id, sa.func.count(sa.distinct(r.c.enrollment_id)))
            .where(*base, r.c.enrollment_id.in_(converted_ids))
            .group_by(r.c.step_id)
        )
    )
    out = []
    for s in journey.steps:
        out.append(
            {
                "step_id": s.id,
                "type": s.type,
                "name": s.name,
                "entered": entered.get(s.id, 0),
                "waiting": waiting.get(s.id, 0),
                "sent": sent.get(s.id, 0),
                "blocked": blocked.get(s.id, {}),
                "converted": converted.get(s.id, 0),
            }
        )
    return out


def enrollment_counts(conn: sa.Connection, *, tenant_id: str, key: str) -> dict[str, int]:
    row = _row(conn, tenant_id, key)
    e = journey_enrollments
    return {
        st: int(n)
        for st, n in conn.execute(
            sa.select(e.c.status, sa.func.count())
            .where(e.c.tenant_id == tenant_id, e.c.journey_id == row["id"])
            .group_by(e.c.status)
        )
    }
