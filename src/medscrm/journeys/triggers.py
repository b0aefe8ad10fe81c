"""Journey triggers and enrolment: who enters a journey, and when.

Event triggers follow newly stored events (a watermark on ``received_at``, re-reading a short
overlap; each event enrols at most once through ``trigger_ref``), segment entry/exit follow
``segment_history``, schedules fire at ``next_fire_at``; the API enrols directly through
:func:`enroll_candidates`, which applies the re-entry rules and caps. A merge of two persons moves
the old person's active enrollments to the survivor (:func:`merge_enrollments`, subscribed to
``persons.merged``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.common import NotFound, new_id, utcnow
from medscrm.db import bulk
from medscrm.db.claim import skip_locked
from medscrm.db.schema import (
    events,
    identities,
    journey_enrollments,
    journey_triggers,
    journeys,
    segment_history,
    segment_members,
    segments,
)
from medscrm.journeys.model import (
    EventTrigger,
    Journey,
    PropertyFilter,
    ScheduleTrigger,
    SegmentTrigger,
    parse_duration,
)
from medscrm.journeys.steps import ACTIVE, journey_def

TRIGGER_OVERLAP = dt.timedelta(minutes=2)  # events/segment changes committed late are still seen


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


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


def segment_id(conn: sa.Connection, *, tenant_id: str, key: str) -> str:
    sid = conn.execute(
        sa.select(segments.c.id).where(segments.c.tenant_id == tenant_id, segments.c.key == key)
    ).scalar()
    if sid is None:
        raise NotFound(f"segment {key!r} not found")
    return sid
