"""Who may see whom: a rep sees only the HCPs they own.

There is no ownership table in the foundation, so ownership is derived from what the sources say
(nothing new is stored):

* CRM exports carry the owning rep per HCP (``负责代表`` → custom attribute ``owner_rep``: the rep's
  name or WeCom userid);
* WeCom external-contact exports carry the rep who added the contact (``rep_userid``);
* the WeCom callback API records ``identity_links`` ``wecom_contact_of`` (external userid ↔ rep's
  ``wecom_user``), which reach the person through their ``wecom_external_userid`` identity.

A console user of role ``rep`` is matched to these values by **username = WeCom userid** and/or
**display name = the rep's name** (``medscrm users create LiuJun --role rep --display-name 刘军``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medscrm.db.schema import identities, identity_links, person_records, source_records

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
