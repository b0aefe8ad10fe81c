"""Reading stored events back: newest first, filtered by person, user id, type and time, within
a scope of persons (a rep's own HCPs).

Pages are ordered by (timestamp, id), newest first, and chained by an opaque cursor that holds both
(``next_cursor``): many events may share one timestamp (a batch, an import), so paging by the
timestamp alone (``before``, kept for older clients) could skip those that share the last one."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm.db.schema import events, identities

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
