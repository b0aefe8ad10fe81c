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
from medscrm.outreach.consent import has_consent, is_dnc
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
    if purpose in (policy.get("cap_exempt_purposes") or []):
        return None
    caps = (policy.get("frequency_caps") or {}).get(channel) or []
    if not caps:
        return None
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
    for cap in caps:
        since = now - dt.timedelta(hours=cap["hours"])
        n = sum(1 for t in times if t >= since)
        if n >= cap["max"]:
            return {"max": cap["max"], "hours": cap["hours"], "count": n}
    return None


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
    if person is None:
        return Verdict(False, "person_not_found")
    pid = person["id"]
    if person.get("status") not in (None, "active"):
        return Verdict(False, "person_not_found", {"status": person.get("status")})
    if is_restricted(conn, tenant_id=tenant_id, person_id=pid):
        return Verdict(False, RESTRICTED_REASON, {"why": "processing restricted by a data-subject request"})
    if is_dnc(conn, tenant_id=tenant_id, person_id=pid):
        return Verdict(False, "do_not_contact")
    cch = CONSENT_CHANNEL.get(channel)
    if cch and not has_consent(conn, tenant_id=tenant_id, person_id=pid, channel=cch, purpose=purpose):
        return Verdict(False, "no_consent", {"channel": cch, "purpose": purpose})
    if content_id is None:
        if channel != "webhook" and purpose != "service":
            return Verdict(
                False,
                "content_required",
                {"why": "messages other than service notices need approved library content"},
            )
    else:
        why = sendable_reason(content, now, recipient_kind(person))
        if why:
            detail = {"content_id": content_id}
            if content:
                detail.update(
                    status=content["status"],
                    audience=content["audience"],
                    prescription=content["prescription"],
                )
            detail["recipient"] = recipient_kind(person)
            return Verdict(False, why, detail, content=content)
    address, sender, problem = resolve_address(
        conn, tenant_id=tenant_id, person=person, channel=channel, origin=origin, variables=variables
    )
    if problem:
        return Verdict(False, "no_address", {"why": problem})
    if channel not in configured_channels(conn, tenant_id=tenant_id):
        return Verdict(
            False, "no_credentials", {"why": f"channel {channel} is not configured for this tenant"}
        )
    if check_caps:
        cap = cap_violation(
            conn,
            tenant_id=tenant_id,
            person_id=pid,
            channel=channel,
            purpose=purpose,
            policy=policy,
            now=now,
            exclude_send_id=exclude_send_id,
        )
        if cap:
            return Verdict(False, "frequency_cap", cap)
    v = Verdict(True, address=address, sender=sender, person=person, content=content)
    qu = quiet_until(now, policy)
    if qu is not None:
        v.reason, v.not_before, v.detail = "quiet_hours", qu, {"until": qu.isoformat()}
    return v


def load_person(conn: sa.Connection, tenant_id: str, person_id: str) -> dict[str, Any] | None:
    try:
        return resolve_person_id(conn, tenant_id, person_id)
    except NotFound:
        return None
