"""Outreach events on the person's timeline (the ``events`` table, source ``outreach``).

Event names: ``Send Blocked`` (a guardrail refusal, with ``reason``), ``Message Sent``,
``Message Failed``, ``Message Unconfirmed`` (dispatcher died after handing over; at-most-once
channels), ``Message Delivered`` (SMS receipts), ``Content Clicked`` (tracked link),
``Content Viewed`` (view beacon, with ``dwell_seconds``). Properties carry ``content_id``,
``therapy_area``, ``topic`` (first topic), ``topics``, ``product``, ``channel``, ``send_id`` so the
behaviour models can derive content and channel preferences.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.accounts import service as accounts
from medscrm.common import new_id, utcnow
from medscrm.db.schema import content_items, events, identities, sends, tracked_links
from medscrm.outreach import consent
from medscrm.schema.person import normalize_phone

SOURCE_NAME = "outreach"
#: timeline events that are also a send's status change (announced as ``sends.status``)
SEND_STATUS_OF = {
    "Send Blocked": "blocked",
    "Message Sent": "sent",
    "Message Delivered": "delivered",
    "Message Failed": "failed",
}
_source_ids: dict[str, str] = {}
_lock = threading.Lock()


def outreach_source_id(conn: sa.Connection, tenant_id: str) -> str:
    """The tenant's ``outreach`` source (created on first use), cached per process."""
    with _lock:
        sid = _source_ids.get(tenant_id)
    if sid:
        return sid
    src = accounts.get_source(conn=conn, tenant_id=tenant_id, name=SOURCE_NAME)
    if not src:
        src = accounts.ensure_source(conn=conn, tenant_id=tenant_id, name=SOURCE_NAME, kind="outreach")
        return src["id"]  # not cached: the caller's transaction may still roll back
    with _lock:
        _source_ids[tenant_id] = src["id"]
    return src["id"]


def content_properties(item: dict[str, Any] | None) -> dict[str, Any]:
    if not item:
        return {}
    topics = item.get("topics") or []
    return {
        "content_id": item["id"],
        "content_key": item.get("key"),
        "content_kind": item.get("kind"),
        "therapy_area": item.get("therapy_area"),
        "product": item.get("product"),
        "topic": topics[0] if topics else None,
        "topics": topics,
    }


def load_content(conn: sa.Connection, tenant_id: str, content_id: str | None) -> dict[str, Any] | None:
    if not content_id:
        return None
    row = (
        conn.execute(
            sa.select(content_items).where(
                content_items.c.tenant_id == tenant_id, content_items.c.id == content_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def emit(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    event: str,
    message_id: str,
    properties: dict[str, Any],
    at: dt.datetime | None = None,
    dedupe: bool = False,
) -> bool:
    """Append one track event; with ``dedupe`` nothing is written if ``message_id`` is already
    stored for the outreach source (receipts and beacons may arrive twice). Returns whether written."""
    sid = outreach_source_id(conn, tenant_id)
    if (
        dedupe
        and conn.execute(
            sa.select(events.c.id).where(
                events.c.tenant_id == tenant_id, events.c.source_id == sid, events.c.message_id == message_id
            )
        ).first()
    ):
        return False
    now = utcnow()
    conn.execute(
        events.insert().values(
            id=new_id("ev"),
            tenant_id=tenant_id,
            source_id=sid,
            message_id=message_id[:200],
            type="track",
            event=event,
            person_id=person_id,
            timestamp=at or now,
            received_at=now,
            properties={k: v for k, v in properties.items() if v is not None},
            context={"library": {"name": "medscrm.outreach"}},
        )
    )
    status = SEND_STATUS_OF.get(event)
    if status and properties.get("send_id"):
        hooks.emit(
            hooks.SEND_STATUS,
            conn=conn,
            tenant_id=tenant_id,
            send={
                "send_id": properties["send_id"],
                "person_id": person_id,
                "status": status,
                **{
                    k: properties.get(k)
                    for k in ("channel", "purpose", "origin", "content_id", "reason", "error", "attempts")
                },
            },
            at=at or now,
        )
    return True


def send_properties(send: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "send_id": send["id"],
        "channel": send["channel"],
        "purpose": send.get("purpose"),
        "origin": send.get("origin"),
        **content_properties(item),
    }


# --- tracked links and beacons -----------------------------------------------------------------
def make_token(
    conn: sa.Connection, *, send: dict[str, Any], kind: str, url: str | None, now: dt.datetime | None = None
) -> str:
    """A link/beacon token for this send and URL; the same send and URL get the same token (a
    retried attempt does not mint new links)."""
    t = tracked_links
    existing = conn.execute(
        sa.select(t.c.token).where(
            t.c.tenant_id == send["tenant_id"],
            t.c.send_id == send["id"],
            t.c.kind == kind,
            (t.c.url == url) if url is not None else t.c.url.is_(None),
        )
    ).scalar()
    if existing:
        return existing
    token = secrets.token_urlsafe(18)
    conn.execute(
        t.insert().values(
            token=token,
            tenant_id=send["tenant_id"],
            kind=kind,
            send_id=send["id"],
            person_id=send["person_id"],
            content_id=send.get("content_id"),
            url=url,
            created_at=now or utcnow(),
        )
    )
    return token


def resolve_token(conn: sa.Connection, token: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(tracked_links).where(tracked_links.c.token == token)).mappings().first()
    return dict(row) if row else None


def record_click(conn: sa.Connection, token: str, *, user_agent: str | None = None) -> str | None:
    """Record a ``Content Clicked`` event; returns the target URL (None for an unknown token)."""
    link = resolve_token(conn, token)
    if not link or link["kind"] != "link":
        return None
    item = load_content(conn, link["tenant_id"], link["content_id"])
    send = _send(conn, link["send_id"])
    emit(
        conn,
        tenant_id=link["tenant_id"],
        person_id=link["person_id"],
        event="Content Clicked",
        message_id=new_id("clk"),
        properties={
            **send_properties(send, item),
            "url": link["url"],
            "user_agent": (user_agent or "")[:200],
        },
    )
    return link["url"]


def record_view(conn: sa.Connection, token: str, *, dwell_seconds: float | None = None) -> bool:
    link = resolve_token(conn, token)
    if not link or link["kind"] != "beacon":
        return False
    item = load_content(conn, link["tenant_id"], link["content_id"])
    send = _send(conn, link["send_id"])
    emit(
        conn,
        tenant_id=link["tenant_id"],
        person_id=link["person_id"],
        event="Content Viewed",
        message_id=new_id("view"),
        properties={**send_properties(send, item), "dwell_seconds": dwell_seconds},
    )
    return True


def _send(conn: sa.Connection, send_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(sends).where(sends.c.id == send_id)).mappings().first()
    return dict(row) if row else {"id": send_id, "channel": None}


# --- delivery receipts -------------------------------------------------------------------------
def record_receipt(
    conn: sa.Connection,
    *,
    send_id: str | None,
    provider_message_id: str | None,
    delivered: bool,
    code: str | None,
    description: str | None,
    at: dt.datetime | None = None,
) -> bool:
    """An SMS delivery report. The send is found by our id (OutId / SessionContext) *and* the
    provider's id (BizId / SerialNo) — both must match, so a forged receipt needs both secrets-like
    ids. Returns False for an unknown send. Idempotent per send and outcome."""
    s = sends
    q = sa.select(s)
    if send_id:
        q = q.where(s.c.id == send_id)
        if provider_message_id:
            q = q.where(s.c.provider_message_id == provider_message_id)
    elif provider_message_id:
        q = q.where(s.c.provider_message_id == provider_message_id)
    else:
        return False
    send = conn.execute(q.limit(1)).mappings().first()
    if not send:
        return False
    send = dict(send)
    item = load_content(conn, send["tenant_id"], send["content_id"])
    event = "Message Delivered" if delivered else "Message Failed"
    written = emit(
        conn,
        tenant_id=send["tenant_id"],
        person_id=send["person_id"],
        event=event,
        message_id=f"receipt:{send['id']}:{'ok' if delivered else 'fail'}",
        properties={
            **send_properties(send, item),
            "code": code,
            "description": description,
            "stage": "delivery",
        },
        at=at,
        dedupe=True,
    )
    values: dict[str, Any] = {"updated_at": utcnow()}
    if delivered:
        values.update(status="delivered", delivered_at=at or utcnow())
        conn.execute(
            s.update().where(s.c.id == send["id"], s.c.status.in_(("sent", "unknown"))).values(**values)
        )
    else:
        values.update(status="failed", error=f"delivery failed: {code} {description or ''}".strip())
        conn.execute(
            s.update().where(s.c.id == send["id"], s.c.status.in_(("sent", "unknown"))).values(**values)
        )
    return written


# --- replies (upstream SMS) ------------------------------------------------------------------------
#: replies that mean "stop marketing SMS" (PIPL Art. 24: an easy opt-out of automated marketing)
OPT_OUT_WORDS = frozenset({"td", "t", "n", "退订", "退", "取消", "unsubscribe", "stop", "0000"})


def record_reply(
    conn: sa.Connection,
    *,
    tenant_id: str,
    phone: str,
    text: str,
    provider: str,
    at: dt.datetime | None = None,
    ref: str | None = None,
) -> list[dict[str, Any]]:
    """An SMS reply to the tenant's number: a ``Message Replied`` event for every person of the
    tenant holding the phone; an opt-out reply (TD, 退订, …) withdraws their SMS marketing consent.
    Returns what was done."""

    try:
        e164 = normalize_phone(phone)
    except ValueError:
        return []
    if not e164:
        return []
    holders = conn.execute(
        sa.select(identities.c.tenant_id, identities.c.person_id)
        .where(identities.c.tenant_id == tenant_id, identities.c.type == "phone", identities.c.value == e164)
        .distinct()
    ).all()
    opt_out = text.strip().lower() in OPT_OUT_WORDS
    done = []
    for tenant_id, person_id in holders:
        written = emit(
            conn,
            tenant_id=tenant_id,
            person_id=person_id,
            event="Message Replied",
            message_id=f"reply:{provider}:{ref or (e164 + ':' + text + ':' + str(at))}",
            properties={"channel": "sms", "provider": provider, "text": text[:500], "opt_out": opt_out},
            at=at,
            dedupe=True,
        )
        if written and opt_out:
            consent.set_consent(
                conn,
                tenant_id=tenant_id,
                person_id=person_id,
                channel="sms",
                purpose="marketing",
                status="withdrawn",
                source=f"sms_reply_{provider}",
                evidence={"reply": text[:100], "at": (at or utcnow()).isoformat()},
                actor="system:sms_reply",
            )
        done.append({"tenant_id": tenant_id, "person_id": person_id, "opt_out": opt_out, "new": written})
    return done
