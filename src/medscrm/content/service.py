"""Content items and their review (MLR) status machine. The caller owns the transaction.

Status machine::

    draft ──submit──► in_review ──approve──► approved ──(expires_at passes)──► expired
      ▲                  │                       │
      └─────reject───────┘                       └──withdraw──► withdrawn (also from draft,
                                                                in_review, expired)

Only a user with the ``compliance`` role approves, and never the item's author nor the person who
submitted it for review (four-eyes). A draft may be edited; every change is audited (the audit rows
of an item are its history, :func:`history`). Withdrawing cancels every queued send of the item (``sends`` rows still ``queued``, or
claimed by a dispatcher but not yet handed to the provider).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, MedscrmError, NotFound, as_utc, new_id, utcnow
from medscrm.db.schema import audit_log, content_items

KINDS = (
    "article",
    "video",
    "pdf",
    "webinar",
    "survey",
    "wecom_template",
    "sms_template",
    "email_template",
    "wechat_template",
)
AUDIENCES = ("hcp_only", "patient", "public")
STATUSES = ("draft", "in_review", "approved", "expired", "withdrawn")
#: recipient kinds understood by :func:`is_sendable`
RECIPIENTS = ("verified_hcp", "hcp", "patient", "public")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TRANSITIONS = {
    "submit": ({"draft"}, "in_review"),
    "approve": ({"in_review"}, "approved"),
    "reject": ({"in_review"}, "draft"),
    "withdraw": ({"draft", "in_review", "approved", "expired"}, "withdrawn"),
}


class TransitionError(MedscrmError):
    """A status change that the state machine does not allow."""

    code = "transition"


#: fields a draft may change (:func:`update_item`); the key and the audit columns never change
EDITABLE = (
    "title",
    "kind",
    "audience",
    "therapy_area",
    "product",
    "prescription",
    "topics",
    "subject",
    "body",
    "url",
    "template",
    "valid_from",
    "expires_at",
)


def _invalid(field: str, code: str, reason: str) -> InvalidInput:
    """An :class:`InvalidInput` with a stable ``code`` (``field.code``) that a console translates."""
    exc = InvalidInput(field, reason)
    exc.code = code  # type: ignore[attr-defined]
    return exc


def same_person(a: str | None, b: str | None) -> bool:
    """The console acts as ``user:<name>``, the API and the CLI as ``<name>``: one person either way."""

    def norm(x: str | None) -> str:
        return (x or "").removeprefix("user:")

    return bool(a) and bool(b) and norm(a) == norm(b)


def _aware(v: dt.datetime | None, field: str) -> dt.datetime | None:
    if v is None:
        return None
    if v.tzinfo is None:
        raise _invalid(field, "timezone", "give a time zone (e.g. 2026-01-01T00:00:00+08:00)")
    return v


def create_item(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    title: str,
    kind: str,
    audience: str,
    actor: str,
    therapy_area: str | None = None,
    product: str | None = None,
    prescription: bool = False,
    topics: list[str] | None = None,
    subject: str | None = None,
    body: str | None = None,
    url: str | None = None,
    template: dict[str, Any] | None = None,
    valid_from: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A new draft. Prescription-product content must be ``hcp_only``."""
    if not _KEY.match(key or ""):
        raise _invalid("key", "format", "use 1–64 lower-case letters, digits, '_', '-' or '.'")
    fields = _validated(
        title=title,
        kind=kind,
        audience=audience,
        therapy_area=therapy_area,
        product=product,
        prescription=prescription,
        topics=topics,
        subject=subject,
        body=body,
        url=url,
        template=template,
        valid_from=valid_from,
        expires_at=expires_at,
    )
    if conn.execute(
        sa.select(content_items.c.id).where(
            content_items.c.tenant_id == tenant_id, content_items.c.key == key
        )
    ).first():
        raise _invalid("key", "taken", f"content {key!r} already exists in this tenant")
    now = utcnow()
    row = {
        "id": new_id("ct"),
        "tenant_id": tenant_id,
        "key": key,
        **fields,
        "approval_code": None,
        "status": "draft",
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    conn.execute(content_items.insert().values(**row))
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="content.create",
        object_type="content",
        object_id=row["id"],
        detail={"key": key, "audience": audience, "prescription": bool(prescription)},
    )
    return get_item(conn, tenant_id=tenant_id, item_id=row["id"])


def _validated(
    *,
    title: str,
    kind: str,
    audience: str,
    therapy_area: str | None,
    product: str | None,
    prescription: bool,
    topics: list[str] | None,
    subject: str | None,
    body: str | None,
    url: str | None,
    template: dict[str, Any] | None,
    valid_from: dt.datetime | None,
    expires_at: dt.datetime | None,
) -> dict[str, Any]:
    """The editable fields checked and normalised, as stored; the first problem raises, naming its
    field (the same rules for a new item and an edited draft)."""
    if not (title or "").strip() or len(title) > 300:
        raise _invalid("title", "required", "a title of 1–300 characters is required")
    if kind not in KINDS:
        raise _invalid("kind", "choice", f"{kind!r} is not one of {', '.join(KINDS)}")
    if audience not in AUDIENCES:
        raise _invalid("audience", "choice", f"{audience!r} is not one of {', '.join(AUDIENCES)}")
    if prescription and audience != "hcp_only":
        raise _invalid(
            "audience",
            "rx_hcp_only",
            "prescription-product content may only be hcp_only (Advertising Law Art. 15: no Rx "
            "promotion to patients or the public) / 处方药内容仅限医疗卫生专业人士",
        )
    if prescription and not (product or "").strip():
        raise _invalid("product", "rx_product", "prescription content must name its product")
    if not body and not url and not template:
        raise _invalid("body", "required", "give a body, a url or a provider template")
    if subject is not None and len(subject) > 300:
        raise _invalid("subject", "too_long", "a subject of at most 300 characters")
    if url and (not re.match(r"^https?://", url) or len(url) > 1000):
        raise _invalid("url", "scheme", "must start with http:// or https://")
    _aware(valid_from, "valid_from")
    _aware(expires_at, "expires_at")
    if valid_from and expires_at and expires_at <= valid_from:
        raise _invalid("expires_at", "before_start", "must be after valid_from")
    return {
        "title": title.strip(),
        "kind": kind,
        "therapy_area": (therapy_area or "").strip() or None,
        "product": (product or "").strip() or None,
        "audience": audience,
        "prescription": bool(prescription),
        "topics": [str(t).strip() for t in (topics or []) if str(t).strip()],
        "subject": subject or None,
        "body": body or None,
        "url": url or None,
        "template": template or None,
        "valid_from": valid_from,
        "expires_at": expires_at,
    }


def update_item(
    conn: sa.Connection, *, tenant_id: str, item_id: str, actor: str, **changes: Any
) -> dict[str, Any]:
    """Edit a draft (fields of :data:`EDITABLE`; the others keep their values). An item in review,
    approved or withdrawn is not edited: reject it back to draft first. Audited with the names of
    the fields that changed."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise _invalid(unknown[0], "not_editable", f"{unknown[0]!r} cannot be edited")
    item = get_item(conn, tenant_id=tenant_id, item_id=item_id)
    if item["status"] != "draft":
        exc = TransitionError(
            f"status: content {item['key']!r} is {item['status']}; only a draft is edited / 仅草稿可编辑"
        )
        exc.code = "not_draft"  # type: ignore[misc]
        raise exc
    # stored times may come back naive (UTC) from some drivers: compare and re-check them as UTC
    stored = {k: as_utc(v) if isinstance(v, dt.datetime) else v for k, v in item.items()}
    merged = {k: changes[k] if k in changes else stored.get(k) for k in EDITABLE}
    fields = _validated(**merged)

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
            return as_utc(a) == as_utc(b)
        return a == b

    changed = sorted(k for k in EDITABLE if k in changes and not same(fields[k], item.get(k)))
    if not changed:
        return item
    c = content_items
    conn.execute(
        c.update()
        .where(c.c.id == item["id"], c.c.status == "draft")
        .values(**{k: fields[k] for k in changed}, updated_at=utcnow())
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="content.update",
        object_type="content",
        object_id=item["id"],
        detail={"fields": changed},
    )
    return get_item(conn, tenant_id=tenant_id, item_id=item["id"])


def history(conn: sa.Connection, *, tenant_id: str, item_id: str) -> list[dict[str, Any]]:
    """What happened to the item, oldest first: its audit rows (who, when, the action — create,
    update, submit, approve, reject, withdraw, expire — and the detail: reason, approval code, fields
    changed)."""
    item = get_item(conn, tenant_id=tenant_id, item_id=item_id)
    a = audit_log
    rows = [
        dict(r)
        for r in conn.execute(
            sa.select(a.c.occurred_at, a.c.actor, a.c.action, a.c.detail)
            .where(a.c.tenant_id == tenant_id, a.c.object_type == "content", a.c.object_id == item["id"])
            .order_by(a.c.occurred_at, a.c.id)
        ).mappings()
    ]
    for r in rows:  # JSON comes back as text from some drivers
        if isinstance(r["detail"], str):
            r["detail"] = json.loads(r["detail"])
    return rows


def get_item(conn: sa.Connection, *, tenant_id: str, item_id: str) -> dict[str, Any]:
    """By id (``ct_…``) or key. An approved item past its expiry reads as ``expired``."""
    c = content_items
    row = (
        conn.execute(
            sa.select(c).where(c.c.tenant_id == tenant_id, sa.or_(c.c.id == item_id, c.c.key == item_id))
        )
        .mappings()
        .first()
    )
    if not row:
        raise NotFound(f"content {item_id!r} not found in this tenant")
    return _effective(dict(row))


def _effective(row: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    exp = as_utc(row.get("expires_at"))
    if row["status"] == "approved" and exp is not None and exp <= now:
        row["status"] = "expired"
    row["topics"] = row.get("topics") or []
    return row


def list_items(
    conn: sa.Connection, *, tenant_id: str, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"{status!r} is not one of {', '.join(STATUSES)}")
    expire_due(conn, tenant_id=tenant_id)
    c = content_items
    q = sa.select(c).where(c.c.tenant_id == tenant_id)
    if status:
        q = q.where(c.c.status == status)
    q = q.order_by(c.c.created_at.desc()).limit(limit)
    return [_effective(dict(r)) for r in conn.execute(q).mappings()]


def expire_due(conn: sa.Connection, *, tenant_id: str, now: dt.datetime | None = None) -> int:
    """Persist ``expired`` for approved items past their expiry (audited as ``system``)."""
    now = now or utcnow()
    c = content_items
    ids = list(
        conn.execute(
            sa.select(c.c.id).where(
                c.c.tenant_id == tenant_id, c.c.status == "approved", c.c.expires_at <= now
            )
        ).scalars()
    )
    for cid in ids:
        conn.execute(c.update().where(c.c.id == cid).values(status="expired", updated_at=now))
        accounts.audit(
            conn=conn,
            tenant_id=tenant_id,
            actor="system",
            action="content.expire",
            object_type="content",
            object_id=cid,
        )
    return len(ids)


def _transition(
    conn: sa.Connection,
    *,
    tenant_id: str,
    item_id: str,
    action: str,
    actor: str,
    values: dict[str, Any],
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    item = get_item(conn, tenant_id=tenant_id, item_id=item_id)
    allowed, target = _TRANSITIONS[action]
    if item["status"] not in allowed:
        raise TransitionError(
            f"status: cannot {action} content {item['key']!r} while it is {item['status']} "
            f"(allowed from: {', '.join(sorted(allowed))}) / 当前状态不允许此操作"
        )
    now = utcnow()
    c = content_items
    res = conn.execute(
        c.update()
        .where(
            c.c.id == item["id"], c.c.status == item["status"] if item["status"] != "expired" else sa.true()
        )
        .values(status=target, updated_at=now, **values)
    )
    if res.rowcount != 1:  # pragma: no cover - a concurrent change
        raise TransitionError(f"status: content {item['key']!r} changed concurrently; try again")
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=f"content.{action}",
        object_type="content",
        object_id=item["id"],
        detail={"from": item["status"], "to": target, **(detail or {})},
    )
    return get_item(conn, tenant_id=tenant_id, item_id=item["id"])


def submit_for_review(conn: sa.Connection, *, tenant_id: str, item_id: str, actor: str) -> dict[str, Any]:
    return _transition(
        conn,
        tenant_id=tenant_id,
        item_id=item_id,
        action="submit",
        actor=actor,
        values={"submitted_at": utcnow(), "submitted_by": actor},
    )


def approve(
    conn: sa.Connection,
    *,
    tenant_id: str,
    item_id: str,
    approval_code: str,
    actor: str,
    actor_role: str,
    expires_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """MLR approval: ``actor`` must have the compliance role and must be neither the author nor the
    person who submitted the item (four-eyes). A new ``expires_at`` must lie in the future; without
    one the item's own expiry applies (an approval is always time-limited)."""
    if actor_role != "compliance":
        exc = MedscrmError(
            f"role: only the compliance role approves content (you are {actor_role!r}) / 仅合规角色可审批"
        )
        exc.code = "role"  # type: ignore[attr-defined]
        raise exc
    code = (approval_code or "").strip()
    if not code or len(code) > 100:
        raise _invalid("approval_code", "required", "the MLR approval code (1–100 characters) is required")
    item = get_item(conn, tenant_id=tenant_id, item_id=item_id)
    if same_person(item["created_by"], actor) or same_person(item.get("submitted_by"), actor):
        did = "wrote" if same_person(item["created_by"], actor) else "submitted"
        exc = MedscrmError(
            f"actor: {actor!r} {did} this item and cannot approve it (four-eyes rule) / "
            "作者或提交人不能审批自己的内容"
        )
        exc.code = "four_eyes"  # type: ignore[attr-defined]
        raise exc
    _aware(expires_at, "expires_at")
    if expires_at is not None and expires_at <= utcnow():
        raise _invalid("expires_at", "past", "the approval's expiry must lie in the future")
    values: dict[str, Any] = {"approval_code": code, "approved_by": actor, "approved_at": utcnow()}
    if expires_at is not None:
        values["expires_at"] = expires_at
    elif item["expires_at"] is None:
        raise _invalid(
            "expires_at", "required", "approved content needs an expiry (MLR approvals are time-limited)"
        )
    return _transition(
        conn,
        tenant_id=tenant_id,
        item_id=item_id,
        action="approve",
        actor=actor,
        values=values,
        detail={"approval_code": code},
    )


def reject(
    conn: sa.Connection, *, tenant_id: str, item_id: str, reason: str, actor: str, actor_role: str
) -> dict[str, Any]:
    if actor_role != "compliance":
        exc = MedscrmError(f"role: only the compliance role reviews content (you are {actor_role!r})")
        exc.code = "role"  # type: ignore[attr-defined]
        raise exc
    if not (reason or "").strip():
        raise _invalid("reason", "required", "say why the item is sent back")
    return _transition(
        conn,
        tenant_id=tenant_id,
        item_id=item_id,
        action="reject",
        actor=actor,
        values={"review_note": reason.strip()},
        detail={"reason": reason.strip()},
    )


def withdraw(
    conn: sa.Connection, *, tenant_id: str, item_id: str, actor: str, reason: str | None = None
) -> dict[str, Any]:
    """Withdraw the item and cancel every pending send of it (returns the item + ``cancelled_sends``)."""
    item = _transition(
        conn,
        tenant_id=tenant_id,
        item_id=item_id,
        action="withdraw",
        actor=actor,
        values={"withdrawn_at": utcnow(), "withdrawn_by": actor, "review_note": reason},
        detail={"reason": reason},
    )
    # the outbox lives in outreach (a higher layer), which cancels the item's pending sends
    results = hooks.emit(
        hooks.CONTENT_WITHDRAWN,
        conn=conn,
        tenant_id=tenant_id,
        content_id=item["id"],
        reason="content_withdrawn",
    )
    item["cancelled_sends"] = sum(n for n in results.values() if isinstance(n, int))
    return item


def sendable_reason(item: dict[str, Any] | None, now: dt.datetime | None, audience: str | None) -> str | None:
    """Why ``item`` may not be sent now to a recipient of kind ``audience`` — None if it may.

    ``audience``: ``verified_hcp``, ``hcp`` (unverified), ``patient``, ``public`` or None (only the
    status and validity window are checked). Codes: content_not_found, content_withdrawn,
    content_expired, content_not_approved, content_not_yet_valid, audience_not_allowed,
    not_verified_hcp."""
    if item is None:
        return "content_not_found"
    now = now or utcnow()
    status = _effective(dict(item), now)["status"]
    if status == "withdrawn":
        return "content_withdrawn"
    if status == "expired":
        return "content_expired"
    if status != "approved":
        return "content_not_approved"
    vf = as_utc(item.get("valid_from"))
    if vf is not None and vf > now:
        return "content_not_yet_valid"
    if audience is None:
        return None
    if audience not in RECIPIENTS:
        raise InvalidInput("audience", f"{audience!r} is not one of {', '.join(RECIPIENTS)}")
    is_hcp = audience in ("verified_hcp", "hcp")
    if item["audience"] == "hcp_only" and not is_hcp:
        return "audience_not_allowed"
    if item["prescription"]:
        if not is_hcp:
            return "audience_not_allowed"
        if audience != "verified_hcp":
            return "not_verified_hcp"
    return None


def is_sendable(
    item: dict[str, Any] | None, now: dt.datetime | None = None, audience: str | None = None
) -> bool:
    """True when ``item`` is approved, inside its validity window and allowed for ``audience``."""
    return sendable_reason(item, now, audience) is None
