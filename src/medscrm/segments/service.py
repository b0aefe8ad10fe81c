"""Segments: preview, static and dynamic segments, refresh with membership history, versions, export.

Keyword-only functions; the caller owns the transaction. A definition that does not validate and
compile is never saved (RuleError, every problem with its path).
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.access import visible_attributes
from medscrm.accounts.roles import can
from medscrm.common import NotFound, new_id, utcnow
from medscrm.db.schema import person_scores, persons, segment_history, segment_members, segments
from medscrm.exports import SafeDictWriter
from medscrm.rules import RuleError, compile_rule, parse
from medscrm.rules.errors import Problem
from medscrm.rules.validate import KEY_RE
from medscrm.tags.service import rule_context

KINDS = ("static", "dynamic")
#: Full recompute of a dynamic segment every N minutes unless its ``refresh_every_minutes`` says
#: otherwise (0 = never: incremental updates only).
DEFAULT_REFRESH_MINUTES = 60
MAX_REFRESH_MINUTES = 43_200  # 30 days


def score_keys(conn: sa.Connection, *, tenant_id: str) -> set[str]:
    """The score keys the scores module declares (``medscrm.scores``) and those present in the tenant's
    ``person_scores`` (e.g. imported ones)."""
    try:
        from medscrm.scores.model import SCORES

        declared = set(SCORES)
    except ImportError:  # the scores module is optional for the DSL
        declared = set()
    t = person_scores
    present = conn.execute(sa.select(t.c.score_key).where(t.c.tenant_id == tenant_id).distinct()).scalars()
    return declared | set(present)


def context(
    conn: sa.Connection,
    *,
    tenant_id: str,
    fields: dict[str, str] | None = None,
    defining: str | None = None,
):
    """The rule context of a tenant: tags' context plus the score keys in use."""
    ctx = rule_context(conn, tenant_id=tenant_id, fields=fields, defining_segment=defining)
    ctx.scores |= score_keys(conn, tenant_id=tenant_id)
    return ctx


def _check_every(problems: list[Problem], every: Any) -> None:
    if every is not None and (
        not isinstance(every, int) or isinstance(every, bool) or not 0 <= every <= MAX_REFRESH_MINUTES
    ):
        problems.append(
            Problem(
                "refresh_every_minutes",
                f"must be an integer from 0 (never) to {MAX_REFRESH_MINUTES:,} minutes",
            )
        )


EXPORT_FIELDS = ("name", "hospital", "department", "title")
PII_EXPORT_FIELDS = ("phone", "email")


def _compiled(
    conn: sa.Connection,
    *,
    tenant_id: str,
    rule: Any,
    now: dt.datetime,
    defining: str | None = None,
    fields: dict[str, str] | None = None,
    prefix: str = "",
) -> sa.Select:
    ctx = context(conn, tenant_id=tenant_id, fields=fields, defining=defining)
    try:
        return compile_rule(parse(rule, ctx), tenant_id=tenant_id, now=now, ctx=ctx)
    except RuleError as exc:
        if not prefix:
            raise
        raise RuleError(
            [Problem(f"{prefix}.{p.path}" if p.path else prefix, p.reason) for p in exc.problems]
        ) from None


def preview(
    conn: sa.Connection,
    *,
    tenant_id: str,
    rule: Any,
    sample: int = 10,
    now: dt.datetime | None = None,
    fields: dict[str, str] | None = None,
    scope: sa.Select | None = None,
) -> dict[str, Any]:
    """Count (one COUNT query) and a small sample of person ids matching ``rule``; ``scope``: among
    these person ids only (a SELECT: a rep's own HCPs)."""
    q = _compiled(conn, tenant_id=tenant_id, rule=rule, now=now or utcnow(), fields=fields)
    if scope is not None:
        q = q.where(persons.c.id.in_(scope))
    count = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    ids = list(conn.execute(q.order_by(persons.c.id).limit(sample)).scalars()) if sample else []
    return {"count": count, "sample": ids}


def get(conn: sa.Connection, *, tenant_id: str, key: str) -> dict[str, Any]:
    s = segments
    row = conn.execute(sa.select(s).where(s.c.tenant_id == tenant_id, s.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"segment {key!r} not found")
    return dict(row)


def list_segments(conn: sa.Connection, *, tenant_id: str) -> list[dict[str, Any]]:
    s = segments
    return [
        dict(r)
        for r in conn.execute(sa.select(s).where(s.c.tenant_id == tenant_id).order_by(s.c.key)).mappings()
    ]


def create(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    rule: Any,
    name: str | None = None,
    kind: str = "dynamic",
    created_by: str = "system",
    now: dt.datetime | None = None,
    fields: dict[str, str] | None = None,
    refresh_every_minutes: int | None = None,
) -> dict[str, Any]:
    """Create a segment and compute its members now (a static one keeps that snapshot).

    A dynamic segment is then kept fresh as events arrive (:mod:`medscrm.segments.fresh`) and fully
    recomputed every ``refresh_every_minutes`` (None: the default, 0: never)."""
    now = now or utcnow()
    problems = []
    if not isinstance(key, str) or not KEY_RE.match(key) or len(key) > 64:
        problems.append(Problem("key", "must be a name of letters, digits, _ or - (at most 64 characters)"))
    elif conn.execute(
        sa.select(segments.c.id).where(segments.c.tenant_id == tenant_id, segments.c.key == key)
    ).first():
        problems.append(Problem("key", f"segment {key!r} already exists (edit it with PUT)"))
    if kind not in KINDS:
        problems.append(Problem("kind", f"must be one of {', '.join(KINDS)}"))
    _check_every(problems, refresh_every_minutes)
    try:
        _compiled(conn, tenant_id=tenant_id, rule=rule, now=now, defining=key, fields=fields, prefix="rule")
    except RuleError as exc:
        problems.extend(exc.problems)
    if problems:
        raise RuleError(problems)
    conn.execute(
        sa.insert(segments).values(
            id=new_id("seg"),
            tenant_id=tenant_id,
            key=key,
            name=name or key,
            kind=kind,
            rule=rule,
            version=1,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            member_count=0,
            refresh_every_minutes=refresh_every_minutes,
        )
    )
    refresh(conn, tenant_id=tenant_id, key=key, now=now, fields=fields, _force=True)
    return get(conn, tenant_id=tenant_id, key=key)


def update(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    rule: Any = None,
    name: str | None = None,
    now: dt.datetime | None = None,
    fields: dict[str, str] | None = None,
    refresh_every_minutes: int | None = None,
) -> dict[str, Any]:
    """Edit the name, the refresh interval and/or the rule; a changed rule bumps ``version`` and
    refreshes the members."""
    now = now or utcnow()
    seg = get(conn, tenant_id=tenant_id, key=key)
    values: dict[str, Any] = {"updated_at": now}
    if name:
        values["name"] = name
    if refresh_every_minutes is not None:
        problems: list[Problem] = []
        _check_every(problems, refresh_every_minutes)
        if problems:
            raise RuleError(problems)
        values["refresh_every_minutes"] = refresh_every_minutes
    rule_changed = rule is not None and rule != seg["rule"]
    if rule_changed:
        _compiled(conn, tenant_id=tenant_id, rule=rule, now=now, defining=key, fields=fields, prefix="rule")
        values.update(rule=rule, version=seg["version"] + 1)
    conn.execute(sa.update(segments).where(segments.c.id == seg["id"]).values(**values))
    if rule_changed:
        refresh(conn, tenant_id=tenant_id, key=key, now=now, fields=fields, _force=True)
    return get(conn, tenant_id=tenant_id, key=key)


def refresh(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    now: dt.datetime | None = None,
    fields: dict[str, str] | None = None,
    _force: bool = False,
) -> dict[str, Any]:
    """Recompute the members (full recompute); entered/exited rows go to segment_history.

    A static segment is a snapshot: it is only computed when created or when its rule is edited."""
    now = now or utcnow()
    seg = get(conn, tenant_id=tenant_id, key=key)
    if seg["kind"] == "static" and not _force:
        return {"key": key, "entered": 0, "exited": 0, "member_count": seg["member_count"], "static": True}
    q = _compiled(conn, tenant_id=tenant_id, rule=seg["rule"], now=now, defining=key, fields=fields)
    new = set(conn.execute(q).scalars())
    m = segment_members
    scope = sa.and_(m.c.tenant_id == tenant_id, m.c.segment_id == seg["id"])
    old = set(conn.execute(sa.select(m.c.person_id).where(scope)).scalars())
    entered, exited = sorted(new - old), sorted(old - new)
    for i in range(0, len(exited), 5000):
        conn.execute(sa.delete(m).where(scope, m.c.person_id.in_(exited[i : i + 5000])))
    if entered:
        conn.execute(
            sa.insert(m),
            [
                {"tenant_id": tenant_id, "segment_id": seg["id"], "person_id": p, "since": now}
                for p in entered
            ],
        )
    hist = [(p, "entered") for p in entered] + [(p, "exited") for p in exited]
    if hist:
        conn.execute(
            sa.insert(segment_history),
            [
                {
                    "tenant_id": tenant_id,
                    "segment_id": seg["id"],
                    "person_id": p,
                    "change": c,
                    "changed_at": now,
                }
                for p, c in hist
            ],
        )
        hooks.emit(
            hooks.SEGMENT_CHANGED,
            conn=conn,
            tenant_id=tenant_id,
            segment_id=seg["id"],
            entered=entered,
            exited=exited,
            now=now,
        )
    conn.execute(
        sa.update(segments)
        .where(segments.c.id == seg["id"])
        .values(member_count=len(new), last_refreshed_at=now)
    )
    return {"key": key, "entered": len(entered), "exited": len(exited), "member_count": len(new)}


def members(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    role: str,
    limit: int = 100,
    offset: int = 0,
    scope: sa.Select | None = None,
) -> list[dict[str, Any]]:
    """Members with name/hospital/department/title (+ phone/e-mail, masked unless the role reads PII);
    ``scope``: only these person ids (a SELECT: a rep's own HCPs)."""
    seg = get(conn, tenant_id=tenant_id, key=key)
    m, p = segment_members, persons
    q = sa.select(m.c.person_id, m.c.since, p.c.attributes).join(
        p, sa.and_(p.c.tenant_id == m.c.tenant_id, p.c.id == m.c.person_id)
    )
    q = q.where(m.c.tenant_id == tenant_id, m.c.segment_id == seg["id"])
    if scope is not None:
        q = q.where(m.c.person_id.in_(scope))
    q = q.order_by(m.c.person_id).limit(limit).offset(offset)
    out = []
    for r in conn.execute(q):
        attrs = visible_attributes(r.attributes or {}, role)
        out.append(
            {
                "person_id": r.person_id,
                "since": r.since,
                **{k: attrs.get(k) for k in (*EXPORT_FIELDS, *PII_EXPORT_FIELDS)},
            }
        )
    return out


def export_csv(
    conn: sa.Connection, *, tenant_id: str, key: str, role: str, scope: sa.Select | None = None
) -> str:
    """All members as CSV text (UTF-8 with BOM for Excel); PII masked unless ``role`` may read PII;
    ``scope``: only these person ids (a SELECT: a rep's own HCPs). A cell a spreadsheet would read as
    a formula gets a leading single quote (:mod:`medscrm.exports`)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    cols = ("person_id", *EXPORT_FIELDS, *PII_EXPORT_FIELDS)
    # cells that a spreadsheet would read as a formula (=, +, -, @ …) are written as text
    w = SafeDictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    offset = 0
    while True:
        page = members(conn, tenant_id=tenant_id, key=key, role=role, limit=5000, offset=offset, scope=scope)
        w.writerows(page)
        if len(page) < 5000:
            break
        offset += 5000
    return buf.getvalue()


def history(conn: sa.Connection, *, tenant_id: str, key: str, limit: int = 1000) -> list[dict[str, Any]]:
    seg = get(conn, tenant_id=tenant_id, key=key)
    h = segment_history
    q = (
        sa.select(h.c.person_id, h.c.change, h.c.changed_at)
        .where(h.c.tenant_id == tenant_id, h.c.segment_id == seg["id"])
        .order_by(h.c.changed_at, h.c.person_id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def segments_of(conn: sa.Connection, *, tenant_id: str, person_id: str) -> list[dict[str, Any]]:
    """The segments a person is a member of (as of each segment's last refresh)."""
    m, s = segment_members, segments
    q = (
        sa.select(s.c.key, s.c.name, s.c.kind, m.c.since)
        .join(m, sa.and_(m.c.tenant_id == s.c.tenant_id, m.c.segment_id == s.c.id))
        .where(s.c.tenant_id == tenant_id, m.c.person_id == person_id)
        .order_by(s.c.key)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def can_read_pii(role: str) -> bool:
    return can(role, "pii.read")
