"""The send outbox: ``request_send`` in the caller's transaction, ``dispatch_once``
by workers.

Life of a send::

    request_send ──► blocked (a guardrail refused; reason + "Send Blocked" timeline event)
          │
          └────────► queued (not_before = end of quiet hours when deferred)
                        │ claim (FOR UPDATE SKIP LOCKED on PostgreSQL; lease)
                        ▼
                     sending ──(re-check: withdrawn content, consent, DNC …)──► blocked / cancelled
                        │ provider call; the hand-off (handed_off_at, attempts + 1) is committed at
                        │ its last moment before the provider can accept (SMTP: before the final ".")
                        ├── ok ─────────► sent ──(SMS receipt)──► delivered / failed
                        ├── error, attempts left ──► queued (not_before = now + backoff·2^(n-1), jittered)
                        └── error, permanent or last attempt ──► failed (the provider's error)

Crash safety (kill -9 of a dispatcher at any moment):

* before the hand-off commit: the send is ``sending`` with ``handed_off_at`` NULL; when the lease
  runs out any dispatcher re-claims it. Nothing reached the provider (for SMTP: an unterminated
  DATA, which the server discards): no loss, no duplicate.
* after the hand-off commit and before the result commit (the provider may or may not have the
  message — no protocol can tell): the send's channel ``inflight_policy`` decides.
  ``retry`` re-sends **with the same provider idempotency id** (SMTP Message-ID, WeChat
  ``client_msg_id``, webhook ``Idempotency-Key``): exactly-once where the provider de-duplicates by
  it, at-least-once otherwise. ``hold`` marks it ``unknown`` (at-most-once; an SMS delivery receipt
  carrying our ``OutId``/``SessionContext`` later confirms it as delivered).
* every state change after the claim is fenced on ``worker_id`` + ``status = 'sending'``: a
  dispatcher that lost its lease cannot overwrite another's result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html import escape
from typing import Any

import sqlalchemy as sa
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.dialects.postgresql import insert as pg_insert

from medscrm import hooks
from medscrm.common import InvalidInput, backoff, new_id, utcnow
from medscrm.config import get_settings
from medscrm.db.bulk import append_rows
from medscrm.db.claim import claiming, due_or_expired, skip_locked
from medscrm.db.schema import sends
from medscrm.outreach import feedback, guardrails
from medscrm.outreach.channels import ChannelError, HandoffRefused, OutMessage, get_channel
from medscrm.outreach.settings import SEND_CHANNELS, channel_config, get_policy

PURPOSES = ("marketing", "medical_info", "survey", "service")
_jinja = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass
class SendRequest:
    tenant_id: str
    person_id: str
    channel: str
    idempotency_key: str
    origin: str
    content_id: str | None = None
    purpose: str = "marketing"
    variables: dict[str, Any] = field(default_factory=dict)
    not_before: dt.datetime | None = None


@dataclass
class SendOutcome:
    status: str  # queued, blocked, duplicate
    send_id: str
    reason: str | None = None
    not_before: dt.datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    existing_status: str | None = None  # for duplicates: the first request's current status


def _validate(req: SendRequest) -> None:
    if req.channel not in SEND_CHANNELS:
        raise InvalidInput("channel", f"{req.channel!r} is not one of {', '.join(SEND_CHANNELS)}")
    if req.purpose not in PURPOSES:
        raise InvalidInput("purpose", f"{req.purpose!r} is not one of {', '.join(PURPOSES)}")
    if not req.idempotency_key or len(req.idempotency_key) > 200:
        raise InvalidInput("idempotency_key", "required, at most 200 characters")
    if not req.origin or len(req.origin) > 200:
        raise InvalidInput("origin", "required (journey:<id>:<step> or rep:<user>), at most 200 characters")
    if not isinstance(req.variables, dict):
        raise InvalidInput("variables", "must be an object")
    if req.not_before is not None and req.not_before.tzinfo is None:
        raise InvalidInput("not_before", "give a time zone")


def _existing(conn: sa.Connection, tenant_id: str, key: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(sends).where(sends.c.tenant_id == tenant_id, sends.c.idempotency_key == key))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def request_send(conn: sa.Connection, req: SendRequest, now: dt.datetime | None = None) -> SendOutcome:
    """Run every guardrail and write the outbox row, in the caller's transaction."""
    _validate(req)
    now = now or utcnow()
    # PostgreSQL: the insert's ON CONFLICT catches a repeat (no extra round trip for new keys)
    old = _existing(conn, req.tenant_id, req.idempotency_key) if conn.dialect.name != "postgresql" else None
    if old:
        return SendOutcome(
            "duplicate",
            old["id"],
            reason=old["reason"],
            not_before=old["not_before"],
            existing_status=old["status"],
        )
    policy = get_policy(conn, tenant_id=req.tenant_id)
    person = guardrails.load_person(conn, req.tenant_id, req.person_id)
    content = feedback.load_content(conn, req.tenant_id, req.content_id)
    v = guardrails.evaluate(
        conn,
        tenant_id=req.tenant_id,
        person=person,
        channel=req.channel,
        purpose=req.purpose,
        origin=req.origin,
        content=content,
        content_id=req.content_id,
        variables=req.variables,
        policy=policy,
        now=now,
    )
    not_before = req.not_before
    if v.ok and v.not_before and (not_before is None or v.not_before > not_before):
        not_before = v.not_before
    row = {
        "id": new_id("snd"),
        "tenant_id": req.tenant_id,
        "person_id": person["id"] if person else req.person_id,
        "channel": req.channel,
        "content_id": req.content_id,
        "idempotency_key": req.idempotency_key,
        "purpose": req.purpose,
        "origin": req.origin,
        "status": "queued" if v.ok else "blocked",
        "reason": v.reason,
        "detail": v.detail or None,
        "variables": req.variables or None,
        "attempts": 0,
        "not_before": not_before,
        "created_at": now,
        "updated_at": now,
        **proof_columns(v, stage="request"),
    }
    if conn.dialect.name == "postgresql":
        stmt = (
            pg_insert(sends)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        )
        if not conn.execute(stmt.returning(sends.c.id)).first():  # a concurrent request won
            old = _existing(conn, req.tenant_id, req.idempotency_key)
            assert old is not None
            return SendOutcome("duplicate", old["id"], reason=old["reason"], existing_status=old["status"])
    else:
        conn.execute(sends.insert().values(**row))
    if not v.ok:
        _blocked_event(conn, row, content, v.reason, v.detail, now)
        return SendOutcome("blocked", row["id"], reason=v.reason, detail=v.detail)
    return SendOutcome("queued", row["id"], reason=v.reason, not_before=not_before, detail=v.detail)


def proof_columns(v: guardrails.Verdict, *, stage: str) -> dict[str, Any]:
    """The send's proof: the consent relied on, the content approval and each check (marked with the
    ``stage`` that ran it: request or dispatch)."""
    consent, approval = v.consent or {}, v.approval or {}
    return {
        "consent_history_id": consent.get("history_id"),
        "consent_version": consent.get("version"),
        "consent_hash": consent.get("hash"),
        "approval_code": approval.get("code"),
        "approval_expires_at": approval.get("expires_at"),
        "checks": [{**c, "stage": stage} for c in v.checks] or None,
    }


def _blocked_event(
    conn, send: dict, content, reason: str | None, detail: dict | None, now: dt.datetime
) -> None:
    feedback.emit(
        conn,
        tenant_id=send["tenant_id"],
        person_id=send["person_id"],
        event="Send Blocked",
        message_id=f"blocked:{send['id']}",
        properties={**feedback.send_properties(send, content), "reason": reason, "detail": detail or None},
        at=now,
        dedupe=True,
    )


def get_send(conn: sa.Connection, *, tenant_id: str, send_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(sends).where(sends.c.tenant_id == tenant_id, sends.c.id == send_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def list_sends(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str | None = None,
    status: str | None = None,
    content_id: str | None = None,
    origin_prefix: str | None = None,
    limit: int = 100,
    scope: sa.Select | None = None,
) -> list[dict[str, Any]]:
    """Sends, newest first; ``scope``: to these person ids only (a SELECT: a rep's own HCPs)."""
    s = sends
    q = sa.select(s).where(s.c.tenant_id == tenant_id)
    if scope is not None:
        q = q.where(s.c.person_id.in_(scope))
    if person_id:
        q = q.where(s.c.person_id == person_id)
    if status:
        q = q.where(s.c.status == status)
    if content_id:
        q = q.where(s.c.content_id == content_id)
    if origin_prefix:
        q = q.where(s.c.origin.startswith(origin_prefix, autoescape=True))
    q = q.order_by(s.c.created_at.desc(), s.c.id).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def send_counts(
    conn: sa.Connection,
    *,
    tenant_id: str,
    origin_prefix: str | None = None,
    scope: sa.Select | None = None,
) -> dict[str, Any]:
    """``{status: n}`` and ``blocked: {reason: n}`` (for journey step statistics); ``scope``: sends to
    these person ids only."""
    s = sends
    q = sa.select(s.c.status, s.c.reason, sa.func.count()).where(s.c.tenant_id == tenant_id)
    if scope is not None:
        q = q.where(s.c.person_id.in_(scope))
    if origin_prefix:
        q = q.where(s.c.origin.startswith(origin_prefix, autoescape=True))
    out: dict[str, Any] = {"blocked_by_reason": {}}
    for status, reason, n in conn.execute(q.group_by(s.c.status, s.c.reason)).all():
        out[status] = out.get(status, 0) + n
        if status in ("blocked", "cancelled"):
            out["blocked_by_reason"][reason or "unknown"] = (
                out["blocked_by_reason"].get(reason or "unknown", 0) + n
            )
    return out


# --- dispatch ------------------------------------------------------------------------------------
def _claim(
    engine: sa.Engine, *, worker_id: str, tenant_id: str | None, limit: int, now: dt.datetime
) -> list[str]:
    s = sends
    due = due_or_expired(
        status=s.c.status,
        waiting="queued",
        due=sa.or_(s.c.not_before.is_(None), s.c.not_before <= now),
        working="sending",
        lease_until=s.c.lease_until,
        now=now,
    )
    q = sa.select(s.c.id, s.c.tenant_id, s.c.status, s.c.channel, s.c.handed_off_at, s.c.detail).where(due)
    if tenant_id:
        q = q.where(s.c.tenant_id == tenant_id)
    q = q.order_by(s.c.not_before.asc().nulls_first(), s.c.created_at).limit(limit)
    # rows are claimed one by one: a send resumed after a crash past its hand-off may be held
    # (inflight_policy "hold") instead of claimed, and each tenant has its own lease length
    with claiming(engine, s) as conn:
        rows = conn.execute(skip_locked(q, conn, of=s)).all()
        claimed: list[str] = []
        policies: dict[str, dict] = {}
        for sid, tid, status, channel, handed, detail in rows:
            if status == "sending" and handed is not None:
                pol = policies.setdefault(tid, get_policy(conn, tenant_id=tid))
                if (pol.get("inflight_policy") or {}).get(channel, "retry") == "hold":
                    _mark_unknown(conn, sid, now)
                    continue
            conn.execute(
                s.update()
                .where(s.c.id == sid)
                .values(
                    status="sending",
                    worker_id=worker_id,
                    lease_until=now + dt.timedelta(seconds=_lease(policies, conn, tid)),
                    handed_off_at=None,
                    updated_at=now,
                    # re-sent after a crash past the hand-off (inflight_policy "retry")
                    detail={**(detail or {}), "resumed_after_crash": True} if handed is not None else detail,
                )
            )
            claimed.append(sid)
        return claimed


def _lease(policies: dict, conn: sa.Connection, tenant_id: str) -> int:
    pol = policies.get(tenant_id)
    if pol is None:
        pol = policies[tenant_id] = get_policy(conn, tenant_id=tenant_id)
    return int(pol.get("lease_seconds") or 120)


def _mark_unknown(conn: sa.Connection, send_id: str, now: dt.datetime) -> None:
    s = sends
    row = conn.execute(sa.select(s).where(s.c.id == send_id)).mappings().first()
    conn.execute(
        s.update()
        .where(s.c.id == send_id)
        .values(
            status="unknown",
            lease_until=None,
            updated_at=now,
            error="the dispatcher stopped after handing the message to the provider; not re-sent "
            "(at-most-once channel): confirm with the provider's delivery report",
        )
    )
    item = feedback.load_content(conn, row["tenant_id"], row["content_id"])
    feedback.emit(
        conn,
        tenant_id=row["tenant_id"],
        person_id=row["person_id"],
        event="Message Unconfirmed",
        message_id=f"unknown:{send_id}",
        properties=feedback.send_properties(dict(row), item),
        at=now,
        dedupe=True,
    )


def dispatch_once(
    engine: sa.Engine,
    *,
    worker_id: str,
    tenant_id: str | None = None,
    limit: int = 100,
    now: dt.datetime | None = None,
) -> int:
    """Deliver up to ``limit`` due sends; returns how many were processed (sent, failed, retried,
    blocked or deferred). Each send: re-check commit → provider call with the hand-off commit at its
    last moment → result commit."""
    claimed = _claim(engine, worker_id=worker_id, tenant_id=tenant_id, limit=limit, now=now or utcnow())
    for sid in claimed:
        _deliver(engine, sid, worker_id=worker_id, fixed_now=now)
    return len(claimed)


def _fence(send_id: str, worker_id: str):
    s = sends
    return (s.c.id == send_id, s.c.worker_id == worker_id, s.c.status == "sending")


def _deliver(engine: sa.Engine, send_id: str, *, worker_id: str, fixed_now: dt.datetime | None) -> None:
    s = sends
    now = fixed_now or utcnow()
    # 1. re-check the guardrails and render (committed: tracked-link tokens)
    with engine.begin() as conn:
        row = conn.execute(sa.select(s).where(*_fence(send_id, worker_id))).mappings().first()
        if not row:
            return  # cancelled (content withdrawn) or re-claimed by another dispatcher
        send = dict(row)
        tid = send["tenant_id"]
        policy = get_policy(conn, tenant_id=tid)
        person = guardrails.load_person(conn, tid, send["person_id"])
        content = feedback.load_content(conn, tid, send["content_id"])
        variables = send["variables"] or {}
        v = guardrails.evaluate(
            conn,
            tenant_id=tid,
            person=person,
            channel=send["channel"],
            purpose=send["purpose"],
            origin=send["origin"],
            content=content,
            content_id=send["content_id"],
            variables=variables,
            policy=policy,
            now=now,
            check_caps=False,  # counted when requested; a retry does not count again
        )
        if not v.ok:
            status = "cancelled" if v.reason == "content_withdrawn" else "blocked"
            conn.execute(
                s.update()
                .where(*_fence(send_id, worker_id))
                .values(
                    status=status,
                    reason=v.reason,
                    detail=v.detail or None,
                    lease_until=None,
                    updated_at=now,
                    # the request-time proof stays; the dispatch re-check that refused is added
                    checks=(send["checks"] or []) + proof_columns(v, stage="dispatch")["checks"],
                )
            )
            _blocked_event(conn, send, content, v.reason, v.detail, now)
            return
        if v.not_before is not None:  # a retry that fell into quiet hours: wait, do not drop
            conn.execute(
                s.update()
                .where(*_fence(send_id, worker_id))
                .values(status="queued", not_before=v.not_before, lease_until=None, updated_at=now)
            )
            return
        cfg = channel_config(conn, tenant_id=tid, channel=send["channel"]) or {}
        try:
            msg = render(conn, send, person, content, v, policy)
        except ChannelError as exc:
            _finish_failed(conn, send, worker_id, str(exc), content, now)
            return
        attempts = (send["attempts"] or 0) + 1
        lease = dt.timedelta(seconds=int(policy.get("lease_seconds") or 120))

    def handoff() -> bool:
        """Committed at the channel's last moment before the provider can accept the message."""
        at = fixed_now or utcnow()
        with engine.begin() as hconn:
            res = hconn.execute(
                s.update()
                .where(*_fence(send_id, worker_id))
                .values(handed_off_at=at, attempts=attempts, lease_until=at + lease, updated_at=at)
                .execution_options(preserve_rowcount=True)
            )
        return res.rowcount == 1

    # 2. the provider call (no transaction open; the channel calls handoff() just before it sends)
    try:
        delivery = get_channel(cfg.get("provider", "")).send(msg, cfg, handoff)
        error: ChannelError | None = None
    except HandoffRefused:
        return  # cancelled (content withdrawn) or taken over meanwhile: nothing was given to the provider
    except ChannelError as exc:
        delivery, error = None, exc
    # 3. the result
    done = utcnow() if fixed_now is None else fixed_now
    with engine.begin() as conn:
        if error is None:
            res = conn.execute(
                s.update()
                .where(*_fence(send_id, worker_id))
                .values(
                    status="sent",
                    attempts=attempts,
                    sent_at=done,
                    provider_message_id=(delivery.provider_message_id or "")[:200] or None,
                    error=None,
                    lease_until=None,
                    updated_at=done,
                )
                .execution_options(preserve_rowcount=True)
            )
            if res.rowcount == 1:
                feedback.emit(
                    conn,
                    tenant_id=tid,
                    person_id=send["person_id"],
                    event="Message Sent",
                    message_id=f"sent:{send_id}",
                    properties={
                        **feedback.send_properties(send, content),
                        "provider": cfg.get("provider"),
                        "provider_message_id": delivery.provider_message_id,
                        "attempts": attempts,
                    },
                    at=done,
                )
            return
        max_attempts = int(policy.get("max_attempts") or 5)
        if error.retryable and attempts < max_attempts:
            base = int(policy.get("backoff_seconds") or 30)
            wait = backoff(attempts, base, int(policy.get("backoff_max_seconds") or 3600))
            conn.execute(
                s.update()
                .where(*_fence(send_id, worker_id))
                .values(
                    status="queued",
                    attempts=attempts,
                    not_before=done + dt.timedelta(seconds=wait),
                    error=str(error)[:2000],
                    handed_off_at=None,
                    lease_until=None,
                    updated_at=done,
                )
            )
            return
        _finish_failed(conn, send, worker_id, str(error), content, done, attempts=attempts)


def _finish_failed(conn, send, worker_id, error: str, content, now, attempts: int | None = None) -> None:
    s = sends
    res = conn.execute(
        s.update()
        .where(*_fence(send["id"], worker_id))
        .values(
            status="failed",
            error=error[:2000],
            lease_until=None,
            updated_at=now,
            **({"attempts": attempts} if attempts is not None else {}),
        )
        .execution_options(preserve_rowcount=True)
    )
    if res.rowcount == 1:
        feedback.emit(
            conn,
            tenant_id=send["tenant_id"],
            person_id=send["person_id"],
            event="Message Failed",
            message_id=f"failed:{send['id']}",
            properties={
                **feedback.send_properties(send, content),
                "error": error[:500],
                "attempts": attempts,
            },
            at=now,
        )


# --- rendering -----------------------------------------------------------------------------------
def _render_text(template: str | None, ctx: dict[str, Any], field_name: str) -> str:
    if not template:
        return ""
    try:
        return _jinja.from_string(template).render(**ctx)
    except TemplateError as exc:
        raise ChannelError(
            f"content {field_name}: cannot render: {exc}", retryable=False, code="render"
        ) from None


def render(
    conn: sa.Connection, send: dict, person: dict | None, content: dict | None, v, policy: dict
) -> OutMessage:
    """The message for the provider: the content's subject/body rendered with the person's name,
    title, hospital and the request's variables; tracked link + view beacon for e-mail."""
    attrs = (person or {}).get("attributes") or {}
    ctx: dict[str, Any] = {
        "name": attrs.get("name") or "",
        "title": attrs.get("title") or "",
        "hospital": attrs.get("hospital") or "",
        "department": attrs.get("department") or "",
    }
    ctx.update(send.get("variables") or {})
    base = str(policy.get("tracking_base_url") or get_settings().public_base_url).rstrip("/")
    url = None
    if content and content.get("url"):
        url = f"{base}/r/{feedback.make_token(conn, send=send, kind='link', url=content['url'])}"
    ctx["url"] = url or ""
    body = _render_text(content.get("body") if content else ctx.get("body"), ctx, "body")
    subject = _render_text(
        content.get("subject") or content.get("title") if content else ctx.get("subject"), ctx, "subject"
    )
    html = None
    if send["channel"] == "email":
        beacon = f"{base}/b/{feedback.make_token(conn, send=send, kind='beacon', url=None)}"

        parts = [f"<p>{escape(line)}</p>" for line in body.splitlines() if line.strip()]
        if url:
            parts.append(f'<p><a href="{escape(url)}">{escape(content.get("title") or url)}</a></p>')
        parts.append(f'<img src="{escape(beacon)}" width="1" height="1" alt="">')
        html = "\n".join(parts)
        if url and url not in body:
            body = f"{body}\n\n{url}"
    template = dict((content or {}).get("template") or {})
    params = {**ctx, "title": (content or {}).get("title") or ctx.get("title"), "text": body}
    payload = {
        "send_id": send["id"],
        "person_id": send["person_id"],
        "origin": send["origin"],
        "purpose": send["purpose"],
        "content": {k: (content or {}).get(k) for k in ("id", "key", "title", "kind")} if content else None,
        "variables": send.get("variables") or {},
    }
    return OutMessage(
        send_id=send["id"],
        tenant_id=send["tenant_id"],
        person_id=send["person_id"],
        channel=send["channel"],
        to=v.address,
        sender=v.sender,
        subject=subject,
        title=(content or {}).get("title"),
        text=body,
        html=html,
        url=url,
        template=template,
        params=params,
        payload=payload,
    )


def cancel_pending_sends(
    conn: sa.Connection,
    *,
    tenant_id: str,
    reason: str,
    content_id: str | None = None,
    origin_prefix: str | None = None,
) -> int:
    """Queued sends of one content item (``content_id``) or one origin (``origin_prefix``, e.g.
    ``journey:<id>:``), and claimed ones not yet handed to a provider, become ``cancelled``; each
    gets a ``Send Blocked`` event (with the reason) on its person's timeline."""
    if (content_id is None) == (origin_prefix is None):
        raise ValueError("cancel_pending_sends: give exactly one of content_id, origin_prefix")
    s = sends
    pending = sa.and_(
        s.c.tenant_id == tenant_id,
        s.c.content_id == content_id
        if content_id is not None
        else s.c.origin.startswith(origin_prefix, autoescape=True),
        sa.or_(s.c.status == "queued", sa.and_(s.c.status == "sending", s.c.handed_off_at.is_(None))),
    )
    rows = [dict(r) for r in conn.execute(sa.select(s).where(pending)).mappings()]
    if not rows:
        return 0
    now = utcnow()
    conn.execute(
        s.update()
        .where(pending, s.c.id.in_([r["id"] for r in rows]))
        .values(status="cancelled", reason=reason, updated_at=now, lease_until=None)
    )
    items = {c: feedback.load_content(conn, tenant_id, c) for c in {r["content_id"] for r in rows}}
    source_id = feedback.outreach_source_id(conn, tenant_id)
    append_rows(
        conn,
        feedback.events,
        [
            {
                "id": new_id("ev"),
                "tenant_id": tenant_id,
                "source_id": source_id,
                "message_id": f"blocked:{r['id']}",
                "type": "track",
                "event": "Send Blocked",
                "person_id": r["person_id"],
                "timestamp": now,
                "received_at": now,
                "properties": {**feedback.send_properties(r, items[r["content_id"]]), "reason": reason},
                "context": {"library": {"name": "medscrm.outreach"}},
            }
            for r in rows
        ],
    )
    return len(rows)


@hooks.subscribe(hooks.CONTENT_WITHDRAWN, "outreach.sends")
def _on_content_withdrawn(conn: sa.Connection, *, tenant_id: str, content_id: str, reason: str) -> int:
    return cancel_pending_sends(conn, tenant_id=tenant_id, content_id=content_id, reason=reason)
