"""Who sees what: which persons a user may see (rep scope), which personal data they see in clear
(PII masking) and which events they see at all (prescription events). The API, the console and the
exports all ask this module, so the three agree.

**Rep scope.** A rep sees only the HCPs they own. There is no ownership table, so ownership is
derived from what the sources say (nothing new is stored):

* CRM exports carry the owning rep per HCP (``负责代表`` → custom attribute ``owner_rep``: the rep's
  name or WeCom userid);
* WeCom external-contact exports carry the rep who added the contact (``rep_userid``);
* the WeCom callback API records ``identity_links`` ``wecom_contact_of`` (external userid ↔ rep's
  ``wecom_user``), which reach the person through their ``wecom_external_userid`` identity.

A console user of role ``rep`` is matched to these values by **username = WeCom userid** and/or
**display name = the rep's name** (``medscrm users create LiuJun --role rep --display-name 刘军``).

**PII.** Phone, e-mail, licence, WeChat/WeCom ids (and office phone, WeChat openid, the rep's
remark) are readable in clear only with ``pii.read``; per-HCP prescription attributes and events
only with ``prescriptions.read`` (医药代表备案管理办法 2020).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medscrm.accounts.roles import can
from medscrm.common import NotFound
from medscrm.db.schema import identities, identity_links, person_records, persons, source_records

#: roles that see only the persons they own
SCOPED_ROLES = frozenset({"rep"})


# --- personal data --------------------------------------------------------------------------------
def mask_phone(value: str | None) -> str | None:
    """+8613800138000 -> +86138****8000."""
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:-8] + "****" + value[-4:]


def mask_email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return value
    local, _, domain = value.partition("@")
    return (local[:1] + "***@" + domain) if local else "***@" + domain


PII_IDENTITY_TYPES = {"phone", "email", "license_no", "wechat_unionid", "wecom_external_userid"}
#: attributes a rep may never see: per-HCP prescription volume (医药代表备案管理办法 2020)
PRESCRIPTION_ATTRIBUTES = ("rx_volume", "prescriptions", "prescription_volume", "处方量")
#: custom attributes shown as ``***`` to roles without PII rights (office phone, WeChat openid, the
#: rep's free-text remark, which often holds a mobile number); the API and the console agree
EXTRA_PII = ("office_phone", "wechat_openid", "rep_remark")


def mask_value(kind: str, value: Any) -> Any:
    """A PII value of ``kind`` (phone, email, an id) masked for display."""
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if isinstance(value, str) and len(value) > 6:
        return value[:3] + "***" + value[-2:]
    return "***"


def visible_attributes(attrs: dict[str, Any], role: str) -> dict[str, Any]:
    """Person attributes as ``role`` may see them: PII masked without ``pii.read``, prescription
    attributes removed without ``prescriptions.read``."""
    out = dict(attrs)
    if not can(role, "pii.read"):
        for k in ("phone", "email", "license_no", "wechat_unionid", "wecom_external_userid"):
            if out.get(k):
                out[k] = mask_value(k, out[k])
        for k in EXTRA_PII:
            if out.get(k):
                out[k] = "***"
    if not can(role, "prescriptions.read"):
        for k in PRESCRIPTION_ATTRIBUTES:
            out.pop(k, None)
    return out


#: events that reveal an HCP's prescribing: hidden from roles without ``prescriptions.read`` (reps)
PRESCRIPTION_EVENTS = ("Prescription Intent",)


#: event context fields that identify a network or a device (personal information under PIPL):
#: shown masked to roles without PII rights, as phone numbers are
CONTEXT_PII = ("ip",)
DEVICE_PII = ("id", "advertisingId", "token")


def redact_event(row: dict[str, Any], role: str) -> dict[str, Any]:
    """A stored event as ``role`` may see it: without ``prescriptions.read`` no prescription
    properties; without ``pii.read`` traits and properties masked like profile attributes (phone,
    e-mail, licence, WeChat ids, …) and the context's IP address, device ids and traits masked."""
    out = dict(row)
    for col in ("properties", "traits"):
        if isinstance(out.get(col), dict):
            out[col] = visible_attributes(out[col], role)
    ctx = out.get("context")
    if isinstance(ctx, dict) and not can(role, "pii.read"):
        ctx = dict(ctx)
        for k in CONTEXT_PII:
            if ctx.get(k):
                ctx[k] = mask_value(k, str(ctx[k]))
        if isinstance(ctx.get("device"), dict):
            ctx["device"] = {k: ("***" if k in DEVICE_PII and v else v) for k, v in ctx["device"].items()}
        if isinstance(ctx.get("traits"), dict):
            ctx["traits"] = visible_attributes(ctx["traits"], role)
        out["context"] = ctx
    return out


def hidden_events(role: str) -> tuple[str, ...]:
    """Event names ``role`` never sees (prescription events without ``prescriptions.read``)."""
    return () if can(role, "prescriptions.read") else PRESCRIPTION_EVENTS


# --- rep scope ------------------------------------------------------------------------------------
OWNER_ATTRIBUTES = ("owner_rep", "rep_userid")


def rep_keys(user: dict[str, Any]) -> list[str]:
    """The values that name this rep in the sources."""
    keys = {user.get("username"), user.get("display_name")}
    return sorted(k for k in keys if k)


def owned_person_ids(tenant_id: str, user: dict[str, Any]) -> sa.Select:
    """A SELECT of the person ids the rep owns (use with ``persons.c.id.in_(...)``)."""
    keys = rep_keys(user)
    sr, pr = source_records, person_records
    by_records = (
        sa.select(pr.c.person_id)
        .join(sr, sa.and_(sr.c.tenant_id == pr.c.tenant_id, sr.c.id == pr.c.source_record_id))
        .where(
            pr.c.tenant_id == tenant_id,
            sa.or_(*[sr.c.attributes[a].as_string().in_(keys) for a in OWNER_ATTRIBUTES]),
        )
    )
    il, idn = identity_links, identities
    by_links = (
        sa.select(idn.c.person_id)
        .join(
            il,
            sa.and_(
                il.c.tenant_id == idn.c.tenant_id,
                il.c.type_a == idn.c.type,
                il.c.value_a == idn.c.value,
            ),
        )
        .where(
            idn.c.tenant_id == tenant_id,
            il.c.relation == "wecom_contact_of",
            il.c.type_a == "wecom_external_userid",
            il.c.value_b.in_(keys),
        )
    )
    return sa.union(by_records, by_links)


def owners_of(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    records: list[dict[str, Any]] | None = None,
    links: bool = True,
) -> list[dict[str, str]]:
    """The reps named as owners of a person, with where each one comes from.

    ``records``: the person's source records with their ``attributes`` if the caller has read them;
    ``links=False`` skips the WeCom-link lookup (the person has no WeCom external-contact identity)."""
    sr, pr = source_records, person_records
    out: dict[str, set[str]] = {}
    if records is None:
        records = [
            {"attributes": a}
            for (a,) in conn.execute(
                sa.select(sr.c.attributes).where(
                    sr.c.tenant_id == tenant_id,
                    sr.c.id.in_(
                        sa.select(pr.c.source_record_id).where(
                            pr.c.tenant_id == tenant_id, pr.c.person_id == person_id
                        )
                    ),
                )
            )
        ]
    for rec in records:
        attrs = rec.get("attributes") or {}
        for attr in OWNER_ATTRIBUTES:
            if attrs.get(attr):
                out.setdefault(str(attrs[attr]), set()).add(attr)
    il, idn = identity_links, identities
    if not links:
        return [{"rep": k, "via": ", ".join(sorted(v))} for k, v in sorted(out.items())]
    for (rep,) in conn.execute(
        sa.select(il.c.value_b)
        .join(
            idn,
            sa.and_(
                il.c.tenant_id == idn.c.tenant_id, il.c.type_a == idn.c.type, il.c.value_a == idn.c.value
            ),
        )
        .where(
            idn.c.tenant_id == tenant_id,
            idn.c.person_id == person_id,
            il.c.relation == "wecom_contact_of",
        )
    ):
        out.setdefault(rep, set()).add("wecom_contact_of")
    return [{"rep": k, "via": ", ".join(sorted(v))} for k, v in sorted(out.items())]


def person_scope(tenant_id: str, role: str, user: dict[str, Any] | None) -> sa.Select | None:
    """A SELECT of the person ids a user of ``role`` may see (use with ``.in_()``); None: the whole
    tenant. A rep sees the HCPs they own (:func:`owned_person_ids`), matched by the username /
    display name of ``user``; a rep with no user behind it (or one that names nobody) owns nobody."""
    if role not in SCOPED_ROLES:
        return None
    if not rep_keys(user or {}):
        return sa.select(persons.c.id).where(sa.false())
    return owned_person_ids(tenant_id, user or {})


def resolve_person_id(conn: sa.Connection, tenant_id: str, person_id: str) -> dict[str, Any]:
    """The person row; a merged person id redirects to the survivor."""
    for _ in range(10):
        row = (
            conn.execute(
                sa.select(persons).where(persons.c.tenant_id == tenant_id, persons.c.id == person_id)
            )
            .mappings()
            .first()
        )
        if not row:
            raise NotFound(f"person {person_id!r} not found")
        if row["status"] != "merged" or not row["merged_into"]:
            return dict(row)
        person_id = row["merged_into"]
    raise NotFound(f"person {person_id!r}: merge chain too long")


def visible_person_id(conn: sa.Connection, *, tenant_id: str, scope: sa.Select | None, person_id: str) -> str:
    """The id of the person ``person_id`` names (a merged id: its survivor), if it is in ``scope``
    (:func:`person_scope`; None: any person of the tenant).

    Raises NotFound otherwise, worded exactly as for a missing person: a rep learns nothing about
    the HCPs they do not own, not even that they exist."""
    pid = resolve_person_id(conn, tenant_id, person_id)["id"]
    if scope is None:
        return pid
    mine = sa.select(persons.c.id).where(
        persons.c.tenant_id == tenant_id, persons.c.id == pid, persons.c.id.in_(scope)
    )
    if conn.execute(mine).first() is None:
        raise NotFound(f"person {person_id!r} not found")
    return pid
