"""Tags as data: definitions, rule-tag evaluation with history, third-party import, per-person query.

Keyword-only functions; the caller owns the transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from medscrm.common import InvalidInput, NotFound, new_id, utcnow
from medscrm.db.bulk import append_rows, worth_bulk
from medscrm.db.query import in_ids, in_pairs
from medscrm.db.schema import identities, person_tags, persons, segments, tag_definitions, tag_history
from medscrm.rules import RuleContext, RuleError, SegmentInfo, compile_rule, parse
from medscrm.rules.errors import Problem
from medscrm.rules.validate import KEY_RE, STANDARD_ATTRIBUTES
from medscrm.tags.synonyms import rule_synonyms

CATEGORIES = ("basic", "business_rule", "behaviour_model", "third_party")
VALUE_TYPES = ("bool", "string", "number")
REFRESH = ("realtime", "scheduled")
SOURCES = ("rule", "import", "model")
_PY_TYPES = ((bool, "bool"), (int, "number"), (float, "number"))


def rule_context(
    conn: sa.Connection,
    *,
    tenant_id: str,
    fields: dict[str, str] | None = None,
    defining_segment: str | None = None,
    sample: int = 2000,
) -> RuleContext:
    """What rules of this tenant may use: standard fields, custom attributes seen in a sample of golden
    records (typed from their JSON values) or declared in ``fields``, tag definitions, segments."""
    known = dict(STANDARD_ATTRIBUTES)
    rows = conn.execute(
        sa.select(persons.c.attributes).where(persons.c.tenant_id == tenant_id).limit(sample)
    ).scalars()
    for attrs in rows:
        for k, v in (attrs or {}).items():
            if k in known or not isinstance(k, str) or not KEY_RE.match(k) or v is None:
                continue
            known[k] = next((t for py, t in _PY_TYPES if isinstance(v, py)), "string")
    known.update(fields or {})
    tags = dict(
        conn.execute(
            sa.select(tag_definitions.c.key, tag_definitions.c.value_type).where(
                tag_definitions.c.tenant_id == tenant_id
            )
        ).all()
    )
    segs = {
        r.key: SegmentInfo(id=r.id, kind=r.kind, rule=r.rule)
        for r in conn.execute(
            sa.select(segments.c.id, segments.c.key, segments.c.kind, segments.c.rule).where(
                segments.c.tenant_id == tenant_id
            )
        )
    }
    return RuleContext(
        fields=known, tags=tags, segments=segs, defining_segment=defining_segment, synonyms=rule_synonyms()
    )


def _check_choice(problems: list[Problem], field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        problems.append(Problem(field, f"must be one of {', '.join(choices)}"))


def define(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    value_type: str = "bool",
    category: str = "business_rule",
    name_zh: str | None = None,
    name_en: str | None = None,
    owner: str | None = None,
    description: str | None = None,
    refresh: str = "scheduled",
    rule: Any = None,
    fields: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Create or update a tag definition. A rule tag's rule must validate and compile, else RuleError
    (nothing saved). Rule tags are bool (member or not)."""
    problems: list[Problem] = []
    if not isinstance(key, str) or not KEY_RE.match(key) or len(key) > 64:
        problems.append(Problem("key", "must be a name of letters, digits, _ or - (at most 64 characters)"))
    _check_choice(problems, "category", category, CATEGORIES)
    _check_choice(problems, "value_type", value_type, VALUE_TYPES)
    _check_choice(problems, "refresh", refresh, REFRESH)
    if rule is not None:
        if value_type != "bool":
            problems.append(Problem("value_type", "a rule tag is bool (true while the rule holds)"))
        ctx = rule_context(conn, tenant_id=tenant_id, fields=fields)
        ctx.tags.pop(key, None)  # a rule tag may not refer to itself
        try:
            compile_rule(parse(rule, ctx), tenant_id=tenant_id, ctx=ctx)
        except RuleError as exc:
            problems.extend(Problem(_rule_path(p.path), p.reason) for p in exc.problems)
    if problems:
        raise RuleError(problems)
    now = now or utcnow()
    values = {
        "name_zh": name_zh,
        "name_en": name_en,
        "category": category,
        "owner": owner,
        "description": description,
        "value_type": value_type,
        "refresh": refresh,
        "rule": rule,
        "updated_at": now,
    }
    existing = get_definition(conn, tenant_id=tenant_id, key=key, missing_ok=True)
    t = tag_definitions
    if existing:
        conn.execute(sa.update(t).where(t.c.id == existing["id"]).values(**values))
    else:
        conn.execute(
            sa.insert(t).values(id=new_id("tag"), tenant_id=tenant_id, key=key, created_at=now, **values)
        )
    return get_definition(conn, tenant_id=tenant_id, key=key)


def _rule_path(path: str) -> str:
    return f"rule.{path}" if path else "rule"


def get_definition(
    conn: sa.Connection, *, tenant_id: str, key: str, missing_ok: bool = False
) -> dict[str, Any] | None:
    t = tag_definitions
    row = conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id, t.c.key == key)).mappings().first()
    if row is None and not missing_ok:
        raise NotFound(f"tag {key!r} not found")
    return dict(row) if row else None


def list_definitions(conn: sa.Connection, *, tenant_id: str) -> list[dict[str, Any]]:
    t = tag_definitions
    return [
        dict(r)
        for r in conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.key))
        .mappings()
        .all()
    ]


def _set_tags(
    conn: sa.Connection,
    *,
    tenant_id: str,
    tag_key: str,
    values: dict[str, str | None],
    source: str,
    reason: dict[str, Any],
    now: dt.datetime,
    reasons: dict[str, Any] | None = None,
    only: list[str] | None = None,
) -> dict[str, int]:
    """Apply new values (None = remove) for one tag; history rows for every change.

    ``reasons`` gives a person's own reason (else ``reason``); ``only`` limits the read of current values
    to those persons (the caller passes values for them only: per-person refreshes stay small)."""
    pt = person_tags
    base = sa.select(pt.c.person_id, pt.c.value).where(pt.c.tenant_id == tenant_id, pt.c.tag_key == tag_key)
    if only is None:
        current = dict(conn.execute(base).all())
    else:
        current = {}
        for chunk in _chunks(list(only)):
            current.update(conn.execute(base.where(in_ids(pt.c.person_id, chunk))).all())
    return write_tag_changes(
        conn,
        tenant_id=tenant_id,
        changes={tag_key: values},
        current={(p, tag_key): v for p, v in current.items()},
        source=source,
        reason=reason,
        reasons={tag_key: reasons or {}},
        now=now,
    )[tag_key]


def write_tag_changes(
    conn: sa.Connection,
    *,
    tenant_id: str,
    changes: dict[str, dict[str, str | None]],
    current: Mapping[tuple[str, str], str | None],
    source: str,
    reason: dict[str, Any],
    now: dt.datetime,
    reasons: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, int]]:
    """Write new values of several tags at once: ``changes[tag_key][person_id]`` = value (None =
    remove), given the ``current`` value of each ``(person_id, tag_key)`` read by the caller. One
    DELETE of the (person, tag) rows that go, then one INSERT (bulk path) for all new rows and one for all
    history rows, whatever the number of tags (the real-time refresh writes eight tags per person)."""
    pt = person_tags
    reasons = reasons or {}
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    stats: dict[str, dict[str, int]] = {}
    gone: list[tuple[str, str]] = []  # (person, tag) rows replaced or removed
    for tag_key, values in changes.items():
        own = reasons.get(tag_key, {})
        added = [p for p, v in values.items() if v is not None and (p, tag_key) not in current]
        changed = [
            p
            for p, v in values.items()
            if v is not None and (p, tag_key) in current and current[(p, tag_key)] != v
        ]
        removed = [p for p, v in values.items() if v is None and (p, tag_key) in current]
        history.extend(
            {
                "tenant_id": tenant_id,
                "person_id": p,
                "tag_key": tag_key,
                "old_value": current.get((p, tag_key)),
                "new_value": values[p],
                "changed_at": now,
                "reason": own.get(p, reason),
            }
            for p in (*added, *changed, *removed)
        )
        gone.extend((p, tag_key) for p in (*removed, *changed))
        rows.extend(
            {
                "tenant_id": tenant_id,
                "person_id": p,
                "tag_key": tag_key,
                "value": values[p],
                "since": now,
                "source": source,
                "reason": own.get(p, reason),
            }
            for p in (*added, *changed)
        )
        stats[tag_key] = {"added": len(added), "changed": len(changed), "removed": len(removed)}
    for chunk in _chunks(gone):
        conn.execute(
            sa.delete(pt).where(pt.c.tenant_id == tenant_id, in_pairs(pt.c.person_id, pt.c.tag_key, chunk))
        )
    _insert(conn, pt, rows)
    _insert(conn, tag_history, history)
    return stats


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Many rows through the bulk path (COPY / Arrow), a few through an INSERT."""

    if worth_bulk(conn, len(rows)):
        append_rows(conn, table, rows)
    elif rows:
        conn.execute(sa.insert(table), rows)


def set_tags(
    conn: sa.Connection,
    *,
    tenant_id: str,
    tag_key: str,
    values: dict[str, str | None],
    source: str,
    reason: dict[str, Any],
    now: dt.datetime | None = None,
    reasons: dict[str, Any] | None = None,
    only: list[str] | None = None,
) -> dict[str, int]:
    """Set (value) or remove (None) one tag for the given persons, with a ``tag_history`` row and the
    reason for every change (models and importers call this; the tag must be defined)."""
    if source not in SOURCES:
        raise InvalidInput("source", f"must be one of {', '.join(SOURCES)}")
    get_definition(conn, tenant_id=tenant_id, key=tag_key)
    return _set_tags(
        conn,
        tenant_id=tenant_id,
        tag_key=tag_key,
        values=values,
        source=source,
        reason=reason,
        now=now or utcnow(),
        reasons=reasons,
        only=only,
    )


def persons_with_tag(
    conn: sa.Connection,
    *,
    tenant_id: str,
    tag_key: str,
    value: str | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: sa.Select | None = None,
) -> dict[str, Any]:
    """Persons holding a tag (any value, or ``value``), paginated by person id: ``{total, persons}``
    with each person's id, value, since and reason; ``scope``: among these person ids only (a SELECT:
    a rep's own HCPs; ``total`` counts them only)."""
    get_definition(conn, tenant_id=tenant_id, key=tag_key)
    pt = person_tags
    cond = [pt.c.tenant_id == tenant_id, pt.c.tag_key == tag_key]
    if value is not None:
        cond.append(pt.c.value == value)
    if scope is not None:
        cond.append(pt.c.person_id.in_(scope))
    total = conn.execute(sa.select(sa.func.count()).select_from(pt).where(*cond)).scalar() or 0
    rows = conn.execute(
        sa.select(pt.c.person_id, pt.c.value, pt.c.since, pt.c.reason)
        .where(*cond)
        .order_by(pt.c.person_id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return {"total": int(total), "persons": [dict(r) for r in rows]}


def distribution(conn: sa.Connection, *, tenant_id: str, tag_key: str) -> dict[str, int]:
    """How many persons hold each value of a tag, most common first."""
    pt = person_tags
    n = sa.func.count().label("n")
    rows = conn.execute(
        sa.select(pt.c.value, n)
        .where(pt.c.tenant_id == tenant_id, pt.c.tag_key == tag_key)
        .group_by(pt.c.value)
        .order_by(n.desc(), pt.c.value)
    ).all()
    return {str(v): int(c) for v, c in rows}


def _chunks(items: list, n: int = 5000):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def evaluate(
    conn: sa.Connection, *, tenant_id: str, keys: list[str] | None = None, now: dt.datetime | None = None
) -> dict[str, dict[str, int]]:
    """Full recompute of the tenant's rule tags (scheduled refresh): value "true" while the rule
    holds; the tag is removed when it stops holding. Returns per tag {added, changed, removed, count}."""
    now = now or utcnow()
    ctx = rule_context(conn, tenant_id=tenant_id)
    out: dict[str, dict[str, int]] = {}
    for d in list_definitions(conn, tenant_id=tenant_id):
        if d["rule"] is None or (keys and d["key"] not in keys):
            continue
        q = compile_rule(parse(d["rule"], ctx), tenant_id=tenant_id, now=now, ctx=ctx)
        matching = set(conn.execute(q).scalars())
        pt = person_tags
        current = set(
            conn.execute(
                sa.select(pt.c.person_id).where(pt.c.tenant_id == tenant_id, pt.c.tag_key == d["key"])
            ).scalars()
        )
        values: dict[str, str | None] = {p: "true" for p in matching}
        values.update({p: None for p in current - matching})
        reason = {"rule": d["rule"], "evaluated_at": now.isoformat(), "kind": "scheduled"}
        stats = _set_tags(
            conn, tenant_id=tenant_id, tag_key=d["key"], values=values, source="rule", reason=reason, now=now
        )
        out[d["key"]] = {**stats, "count": len(matching)}
    return out


def import_csv(
    conn: sa.Connection, *, tenant_id: str, path: Path, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Import third-party tags. Columns: ``person_id`` or ``id_type`` + ``id_value`` (an identity), then
    ``tag_key`` and ``value``. Unknown tags are defined as third_party string tags. Returns a report
    with every unmatched row."""
    now = now or utcnow()
    by_tag: dict[str, dict[str, str | None]] = {}
    unmatched: list[dict[str, Any]] = []
    active = persons.c.status == "active"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"tag_key", "value"} <= cols or not ({"person_id"} <= cols or {"id_type", "id_value"} <= cols):
            raise InvalidInput(
                "columns", "need tag_key, value and either person_id or id_type + id_value (a header row)"
            )
        for n, row in enumerate(reader, start=2):
            key = (row.get("tag_key") or "").strip()
            if not KEY_RE.match(key):
                unmatched.append({"row": n, "reason": "invalid tag_key", "tag_key": key})
                continue
            pid = (row.get("person_id") or "").strip()
            if pid:
                ok = conn.execute(
                    sa.select(persons.c.id).where(
                        persons.c.tenant_id == tenant_id, persons.c.id == pid, active
                    )
                ).scalar()
            else:
                ok = conn.execute(
                    sa.select(identities.c.person_id)
                    .where(
                        identities.c.tenant_id == tenant_id,
                        identities.c.type == (row.get("id_type") or "").strip(),
                        identities.c.value == (row.get("id_value") or "").strip(),
                    )
                    .limit(1)
                ).scalar()
            if not ok:
                unmatched.append({"row": n, "reason": "no such person", "tag_key": key})
                continue
            value = (row.get("value") or "").strip()[:300]
            by_tag.setdefault(key, {})[ok] = value or None
    stats = {}
    for key, values in by_tag.items():
        if get_definition(conn, tenant_id=tenant_id, key=key, missing_ok=True) is None:
            define(conn, tenant_id=tenant_id, key=key, value_type="string", category="third_party", now=now)
        reason = {"import": Path(path).name, "at": now.isoformat()}
        stats[key] = _set_tags(
            conn, tenant_id=tenant_id, tag_key=key, values=values, source="import", reason=reason, now=now
        )
    return {"tags": stats, "matched": sum(len(v) for v in by_tag.values()), "unmatched": unmatched}


def tags_of(conn: sa.Connection, *, tenant_id: str, person_id: str) -> list[dict[str, Any]]:
    """The person's current tags with their definitions' names and category."""
    pt, t = person_tags, tag_definitions
    q = (
        sa.select(
            pt.c.tag_key,
            pt.c.value,
            pt.c.since,
            pt.c.source,
            pt.c.reason,
            t.c.name_zh,
            t.c.name_en,
            t.c.category,
        )
        .outerjoin(t, sa.and_(t.c.tenant_id == pt.c.tenant_id, t.c.key == pt.c.tag_key))
        .where(pt.c.tenant_id == tenant_id, pt.c.person_id == person_id)
        .order_by(pt.c.tag_key)
    )
    return [
        {
            "key": r.tag_key,
            "value": r.value,
            "since": r.since,
            "source": r.source,
            "reason": r.reason,
            "name_zh": r.name_zh,
            "name_en": r.name_en,
            "category": r.category,
        }
        for r in conn.execute(q)
    ]


def history_of(conn: sa.Connection, *, tenant_id: str, person_id: str) -> list[dict[str, Any]]:
    h = tag_history
    q = (
        sa.select(h.c.tag_key, h.c.old_value, h.c.new_value, h.c.changed_at, h.c.reason)
        .where(h.c.tenant_id == tenant_id, h.c.person_id == person_id)
        .order_by(h.c.changed_at, h.c.tag_key)
    )
    return [dict(r) for r in conn.execute(q).mappings()]
