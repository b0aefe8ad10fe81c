"""Tasks for reps (``tasks``, written by journey task steps): the rep's inbox, the tenant's view, and
closing a task (done / dismissed, with a note), audited.

Who sees which tasks: a rep sees the tasks assigned to them (the assignee is one of the names that
identify the rep in the sources, :func:`medscrm.access.rep_keys`) **and** about persons they own
(:func:`medscrm.access.person_scope`) — a task left for a rep about an HCP who moved to someone else is
not shown. Other roles that read data see every task of the tenant; closing a task needs the
assignee (a rep) or ``outreach.send`` (admins, marketers: those who contact HCPs). Persons are shown as the role may see them
(:func:`medscrm.access.visible_attributes`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm.access import person_scope, rep_keys, visible_attributes
from medscrm.accounts import service as accounts
from medscrm.accounts.roles import can
from medscrm.common import Conflict, InvalidInput, NotFound, utcnow
from medscrm.db.schema import journeys, persons, tasks

STATUSES = ("open", "done", "dismissed", "cancelled")
ACTIONS = {"done": "done", "dismiss": "dismissed"}
MAX_NOTE = 2000


def _visible(tenant_id: str, role: str, user: dict[str, Any] | None) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``tasks`` for what ``role`` (``user``) may see."""
    t = tasks
    where = [t.c.tenant_id == tenant_id]
    scope = person_scope(tenant_id, role, user)
    if scope is not None:  # a rep: their tasks, about their HCPs
        where += [t.c.assignee.in_(rep_keys(user or {}) or ["-"]), t.c.person_id.in_(scope)]
    return where


def _journey_filter(conn: sa.Connection, tenant_id: str, key: str) -> sa.ColumnElement[bool]:
    jid = conn.execute(
        sa.select(journeys.c.id).where(journeys.c.tenant_id == tenant_id, journeys.c.key == key)
    ).scalar()
    if jid is None:
        raise InvalidInput("journey", f"no journey {key!r}")
    return tasks.c.origin.startswith(f"journey:{jid}:", autoescape=True)


def list_tasks(
    conn: sa.Connection,
    *,
    tenant_id: str,
    role: str,
    user: dict[str, Any] | None = None,
    status: str | None = "open",
    assignee: str | None = None,
    journey: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Tasks ``role`` may see (due first, then oldest), filtered by status (None: any), assignee
    (``""``: unassigned) and journey key; with the total. Each row: id, title, note (why), due,
    status, assignee, the journey's key and name, the person as the role may see them."""
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    t, p, j = tasks, persons, journeys
    where = _visible(tenant_id, role, user)
    if status:
        where.append(t.c.status == status)
    if assignee is not None:
        where.append(t.c.assignee.is_(None) if assignee == "" else t.c.assignee == assignee)
    if journey:
        where.append(_journey_filter(conn, tenant_id, journey))
    total = conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar_one()
    q = (
        sa.select(t, p.c.attributes)
        .join(p, sa.and_(p.c.tenant_id == t.c.tenant_id, p.c.id == t.c.person_id), isouter=True)
        .where(*where)
        .order_by(t.c.due_at.is_(None), t.c.due_at, t.c.created_at, t.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = conn.execute(q).mappings().all()
    names = dict(conn.execute(sa.select(j.c.id, j.c.key).where(j.c.tenant_id == tenant_id)).all())
    titles = dict(conn.execute(sa.select(j.c.key, j.c.name).where(j.c.tenant_id == tenant_id)).all())
    out = []
    for r in rows:
        attrs = visible_attributes(r["attributes"] or {}, role)
        detail = r["detail"] or {}
        parts = (r["origin"] or "").split(":")
        jkey = names.get(parts[1]) if len(parts) >= 3 and parts[0] == "journey" else None
        out.append(
            {
                "id": r["id"],
                "title": r["title"],
                "note": detail.get("note"),
                "status": r["status"],
                "assignee": r["assignee"],
                "due_at": r["due_at"],
                "created_at": r["created_at"],
                "closed_at": r["closed_at"],
                "close_note": detail.get("close_note"),
                "closed_by": detail.get("closed_by"),
                "journey": jkey,
                "journey_name": titles.get(jkey) if jkey else None,
                "step": detail.get("step"),
                "person_id": r["person_id"],
                "person": {k: attrs.get(k) for k in ("name", "hospital", "department", "title", "phone")},
            }
        )
    return out, int(total)


def counts_by_assignee(
    conn: sa.Connection,
    *,
    tenant_id: str,
    role: str,
    user: dict[str, Any] | None = None,
    journey: str | None = None,
) -> list[dict[str, Any]]:
    """Per assignee (None: unassigned): tasks open, of them overdue, done and dismissed."""
    t = tasks
    where = _visible(tenant_id, role, user)
    if journey:
        where.append(_journey_filter(conn, tenant_id, journey))
    now = utcnow()
    out: dict[Any, dict[str, Any]] = {}
    late = sa.func.sum(sa.case((sa.and_(t.c.due_at.is_not(None), t.c.due_at < now), 1), else_=0))
    for who, status, n, overdue in conn.execute(
        sa.select(t.c.assignee, t.c.status, sa.func.count(), late)
        .where(*where)
        .group_by(t.c.assignee, t.c.status)
    ):
        row = out.setdefault(who, {"assignee": who, "open": 0, "overdue": 0, "done": 0, "dismissed": 0})
        if status in row:
            row[status] += int(n)
        if status == "open":
            row["overdue"] += int(overdue or 0)
    return sorted(out.values(), key=lambda r: (-r["open"], r["assignee"] or ""))


def close_task(
    conn: sa.Connection,
    *,
    tenant_id: str,
    task_id: str,
    action: str,
    note: str | None = None,
    actor: str,
    role: str,
    user: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Close an open task: ``action`` ``done`` or ``dismiss`` (a dismissal needs a note saying why),
    audited as ``task.done`` / ``task.dismiss``. A task ``role`` may not see is not found; one it may
    see but not close (a role without ``outreach.send``) is refused."""
    if action not in ACTIONS:
        raise InvalidInput("action", "must be done or dismiss")
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise InvalidInput("note", f"at most {MAX_NOTE} characters")
    if action == "dismiss" and not note:
        raise InvalidInput("note", "say why the task is dismissed")
    t = tasks
    row = (
        conn.execute(sa.select(t).where(*_visible(tenant_id, role, user), t.c.id == task_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"task {task_id!r} not found")
    if not can(role, "outreach.send"):
        raise InvalidInput("task", "only the assignee or a marketer/admin closes a task")
    if row["status"] != "open":
        raise Conflict("task", f"{task_id!r} is already {row['status']}")
    now = now or utcnow()
    status = ACTIONS[action]
    detail = {**(row["detail"] or {}), "close_note": note, "closed_by": actor}
    conn.execute(
        sa.update(t)
        .where(t.c.tenant_id == tenant_id, t.c.id == task_id, t.c.status == "open")
        .values(status=status, closed_at=now, detail=detail)
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=f"task.{action}",
        object_type="task",
        object_id=task_id,
        detail={"person_id": row["person_id"], "note": note, "assignee": row["assignee"]},
    )
    return {"id": task_id, "status": status, "closed_at": now, "close_note": note}
