"""Consents per person, channel and purpose (PIPL) and do-not-contact (contract C2).

PIPL needs consent per purpose (Art. 14), withdrawal as easy as giving it (Art. 15) and an easy
opt-out of automated marketing (Art. 24). The model:

* a row per (person, channel, purpose) with status ``granted`` or ``withdrawn``;
* channel ``any`` applies to every channel without a row of its own: a channel's own row wins, so
  "any/marketing granted" + "sms/marketing withdrawn" means e-mail yes, SMS no;
* no row means **no consent** (opt-in);
* every change is kept in ``consent_history`` and audited;
* do-not-contact (``persons_dnc``) overrides every consent.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound, new_id, utcnow
from medscrm.db.schema import consent_history, consents, persons, persons_dnc

CHANNELS = ("email", "sms", "wecom", "wechat", "phone", "any")
PURPOSES = ("marketing", "medical_info", "survey", "service")
STATUSES = ("granted", "withdrawn")


def _check(channel: str, purpose: str) -> None:
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        raise InvalidInput("purpose", f"{purpose!r} is not one of {', '.join(PURPOSES)}")


def _person_exists(conn: sa.Connection, tenant_id: str, person_id: str) -> None:
    if not conn.execute(
        sa.select(persons.c.id).where(persons.c.tenant_id == tenant_id, persons.c.id == person_id)
    ).first():
        raise NotFound(f"person_id: person {person_id!r} not found in this tenant")


def has_consent(conn: sa.Connection, *, tenant_id: str, person_id: str, channel: str, purpose: str) -> bool:
    """The channel's own row if there is one, else the ``any`` row; no row = no consent."""
    _check(channel, purpose)
    c = consents
    rows = dict(
        conn.execute(
            sa.select(c.c.channel, c.c.status).where(
                c.c.tenant_id == tenant_id,
                c.c.person_id == person_id,
                c.c.purpose == purpose,
                c.c.channel.in_({channel, "any"}),
            )
        ).all()
    )
    status = rows.get(channel) or rows.get("any")
    return status == "granted"


def list_consents(conn: sa.Connection, *, tenant_id: str, person_id: str) -> list[dict[str, Any]]:
    c = consents
    q = (
        sa.select(c)
        .where(c.c.tenant_id == tenant_id, c.c.person_id == person_id)
        .order_by(c.c.channel, c.c.purpose)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def consent_log(
    conn: sa.Connection, *, tenant_id: str, person_id: str, limit: int = 200
) -> list[dict[str, Any]]:
    h = consent_history
    q = (
        sa.select(h)
        .where(h.c.tenant_id == tenant_id, h.c.person_id == person_id)
        .order_by(h.c.changed_at.desc(), h.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def set_consent(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    channel: str,
    purpose: str,
    status: str,
    source: str,
    evidence: dict[str, Any] | None = None,
    actor: str,
) -> None:
    """Grant or withdraw; keeps history and audits. Withdrawal takes effect for every later send
    (queued sends are re-checked by the dispatcher)."""
    _check(channel, purpose)
    if status not in STATUSES:
        raise InvalidInput("status", f"{status!r} is not one of {', '.join(STATUSES)}")
    if not (source or "").strip() or len(source) > 64:
        raise InvalidInput("source", "say where the consent came from (1–64 characters), e.g. webinar_form")
    _person_exists(conn, tenant_id, person_id)
    c = consents
    now = utcnow()
    where = (
        c.c.tenant_id == tenant_id,
        c.c.person_id == person_id,
        c.c.channel == channel,
        c.c.purpose == purpose,
    )
    old = conn.execute(sa.select(c.c.status).where(*where)).scalar()
    if old is None:
        conn.execute(
            c.insert().values(
                tenant_id=tenant_id,
                person_id=person_id,
                channel=channel,
                purpose=purpose,
                status=status,
                source=source,
                evidence=evidence,
                updated_at=now,
            )
        )
    else:
        conn.execute(
            c.update().where(*where).values(status=status, source=source, evidence=evidence, updated_at=now)
        )
    conn.execute(
        consent_history.insert().values(
            id=new_id("cns"),
            tenant_id=tenant_id,
            person_id=person_id,
            channel=channel,
            purpose=purpose,
            old_status=old,
            new_status=status,
            source=source,
            evidence=evidence,
            actor=actor,
            changed_at=now,
        )
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=f"consent.{'grant' if status == 'granted' else 'withdraw'}",
        object_type="person",
        object_id=person_id,
        detail={"channel": channel, "purpose": purpose, "from": old, "to": status, "source": source},
    )


# --- do-not-contact --------------------------------------------------------------------------
def is_dnc(conn: sa.Connection, *, tenant_id: str, person_id: str) -> bool:
    d = persons_dnc
    return (
        conn.execute(
            sa.select(d.c.person_id).where(d.c.tenant_id == tenant_id, d.c.person_id == person_id)
        ).first()
        is not None
    )


def set_dnc(conn: sa.Connection, *, tenant_id: str, person_id: str, reason: str, actor: str) -> None:
    if not (reason or "").strip():
        raise InvalidInput("reason", "say why the person must not be contacted")
    _person_exists(conn, tenant_id, person_id)
    if is_dnc(conn, tenant_id=tenant_id, person_id=person_id):
        return
    conn.execute(
        persons_dnc.insert().values(
            tenant_id=tenant_id,
            person_id=person_id,
            reason=reason.strip(),
            created_at=utcnow(),
            created_by=actor,
        )
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="dnc.add",
        object_type="person",
        object_id=person_id,
        detail={"reason": reason.strip()},
    )


def clear_dnc(conn: sa.Connection, *, tenant_id: str, person_id: str, actor: str) -> bool:
    d = persons_dnc
    res = conn.execute(d.delete().where(d.c.tenant_id == tenant_id, d.c.person_id == person_id))
    if res.rowcount:
        accounts.audit(
            conn=conn,
            tenant_id=tenant_id,
            actor=actor,
            action="dnc.remove",
            object_type="person",
            object_id=person_id,
        )
    return bool(res.rowcount)


def get_dnc(conn: sa.Connection, *, tenant_id: str, person_id: str) -> dict[str, Any] | None:
    d = persons_dnc
    row = (
        conn.execute(sa.select(d).where(d.c.tenant_id == tenant_id, d.c.person_id == person_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None
