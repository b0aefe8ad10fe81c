"""Consents per person, channel and purpose (PIPL) and do-not-contact.

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

import datetime as dt
import hashlib
import json
from typing import Any, NamedTuple

import sqlalchemy as sa

from medscrm import hooks
from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound, as_utc, new_id, utcnow
from medscrm.db.schema import consent_history, consents, persons, persons_dnc, sends

CHANNELS = ("email", "sms", "wecom", "wechat", "phone", "any")
PURPOSES = ("marketing", "medical_info", "survey", "service")
STATUSES = ("granted", "withdrawn")


def _check(channel: str, purpose: str) -> None:
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        raise InvalidInput("purpose", f"{purpose!r} is not one of {', '.join(PURPOSES)}")


def _person_exists(conn: sa.Connection, tenant_id: str, person_id: str) -> str:
    """The id a consent or do-not-contact change for ``person_id`` belongs to: the person itself, or
    for a person merged away, the survivor (a withdrawal that names an old id, e.g. from a reply
    matched to an old record, must still stop the messages)."""
    p = persons
    pid = person_id
    for _ in range(10):
        row = conn.execute(
            sa.select(p.c.status, p.c.merged_into).where(p.c.tenant_id == tenant_id, p.c.id == pid)
        ).first()
        if row is None:
            break
        if row.status != "merged" or not row.merged_into:
            return pid
        pid = row.merged_into
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


def consent_proof(
    conn: sa.Connection, *, tenant_id: str, person_id: str, channel: str, purpose: str
) -> dict[str, Any] | None:
    """The consent change a send to ``channel``/``purpose`` relies on — the latest history row of the
    row that decides (the channel's own, else ``any``, as :func:`has_consent`) — with its version (the
    how-many-th change of that consent) and a SHA-256 of what the person agreed to (status, source,
    evidence, when); None when no history row exists."""
    _check(channel, purpose)
    c = consents
    decided = dict(
        conn.execute(
            sa.select(c.c.channel, c.c.status).where(
                c.c.tenant_id == tenant_id,
                c.c.person_id == person_id,
                c.c.purpose == purpose,
                c.c.channel.in_({channel, "any"}),
            )
        ).all()
    )
    which = channel if channel in decided else "any" if "any" in decided else channel
    h = consent_history
    rows = (
        conn.execute(
            sa.select(h)
            .where(
                h.c.tenant_id == tenant_id,
                h.c.person_id == person_id,
                h.c.channel == which,
                h.c.purpose == purpose,
            )
            .order_by(h.c.changed_at, h.c.id)
        )
        .mappings()
        .all()
    )
    if not rows:
        return None
    last = rows[-1]
    agreed = {
        "person_id": person_id,
        "channel": which,
        "purpose": purpose,
        "status": last["new_status"],
        "source": last["source"],
        "evidence": last["evidence"],
        "changed_at": as_utc(last["changed_at"]).isoformat(),
    }
    digest = hashlib.sha256(json.dumps(agreed, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "history_id": last["id"],
        "version": len(rows),
        "hash": digest,
        "channel": which,
        "status": last["new_status"],
    }


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
    person_id = _person_exists(conn, tenant_id, person_id)
    c = consents
    old = conn.execute(
        sa.select(c.c.status).where(
            c.c.tenant_id == tenant_id,
            c.c.person_id == person_id,
            c.c.channel == channel,
            c.c.purpose == purpose,
        )
    ).scalar()
    now = utcnow()
    _write(conn, tenant_id, person_id, channel, purpose, old, status, source, evidence, actor, now, now)


def _write(
    conn: sa.Connection,
    tenant_id: str,
    person_id: str,
    channel: str,
    purpose: str,
    old: str | None,
    status: str,
    source: str,
    evidence: Any,
    actor: str,
    now: dt.datetime,
    decided_at: dt.datetime,
    **detail: Any,
) -> None:
    """The consent row (inserted where ``old`` is None, else updated; ``updated_at`` = when the person
    decided), its history row and its audit row."""
    c = consents
    values = {"status": status, "source": source, "evidence": evidence, "updated_at": decided_at}
    if old is None:
        conn.execute(
            c.insert().values(
                tenant_id=tenant_id, person_id=person_id, channel=channel, purpose=purpose, **values
            )
        )
    else:
        conn.execute(
            c.update()
            .where(
                c.c.tenant_id == tenant_id,
                c.c.person_id == person_id,
                c.c.channel == channel,
                c.c.purpose == purpose,
            )
            .values(**values)
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
    hooks.emit(
        hooks.CONSENT_CHANGED,
        conn=conn,
        tenant_id=tenant_id,
        changes=[
            {
                "kind": "consent",
                "person_id": person_id,
                "channel": channel,
                "purpose": purpose,
                "from": old,
                "to": status,
                "source": source,
                "actor": actor,
                "at": decided_at,
            }
        ],
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=f"consent.{'grant' if status == 'granted' else 'withdraw'}",
        object_type="person",
        object_id=person_id,
        detail={
            "channel": channel,
            "purpose": purpose,
            "from": old,
            "to": status,
            "source": source,
            **detail,
        },
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
    person_id = _person_exists(conn, tenant_id, person_id)
    if is_dnc(conn, tenant_id=tenant_id, person_id=person_id):
        return
    _add_dnc(conn, tenant_id, person_id, reason.strip(), actor, utcnow())


def _add_dnc(
    conn: sa.Connection,
    tenant_id: str,
    person_id: str,
    reason: str,
    actor: str,
    now: dt.datetime,
    **detail: Any,
) -> None:
    """The do-not-contact row and its audit row."""
    conn.execute(
        persons_dnc.insert().values(
            tenant_id=tenant_id, person_id=person_id, reason=reason, created_at=now, created_by=actor
        )
    )
    _dnc_changed(conn, tenant_id, person_id, True, reason, actor, now)
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="dnc.add",
        object_type="person",
        object_id=person_id,
        detail={"reason": reason, **detail},
    )


def _dnc_changed(
    conn: sa.Connection, tenant_id: str, person_id: str, on: bool, reason: str | None, actor: str, now
) -> None:
    hooks.emit(
        hooks.CONSENT_CHANGED,
        conn=conn,
        tenant_id=tenant_id,
        changes=[
            {"kind": "dnc", "person_id": person_id, "dnc": on, "reason": reason, "actor": actor, "at": now}
        ],
    )


def clear_dnc(conn: sa.Connection, *, tenant_id: str, person_id: str, actor: str) -> bool:
    d = persons_dnc
    res = conn.execute(d.delete().where(d.c.tenant_id == tenant_id, d.c.person_id == person_id))
    if res.rowcount:
        _dnc_changed(conn, tenant_id, person_id, False, None, actor, utcnow())
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


# --- merges and splits ---------------------------------------------------------------------------
def carry_over(
    conn: sa.Connection,
    *,
    tenant_id: str,
    merged: dict[str, str] | None = None,
    split: dict[str, list[str]] | None = None,
    now: Any = None,
    actor: str = "identity",
) -> dict[str, int]:
    """What persons that stop existing said about contact goes to the persons that carry on.

    ``merged``: retired person id → its survivor; ``split``: person id → the persons its records
    went to (itself among them when it kept its id). Runs on the ``persons.merged`` event that both
    identity paths (full run and incremental) emit in the transaction that retires the old persons; consent and do-not-contact are read by person id, so without this a withdrawal
    or a do-not-contact of a record merged into another person was silently lost (PIPL Art. 15).

    * **merge**: per (channel, purpose) the person's latest decision wins (the old row replaces the
      survivor's when it is more recent; ``updated_at`` keeps the time of the decision);
    * **split**: only withdrawals go to every new person (a grant of one of them is no grant of the
      others; a withdrawal is kept where it might apply);
    * do-not-contact goes to every person the old one became;
    * every change gets a ``consent_history`` row (source ``merge``/``split``, the old person in the
      evidence) and an audit row, as any consent change.

    * a merged person's sends move to the survivor (frequency caps count them; the survivor's rep
      sees them); a split person's stay where they are (to whom they went is not known);
    (Journey enrollments follow the merge in the journeys layer, subscribed to the same
    ``persons.merged`` event.)

    Returns ``{"consents", "dnc", "sends"}``: rows written or moved."""
    now = now or utcnow()
    moves = {old: [surv] for old, surv in (merged or {}).items() if surv and surv != old}
    splits = {old for old, t in (split or {}).items() if set(t) - {old}}
    for old in splits:
        moves[old] = sorted(set(split[old]) - {old})  # type: ignore[index]
    if not moves:
        return {"consents": 0, "dnc": 0, "sends": 0}
    c, d = consents, persons_dnc
    olds = sorted(moves)
    targets = sorted({t for ts in moves.values() for t in ts})
    cols = (c.c.person_id, c.c.channel, c.c.purpose, c.c.status, c.c.source, c.c.evidence, c.c.updated_at)
    old_rows = conn.execute(sa.select(*cols).where(c.c.tenant_id == tenant_id, c.c.person_id.in_(olds))).all()
    cur = {
        (r.person_id, r.channel, r.purpose): _Cur(r.status, r.updated_at)
        for r in conn.execute(
            sa.select(*cols).where(c.c.tenant_id == tenant_id, c.c.person_id.in_(targets))
        ).all()
    }
    written = 0
    for r in sorted(old_rows, key=lambda r: (as_utc(r.updated_at), r.person_id)):  # oldest first
        is_split = r.person_id in splits
        if is_split and r.status != "withdrawn":
            continue
        for t in moves[r.person_id]:
            key = (t, r.channel, r.purpose)
            have = cur.get(key)
            if have is not None and (
                have.status == r.status or as_utc(have.updated_at) > as_utc(r.updated_at)
            ):
                continue
            source = "split" if is_split else "merge"
            evidence = {"from_person": r.person_id, "source": r.source, "evidence": r.evidence}
            old = have.status if have is not None else None
            _write(
                conn, tenant_id, t, r.channel, r.purpose, old, r.status, source, evidence, actor, now,
                r.updated_at, from_person=r.person_id,
            )  # fmt: skip
            cur[key] = _Cur(r.status, r.updated_at)
            written += 1
    dnc_written = 0
    blocked = set(
        conn.execute(
            sa.select(d.c.person_id).where(d.c.tenant_id == tenant_id, d.c.person_id.in_(targets))
        ).scalars()
    )
    for r in conn.execute(
        sa.select(d.c.person_id, d.c.reason).where(d.c.tenant_id == tenant_id, d.c.person_id.in_(olds))
    ).all():
        for t in moves[r.person_id]:
            if t in blocked:
                continue
            reason = f"{r.reason} (carried over from {r.person_id} · 由 {r.person_id} 合并/拆分带入)"
            _add_dnc(conn, tenant_id, t, reason, actor, now, from_person=r.person_id)
            blocked.add(t)
            dnc_written += 1
    # a merged person's sends are the survivor's: its frequency caps count them, its rep sees them
    resent = 0
    for old, ts in moves.items():
        if old not in splits:
            res = conn.execute(
                sends.update()
                .where(sends.c.tenant_id == tenant_id, sends.c.person_id == old)
                .values(person_id=ts[0])
            )
            resent += max(res.rowcount or 0, 0)
    return {"consents": written, "dnc": dnc_written, "sends": resent}


@hooks.subscribe(hooks.PERSONS_MERGED, "outreach.consent")
def _on_persons_merged(
    conn: sa.Connection,
    *,
    tenant_id: str,
    merged: dict[str, str],
    split: dict[str, list[str]],
    now: dt.datetime,
    actor: str,
) -> dict[str, int]:
    return carry_over(conn, tenant_id=tenant_id, merged=merged, split=split, now=now, actor=actor)


class _Cur(NamedTuple):
    status: str
    updated_at: Any
