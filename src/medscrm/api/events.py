"""Reading events back: newest first, filtered by person, user id, type and time. A rep token reads
only the events of the HCPs the rep owns."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.db.schema import events, identities

router = APIRouter(prefix="/api/v1", tags=["events"], responses=responses(*AUTH))


def query_events(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str | None = None,
    user_id: str | None = None,
    type_: str | None = None,
    event: str | None = None,
    since: dt.datetime | None = None,
    before: dt.datetime | None = None,
    limit: int = 100,
    exclude_events: tuple[str, ...] = (),
    scope: sa.Select | None = None,
) -> list[dict[str, Any]]:
    """``scope``: a SELECT of the person ids whose events may be read (a rep's own HCPs); with
    ``person_id`` that person must be among them, without it only events tagged with one of them
    are returned (None: any)."""
    e = events
    q = sa.select(e).where(e.c.tenant_id == tenant_id)
    if scope is not None:
        q = q.where(sa.literal(person_id, sa.String).in_(scope) if person_id else e.c.person_id.in_(scope))
    if person_id:
        # events tagged with the person at ingestion, or carrying any user/anonymous id of the person
        ids = sa.select(identities.c.value).where(
            identities.c.tenant_id == tenant_id,
            identities.c.person_id == person_id,
            identities.c.type.in_(("user_id", "anonymous_id")),
        )
        q = q.where(sa.or_(e.c.person_id == person_id, e.c.user_id.in_(ids), e.c.anonymous_id.in_(ids)))
    if user_id:
        q = q.where(e.c.user_id == user_id)
    if type_:
        q = q.where(e.c.type == type_)
    if event:
        q = q.where(e.c.event == event)
    if exclude_events:
        q = q.where(sa.or_(e.c.event.is_(None), e.c.event.not_in(exclude_events)))
    if since:
        q = q.where(e.c.timestamp >= since)
    if before:
        q = q.where(e.c.timestamp < before)
    q = q.order_by(e.c.timestamp.desc(), e.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


@router.get("/events", summary="Stored events, newest first")
def list_events(
    engine: EngineDep,
    p: Annotated[Principal, require("data.read")],
    person_id: str | None = None,
    user_id: str | None = None,
    type: Annotated[str | None, Query(description="track, identify, page, screen, group, alias")] = None,
    event: Annotated[str | None, Query(description="event name, e.g. Webinar Attended")] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO-8601; events at or after")] = None,
    before: Annotated[dt.datetime | None, Query(description="ISO-8601; events before (for paging)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    for name, v in (("since", since), ("before", before)):
        if v is not None and v.tzinfo is None:
            raise HTTPException(
                422, detail={"field": name, "reason": "give a time zone, e.g. 2026-01-01T00:00:00Z"}
            )
    # imported here: profiles.service imports this module
    from medscrm.profiles.service import hidden_events, redact_event

    with engine.connect() as conn:
        rows = query_events(
            conn,
            tenant_id=p.tenant_id,
            person_id=person_id,
            user_id=user_id,
            type_=type,
            event=event,
            since=since,
            before=before,
            limit=limit,
            exclude_events=hidden_events(p.role),
            scope=p.person_scope(),
        )
    rows = [redact_event(r, p.role) for r in rows]
    return {
        "events": rows,
        "count": len(rows),
        "next_before": rows[-1]["timestamp"].isoformat() if len(rows) == limit else None,
    }
