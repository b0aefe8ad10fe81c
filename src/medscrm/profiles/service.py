"""Reading profiles. Every read is tenant-scoped, masked by role and audited (PIPL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.accounts.roles import can, mask_email, mask_phone
from medscrm.api.events import query_events
from medscrm.common import NotFound
from medscrm.db.schema import identities, person_records, persons, source_records, sources
from medscrm.scores.model import stage_from_tags

LOOKUP_TYPES = {
    "phone": "phone",
    "email": "email",
    "unionid": "wechat_unionid",
    "wecom": "wecom_external_userid",
    "license_no": "license_no",
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
}
PII_IDENTITY_TYPES = {"phone", "email", "license_no", "wechat_unionid", "wecom_external_userid"}
#: attributes a rep may never see: per-HCP prescription volume (医药代表备案管理办法 2020)
PRESCRIPTION_ATTRIBUTES = ("rx_volume", "prescriptions", "prescription_volume", "处方量")
#: custom attributes shown as ``***`` to roles without PII rights (office phone, WeChat openid, the
#: rep's free-text remark, which often holds a mobile number); the API and the console agree
EXTRA_PII = ("office_phone", "wechat_openid", "rep_remark")


def _mask_value(kind: str, value: Any) -> Any:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if isinstance(value, str) and len(value) > 6:
        return value[:3] + "***" + value[-2:]
    return "***"


def _visible(attrs: dict[str, Any], role: str) -> dict[str, Any]:
    out = dict(attrs)
    if not can(role, "pii.read"):
        for k in ("phone", "email", "license_no", "wechat_unionid", "wecom_external_userid"):
            if out.get(k):
                out[k] = _mask_value(k, out[k])
        for k in EXTRA_PII:
            if out.get(k):
                out[k] = "***"
    if not can(role, "prescriptions.read"):
        for k in PRESCRIPTION_ATTRIBUTES:
            out.pop(k, None)
    return out


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


def read_audit(person_id: str, role: str, **extra: Any) -> dict[str, Any]:
    """The audit row of a profile read (``accounts.audit`` / ``audit_committed`` keywords)."""
    return {
        "action": "profile.read",
        "object_type": "person",
        "object_id": person_id,
        "detail": {"role": role, "pii": can(role, "pii.read"), **extra},
    }


def get_profile(
    conn: sa.Connection, *, tenant_id: str, person_id: str, role: str, actor: str, audit: bool = True
) -> dict[str, Any]:
    p = resolve_person_id(conn, tenant_id, person_id)
    ids = conn.execute(
        sa.select(identities.c.type, identities.c.value)
        .where(identities.c.tenant_id == tenant_id, identities.c.person_id == p["id"])
        .order_by(identities.c.type, identities.c.value)
    ).all()
    show_pii = can(role, "pii.read")
    idents = [
        {"type": t, "value": v if (show_pii or t not in PII_IDENTITY_TYPES) else _mask_value(t, v)}
        for t, v in ids
    ]
    n_records = conn.execute(
        sa.select(sa.func.count())
        .select_from(person_records)
        .where(person_records.c.tenant_id == tenant_id, person_records.c.person_id == p["id"])
    ).scalar()
    lineage = {k: v for k, v in (p["lineage"] or {}).items() if k in _visible(p["attributes"] or {}, role)}
    if not show_pii:
        for lin in lineage.values():
            lin["conflicts"] = ["***"] * len(lin.get("conflicts", []))
    if audit:
        accounts.audit(conn=conn, tenant_id=tenant_id, actor=actor, **read_audit(p["id"], role))
    tags = _tags_of(conn, tenant_id, p["id"], role)
    stage = stage_from_tags({t["key"]: t["value"] for t in tags})
    return {
        "person_id": p["id"],
        "requested_id": person_id,
        "person_type": p["person_type"],
        "attributes": _visible(p["attributes"] or {}, role),
        "lineage": lineage,
        "identities": idents,
        "source_records": n_records,
        "tags": tags,
        "segments": _segments_of(conn, tenant_id, p["id"]),
        "scores": _scores_of(conn, tenant_id, p["id"], role),
        "stage": stage,
        "tier": stage["potential_tier"],
        "created_at": p["created_at"],
        "updated_at": p["updated_at"],
    }


def _tags_of(conn: sa.Connection, tenant_id: str, person_id: str, role: str) -> list[dict[str, Any]]:
    from medscrm.scores.model import hide_prescription_detail
    from medscrm.tags.service import tags_of

    out = tags_of(conn, tenant_id=tenant_id, person_id=person_id)
    if not can(role, "prescriptions.read"):
        for t in out:
            t["reason"] = hide_prescription_detail(t.get("reason"))
    return out


def _scores_of(conn: sa.Connection, tenant_id: str, person_id: str, role: str) -> dict[str, Any]:
    """Scores with their reasons; per-HCP prescription detail only for roles that may read it."""
    from medscrm.scores.service import scores_of

    return scores_of(
        conn, tenant_id=tenant_id, person_id=person_id, prescriptions=can(role, "prescriptions.read")
    )


def _segments_of(conn: sa.Connection, tenant_id: str, person_id: str) -> list[dict[str, Any]]:
    from medscrm.segments.service import segments_of

    return segments_of(conn, tenant_id=tenant_id, person_id=person_id)


def lookup(
    conn: sa.Connection, *, tenant_id: str, type_: str, value: str, scope: sa.Select | None = None
) -> str:
    """Person id for an identifier (phone/email are normalised the way imports normalise them).

    ``scope``: a SELECT of the person ids the caller may see (a rep's own HCPs); None: any."""
    from medscrm.schema import person as schema

    kind = LOOKUP_TYPES.get(type_)
    if not kind:
        raise ValueError(f"type: {type_!r} is not one of {', '.join(LOOKUP_TYPES)}")
    norm = {
        "phone": schema.normalize_phone,
        "email": schema.normalize_email,
        "license_no": schema.normalize_license_no,
    }.get(kind)
    v = norm(value) if norm else value.strip()
    q = sa.select(identities.c.person_id).where(
        identities.c.tenant_id == tenant_id, identities.c.type == kind, identities.c.value == v
    )
    if scope is not None:
        q = q.where(identities.c.person_id.in_(scope))
    pid = conn.execute(q.order_by(identities.c.person_id).limit(1)).scalar()
    if not pid:
        raise NotFound(f"no person with {type_} {value!r}")
    return pid


def search(
    conn: sa.Connection,
    *,
    tenant_id: str,
    q: str | None = None,
    hospital: str | None = None,
    department: str | None = None,
    person_type: str | None = None,
    role: str = "analyst",
    limit: int = 50,
    offset: int = 0,
    scope: sa.Select | None = None,
) -> list[dict[str, Any]]:
    """Search golden records by name / hospital / department (substring, case-insensitive);
    ``scope``: only these person ids (a SELECT: a rep's own HCPs)."""
    p = persons
    attr = p.c.attributes
    name_col = sa.cast(attr["name"].as_string(), sa.String)
    stmt = sa.select(p.c.id, p.c.person_type, p.c.attributes).where(
        p.c.tenant_id == tenant_id, p.c.status == "active"
    )
    if q:
        stmt = stmt.where(name_col.icontains(q, autoescape=True))
    if hospital:
        stmt = stmt.where(
            sa.cast(attr["hospital"].as_string(), sa.String).icontains(hospital, autoescape=True)
        )
    if department:
        stmt = stmt.where(
            sa.cast(attr["department"].as_string(), sa.String).icontains(department, autoescape=True)
        )
    if person_type:
        stmt = stmt.where(p.c.person_type == person_type)
    if scope is not None:
        stmt = stmt.where(p.c.id.in_(scope))
    rows = conn.execute(stmt.order_by(name_col, p.c.id).limit(limit).offset(offset)).mappings().all()
    keep = ("name", "hospital", "department", "title", "city", "phone", "email")
    return [
        {
            "person_id": r["id"],
            "person_type": r["person_type"],
            **{k: v for k, v in _visible(r["attributes"] or {}, role).items() if k in keep},
        }
        for r in rows
    ]


def records_of(conn: sa.Connection, *, tenant_id: str, person_id: str, role: str) -> list[dict[str, Any]]:
    sr = source_records
    q = (
        sa.select(
            sr.c.id,
            sources.c.name.label("source"),
            sr.c.received_at,
            sr.c.record_key,
            *[sr.c[f] for f in ("name", "hospital", "department", "title", "phone", "email")],
        )
        .join(person_records, person_records.c.source_record_id == sr.c.id)
        .join(sources, sources.c.id == sr.c.source_id)
        .where(person_records.c.tenant_id == tenant_id, person_records.c.person_id == person_id)
        .order_by(sr.c.received_at.desc())
    )
    return [_visible(dict(r), role) for r in conn.execute(q).mappings()]


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
            out[col] = _visible(out[col], role)
    ctx = out.get("context")
    if isinstance(ctx, dict) and not can(role, "pii.read"):
        ctx = dict(ctx)
        for k in CONTEXT_PII:
            if ctx.get(k):
                ctx[k] = _mask_value(k, str(ctx[k]))
        if isinstance(ctx.get("device"), dict):
            ctx["device"] = {k: ("***" if k in DEVICE_PII and v else v) for k, v in ctx["device"].items()}
        if isinstance(ctx.get("traits"), dict):
            ctx["traits"] = _visible(ctx["traits"], role)
        out["context"] = ctx
    return out


def timeline(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    limit: int = 50,
    before=None,
    role: str | None = None,
    after=None,
) -> list[dict]:
    """The person's events, newest first; ``after``: the (timestamp, id) of the last event of the
    previous page (``api.events.decode_cursor``). For a role without ``prescriptions.read`` (the rep-filing
    rules), prescription events are left out and prescription properties removed; for a role without
    ``pii.read`` personal data in the events is masked (:func:`redact_event`)."""
    p = resolve_person_id(conn, tenant_id, person_id)
    rows = query_events(
        conn,
        tenant_id=tenant_id,
        person_id=p["id"],
        limit=limit,
        before=before,
        exclude_events=hidden_events(role) if role is not None else (),
        after=after,
    )
    return rows if role is None else [redact_event(r, role) for r in rows]


def hidden_events(role: str) -> tuple[str, ...]:
    """Event names ``role`` never sees (prescription events without ``prescriptions.read``)."""
    return () if can(role, "prescriptions.read") else PRESCRIPTION_EVENTS
