"""Reading events back: newest first, filtered by person, user id, type and time. A rep token reads
only the events of the HCPs the rep owns.

Pages are ordered by (timestamp, id), newest first, and chained by an opaque cursor that holds both
(``next_cursor``): many events may share one timestamp (a batch, an import), so paging by the
timestamp alone (``before``, kept for older clients) could skip those that share the last one."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.db.schema import events, identities

router = APIRouter(prefix="/api/v1", tags=["events"], responses=responses(*AUTH))

#: A cursor: the (timestamp, id) of the last event of a page.
Cursor = tuple[dt.datetime, str]


def encode_cursor(timestamp: dt.datetime, event_id: str) -> str:
    """The opaque cursor after the event (``timestamp``, ``event_id``): URL-safe base64, no padding."""
    text = f"{timestamp.astimezone(dt.UTC).isoformat()}|{event_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """The (timestamp, id) inside ``cursor``; ValueError saying why it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts_text, event_id = raw.split("|", 1)
        ts = dt.datetime.fromisoformat(ts_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor from this API: pass next_cursor of the previous page as is") from exc
    if ts.tzinfo is None or not event_id:
        raise ValueError("not a cursor from this API: pass next_cursor of the previous page as is")
    return ts, event_id


def next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    """The cursor of the page after ``rows`` (None when this page was the last one)."""
    return encode_cursor(rows[-1]["timestamp"], rows[-1]["id"]) if rows and len(rows) == limit else None


def cursor_param(cursor: str | None) -> Cursor | None:
    """``cursor`` (a query parameter) decoded; 422 naming the field if it is not a cursor."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError as exc:
        raise HTTPException(422, detail={"field": "cursor", "reason": str(exc)}) from exc


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
    after: Cursor | None = None,
) -> list[dict[str, Any]]:
    """``scope``: a SELECT of the person ids whose events may be read (a rep's own HCPs); with
    ``person_id`` that person must be among them, without it only events tagged with one of them
    are returned (None: any). ``after``: the (timestamp, id) of the last event of the previous page
    (:func:`decode_cursor`); the page holds the events that come after it, newest first."""
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
    if after:
        ts, event_id = after
        q = q.where(sa.or_(e.c.timestamp < ts, sa.and_(e.c.timestamp == ts, e.c.id < event_id)))
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
            after=after,
        )
    rows = [redact_event(r, p.role) for r in rows]
    return {
        "events": rows,
        "count": len(rows),
        "next_cursor": next_cursor(rows, limit),
        # the last timestamp, for older clients: events sharing it across pages can be missed
        "next_before": rows[-1]["timestamp"].isoformat() if len(rows) == limit else None,
    }
