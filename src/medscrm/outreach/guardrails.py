"""The checks every send passes, in this order (the first refusal wins):

1. ``person_not_found`` — the person (after merges) must exist and be active;
2. ``processing_restricted`` — the person's processing is restricted (PIPL Art. 44, a data-subject
   request; ``medscrm dsr restrict``) until the restriction is lifted;
   ``do_not_contact`` — the person is on the do-not-contact list;
3. ``no_consent`` — no granted consent for the channel (or ``any``) and the purpose (PIPL);
   webhooks carry only ids to the company's own systems and need no consent;
4. content: ``content_required`` (marketing needs library content), ``content_not_found``,
   ``content_withdrawn``, ``content_expired``, ``content_not_approved``, ``content_not_yet_valid``;
5. audience: ``audience_not_allowed`` (HCP-only or Rx content to a patient/the public),
   ``not_verified_hcp`` (Rx content to an HCP who is not verified, see below);
6. ``no_address`` — no e-mail / phone / WeCom external id (+ the rep's WeCom user) / WeChat openid;
7. ``no_credentials`` — the channel is not configured for the tenant;
8. ``frequency_cap`` — the person already got ``max`` messages on the channel in the window,
   counting every origin (journeys and reps alike);
9. ``quiet_hours`` — not a refusal: the send is queued with ``not_before`` = the end of the quiet
   window (Asia/Shanghai).

**Verified HCP**: a golden record with ``person_type = hcp`` and either a practice-certificate
number (``license_no``, validated as 15 digits by the person schema on import) or an explicit
``hcp_verified`` attribute that is true (set by a verification source, e.g. a register check).

**Proof**: every verdict carries ``checks`` — each check that ran, in order, as ``{"name", "result"
(pass, fail or deferred), "values"}`` with the values it compared — and, where they applied, the
consent change it relied on (:func:`medscrm.outreach.consent.consent_proof`) and the content
approval (code, expiry). ``request_send`` stores them on the send row, blocked or not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from medscrm.common import NotFound, as_utc
from medscrm.content.service import sendable_reason
from medscrm.db.schema import identities, sends
from medscrm.outreach.consent import consent_proof, has_consent, is_dnc
from medscrm.outreach.settings import configured_channels
from medscrm.persons.restrictions import REASON as RESTRICTED_REASON
from medscrm.persons.restrictions import is_restricted
from medscrm.profiles.service import resolve_person_id

CONSENT_CHANNEL = {"email": "email", "sms": "sms", "wecom": "wecom", "wechat_template": "wechat"}
#: send statuses that count against frequency caps
CAPPED_STATUSES = ("queued", "sending", "sent", "delivered", "unknown")
REASONS = (
    "person_not_found",
    "processing_restricted",
    "do_not_contact",
    "no_consent",
    "content_required",
    "content_not_found",
    "content_withdrawn",
    "content_expired",
    "content_not_approved",
    "content_not_yet_valid",
    "audience_not_allowed",
    "not_verified_hcp",
    "no_address",
    "no_credentials",
    "frequency_cap",
    "quiet_hours",
)


def _truthy(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v == 1
    return isinstance(v, str) and v.strip().lower() in {"true", "1", "yes", "y", "是"}


@dataclass
class Verdict:
    ok: bool
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    not_before: dt.datetime | None = None  # quiet hours: deferred, not refused
    address: str | None = None
    sender: str | None = None
    person: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    consent: dict[str, Any] | None = None  # consent_proof() of the consent relied on
    approval: dict[str, Any] | None = None  # {"code", "expires_at"} of the content at the time


def _check(checks: list[dict[str, Any]], name: str, ok: bool, **values: Any) -> bool:
    """Record one check (JSON-ready values) and return ``ok``."""
    checks.append(
        {
            "name": name,
            "result": "pass" if ok else "fail",
            "values": {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in values.items()},
        }
    )
    return ok


def recipient_kind(person: dict[str, Any]) -> str:
    """``verified_hcp``, ``hcp``, ``patient`` or ``public`` (see the module doc)."""
    attrs = person.get("attributes") or {}
    ptype = person.get("person_type") or attrs.get("person_type")
    if ptype == "hcp":
        if attrs.get("license_no") or _truthy(attrs.get("hcp_verified")):
            return "verified_hcp"
        return "hcp"
    if ptype == "patient":
        return "patient"
    return "public"


def _identity(conn: sa.Connection, tenant_id: str, person_id: str, type_: str) -> str | None:
    return conn.execute(
        sa.select(identities.c.value)
        .where(
            identities.c.tenant_id == tenant_id,
            identities.c.person_id == person_id,
            identities.c.type == type_,
        )
        .order_by(identities.c.created_at.desc())
        .limit(1)
    ).scalar()


def resolve_address(
    conn: sa.Connection, *, tenant_id: str, person: dict[str, Any], channel: str, origin: str, variables: dict
) -> tuple[str | None, str | None, str | None]:
    """(address, sender, problem) for the channel."""
    attrs = person.get("attributes") or {}
    pid = person["id"]
    if channel == "email":
        return attrs.get("email"), None, None if attrs.get("email") else "the person has no e-mail address"
    if channel == "sms":
        return attrs.get("phone"), None, None if attrs.get("phone") else "the person has no mobile number"
    if channel == "wecom":
        ext = attrs.get("wecom_external_userid") or _identity(conn, tenant_id, pid, "wecom_external_userid")
        sender = (
            variables.get("sender")
            or attrs.get("rep_userid")
            or attrs.get("owner_rep")
            or (origin.split(":", 1)[1] if origin.startswith("rep:") else None)
        )
        if not ext:
            return None, None, "the person is not a WeCom external contact"
        if not sender:
            return ext, None, "no rep's WeCom account to send from (variables.sender or attribute rep_userid)"
        return ext, str(sender), None
    if channel == "wechat_template":
        openid = attrs.get("wechat_openid") or _identity(conn, tenant_id, pid, "wechat_openid")
        return openid, None, None if openid else "the person has no official-account openid"
    if channel == "webhook":
        return None, None, None
    return None, None, f"unknown channel {channel!r}"


def quiet_until(now: dt.datetime, policy: dict[str, Any]) -> dt.datetime | None:
    """If ``now`` is inside the quiet window, its end (UTC); else None."""
    qh = policy.get("quiet_hours") or {}
    if not qh.get("start") or not qh.get("end"):
        return None
    tz = ZoneInfo(qh.get("timezone") or "Asia/Shanghai")
    local = now.astimezone(tz)
    sh, sm = map(int, qh["start"].split(":"))
    eh, em = map(int, qh["end"].split(":"))
    start, end = dt.time(sh, sm), dt.time(eh, em)
    t = local.time()
    if start == end:
        return None
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date()
    if start > end and t >= start:  # crosses midnight: the window ends tomorrow
        end_day += dt.timedelta(days=1)
    return dt.datetime.combine(end_day, end, tzinfo=tz).astimezone(dt.UTC)


def cap_violation(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    channel: str,
    purpose: str,
    policy: dict[str, Any],
    now: dt.datetime,
    exclude_send_id: str | None = None,
) -> dict[str, Any] | None:
    """The first cap the person is at (``{max, hours, count}``), or None."""
    for cap in cap_counts(
        conn,
        tenant_id=tenant_id,
        person_id=person_id,
        channel=channel,
        purpose=purpose,
        policy=policy,
        now=now,
        exclude_send_id=exclude_send_id,
    ):
        if cap["count"] >= cap["max"]:
            return cap
    return None


def cap_counts(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    channel: str,
    purpose: str,
    policy: dict[str, Any],
    now: dt.datetime,
    exclude_send_id: str | None = None,
) -> list[dict[str, Any]]:
    """Each frequency cap of the channel with the person's count in its window
    (``[{max, hours, count}]``; empty when uncapped or the purpose is exempt)."""
    if purpose in (policy.get("cap_exempt_purposes") or []):
        return []
    caps = (policy.get("frequency_caps") or {}).get(channel) or []
    if not caps:
        return []
    if conn.dialect.name == "postgresql":  # serialise concurrent requests for the same person+channel
        conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{tenant_id}:{person_id}:{channel}")))
        )
    longest = max(c["hours"] for c in caps)
    s = sends
    q = sa.select(s.c.created_at).where(
        s.c.tenant_id == tenant_id,
        s.c.person_id == person_id,
        s.c.channel == channel,
        s.c.status.in_(CAPPED_STATUSES),
        s.c.created_at >= now - dt.timedelta(hours=longest),
        s.c.purpose.notin_(policy.get("cap_exempt_purposes") or ["-"]),
    )
    if exclude_send_id:
        q = q.where(s.c.id != exclude_send_id)
    times = [as_utc(t) for t in conn.execute(q).scalars()]
    out = []
    for cap in caps:
        since = now - dt.timedelta(hours=cap["hours"])
        out.append({"max": cap["max"], "hours": cap["hours"], "count": sum(1 for t in times if t >= since)})
    return out


def evaluate(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person: dict[str, Any] | None,
    channel: str,
    purpose: str,
    origin: str,
    content: dict[str, Any] | None,
    content_id: str | None,
    variables: dict[str, Any],
    policy: dict[str, Any],
    now: dt.datetime,
    check_caps: bool = True,
    exclude_send_id: str | None = None,
) -> Verdict:
    checks: list[dict[str, Any]] = []

    def refuse(reason: str, detail: dict[str, Any] | None = None, **kw: Any) -> Verdict:
        return Verdict(False, reason, detail or {}, checks=checks, **kw)

    if not _check(
        checks,
        "person",
        person is not None and person.get("status") in (None, "active"),
        status=(person or {}).get("status", "not_found"),
    ):
        return refuse("person_not_found", {"status": person.get("status")} if person else None)
    assert person is not None
    pid = person["id"]
    if not _check(checks, "processing", not is_restricted(conn, tenant_id=tenant_id, person_id=pid)):
        return refuse(RESTRICTED_REASON, {"why": "processing restricted by a data-subject request"})
    if not _check(checks, "do_not_contact", not is_dnc(conn, tenant_id=tenant_id, person_id=pid)):
        return refuse("do_not_contact")
    cch = CONSENT_CHANNEL.get(channel)
    consent = None
    if cch:
        granted = has_consent(conn, tenant_id=tenant_id, person_id=pid, channel=cch, purpose=purpose)
        consent = consent_proof(conn, tenant_id=tenant_id, person_id=pid, channel=cch, purpose=purpose)
        if not _check(
            checks,
            "consent",
            granted,
            channel=cch,
            purpose=purpose,
            status=(consent or {}).get("status"),
            version=(consent or {}).get("version"),
        ):
            return refuse("no_consent", {"channel": cch, "purpose": purpose}, consent=consent)
    approval = None
    if content_id is None:
        if channel != "webhook" and purpose != "service":
            _check(checks, "content_approval", False, content_id=None, purpose=purpose)
            return refuse(
                "content_required",
                {"why": "messages other than service notices need approved library content"},
                consent=consent,
            )
    else:
        if content:
            approval = {"code": content.get("approval_code"), "expires_at": as_utc(content.get("expires_at"))}
        why = sendable_reason(content, now, None)
        _check(
            checks,
            "content_approval",
            why is None,
            content_id=content_id,
            status=(content or {}).get("status"),
            approval_code=(approval or {}).get("code"),
            expires_at=(approval or {}).get("expires_at"),
            now=now,
        )
        recipient = recipient_kind(person)
        if why is None:
            why = sendable_reason(content, now, recipient)
            _check(
                checks,
                "audience",
                why is None,
                content_audience=(content or {}).get("audience"),
                prescription=(content or {}).get("prescription"),
                recipient=recipient,
            )
        if why:
            detail = {"content_id": content_id}
            if content:
                detail.update(
                    status=content["status"],
                    audience=content["audience"],
                    prescription=content["prescription"],
                )
            detail["recipient"] = recipient
            return refuse(why, detail, content=content, consent=consent, approval=approval)
    address, sender, problem = resolve_address(
        conn, tenant_id=tenant_id, person=person, channel=channel, origin=origin, variables=variables
    )
    if not _check(checks, "address", not problem, channel=channel):
        return refuse("no_address", {"why": problem}, consent=consent, approval=approval)
    if not _check(
        checks, "credentials", channel in configured_channels(conn, tenant_id=tenant_id), channel=channel
    ):
        return refuse(
            "no_credentials",
            {"why": f"channel {channel} is not configured for this tenant"},
            consent=consent,
            approval=approval,
        )
    if check_caps:
        counts = cap_counts(
            conn,
            tenant_id=tenant_id,
            person_id=pid,
            channel=channel,
            purpose=purpose,
            policy=policy,
            now=now,
            exclude_send_id=exclude_send_id,
        )
        over = next((c for c in counts if c["count"] >= c["max"]), None)
        if not _check(checks, "frequency_cap", over is None, caps=counts, purpose=purpose):
            return refuse("frequency_cap", dict(over or {}), consent=consent, approval=approval)
    v = Verdict(
        True,
        address=address,
        sender=sender,
        person=person,
        content=content,
        checks=checks,
        consent=consent,
        approval=approval,
    )
    qu = quiet_until(now, policy)
    qh = policy.get("quiet_hours") or {}
    _check(
        checks,
        "quiet_hours",
        True,
        now=now,
        start=qh.get("start"),
        end=qh.get("end"),
        timezone=qh.get("timezone") or "Asia/Shanghai",
        until=qu,
    )
    if qu is not None:
        checks[-1]["result"] = "deferred"
        v.reason, v.not_before, v.detail = "quiet_hours", qu, {"until": qu.isoformat()}
    return v


def load_person(conn: sa.Connection, tenant_id: str, person_id: str) -> dict[str, Any] | None:
    try:
        return resolve_person_id(conn, tenant_id, person_id)
    except NotFound:
        return None
