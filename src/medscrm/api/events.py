"""``GET /api/v1/events``: stored events, newest first (:mod:`medscrm.profiles.events` reads them).
A rep token reads only the events of the HCPs the rep owns."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from medscrm.access import hidden_events, redact_event
from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.profiles.events import Cursor, decode_cursor, next_cursor, query_events

router = APIRouter(prefix="/api/v1", tags=["events"], responses=responses(*AUTH))


def cursor_param(cursor: str | None) -> Cursor | None:
    """``cursor`` (a query parameter) decoded; 422 naming the field if it is not a cursor."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError as exc:
        raise HTTPException(422, detail={"field": "cursor", "reason": str(exc)}) from exc


@router.get("/events", summary="Stored events, newest first")
def list_events(
    engine: EngineDep,
    p: Annotated[Principal, require("data.read")],
    person_id: str | None = None,
    user_id: str | None = None,
    type: Annotated[str | None, Query(description="track, identify, page, screen, group, alias")] = None,
    event: Annotated[str | None, Query(description="event name, e.g. Webinar Attended")] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO-8601; events at or after")] = None,
    before: Annotated[
        dt.datetime | None, Query(description="ISO-8601; events before (page with `cursor` instead)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> dict[str, Any]:
    for name, v in (("since", since), ("before", before)):
        if v is not None and v.tzinfo is None:
            raise HTTPException(
                422, detail={"field": name, "reason": "give a time zone, e.g. 2026-01-01T00:00:00Z"}
            )
    after = cursor_param(cursor)
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
            after=after,
        )
    rows = [redact_event(r, p.role) for r in rows]
    p.audit_read(
        engine,
        "events.read",
        object_type="event",
        object_id=person_id,
        persons=sorted({r["person_id"] for r in rows if r.get("person_id")}),
        events=len(rows),
    )
    return {
        "events": rows,
        "count": len(rows),
        "next_cursor": next_cursor(rows, limit),
        # the last timestamp, for older clients: events sharing it across pages can be missed
        "next_before": rows[-1]["timestamp"].isoformat() if len(rows) == limit else None,
    }
