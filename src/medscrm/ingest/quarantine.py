"""The quarantine: rejected input with its reasons, fixable and replayable.

Nothing is deleted: a replayed entry stays, marked ``replayed`` with the id of the source record it
became; a discarded one stays, marked ``discarded`` with who did it and why.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import MedscrmError, NotFound, new_id, utcnow
from medscrm.db.schema import imports, quarantine, source_records, sources
from medscrm.ingest.importer import build_record
from medscrm.ingest.mapping import Plan
from medscrm.ingest.suppress import Suppressor, pairs_of_record, pairs_of_values


def list_entries(
    *,
    conn: sa.Connection,
    tenant_id: str,
    status: str | None = "open",
    source: str | None = None,
    import_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    q = quarantine
    stmt = (
        sa.select(q, sources.c.name.label("source_name"))
        .select_from(q.outerjoin(sources, sources.c.id == q.c.source_id))
        .where(q.c.tenant_id == tenant_id)
    )
    if status:
        stmt = stmt.where(q.c.status == status)
    if source:
        stmt = stmt.where(sources.c.name == source)
    if import_id:
        stmt = stmt.where(q.c.import_id == import_id)
    stmt = stmt.order_by(q.c.created_at, q.c.row_number).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def count_open(*, conn: sa.Connection, tenant_id: str) -> dict[str, int]:
    """Open entries by reason code."""
    rows = conn.execute(
        sa.select(quarantine.c.code, sa.func.count())
        .where(quarantine.c.tenant_id == tenant_id, quarantine.c.status == "open")
        .group_by(quarantine.c.code)
        .order_by(sa.func.count().desc())
    ).all()
    return {code: n for code, n in rows}


def get_entry(*, conn: sa.Connection, tenant_id: str, entry_id: str) -> dict[str, Any]:
    row = (
        conn.execute(
            sa.select(quarantine).where(quarantine.c.tenant_id == tenant_id, quarantine.c.id == entry_id)
        )
        .mappings()
        .first()
    )
    if not row:
        raise NotFound(f"quarantine entry {entry_id!r} not found")
    return dict(row)


def fix(
    *, conn: sa.Connection, tenant_id: str, entry_id: str, changes: dict[str, Any], actor: str = "cli"
) -> dict[str, Any]:
    """Set corrected column values (by the source's own column names) on an open entry."""
    entry = get_entry(conn=conn, tenant_id=tenant_id, entry_id=entry_id)
    if entry["status"] != "open":
        raise MedscrmError(f"quarantine entry {entry_id} is {entry['status']}, not open")
    base = dict(entry["fixed_payload"] or entry["payload"])
    unknown = [k for k in changes if k not in base]
    if unknown and entry["kind"] == "import_row":
        raise MedscrmError(f"unknown column(s) {unknown}; the row has: {', '.join(base)}")
    base.update(changes)
    conn.execute(quarantine.update().where(quarantine.c.id == entry_id).values(fixed_payload=base))
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="quarantine.fix",
        object_type="quarantine",
        object_id=entry_id,
        # the columns changed, not their values: the entry holds the values, and an audit row must not
        # keep personal data beyond the entry's life (a later erasure or discard removes them there)
        detail={"columns": sorted(changes)},
    )
    return base


#: Problems with the shape of a row (fewer or more fields than the header): its values may sit in the
#: wrong columns, so such a row is replayed only after a person has fixed it (``fix``), never as read.
SHAPE_CODES = frozenset({"short_row", "long_row"})


def _plan(conn: sa.Connection, import_id: str | None, cache: dict[str, Plan]) -> Plan:
    if not import_id:
        raise MedscrmError("this entry has no import to replay into")
    if import_id not in cache:
        rep = conn.execute(sa.select(imports.c.report).where(imports.c.id == import_id)).scalar()
        if not rep or "plan" not in rep:
            raise MedscrmError(f"import {import_id} has no recorded mapping plan; re-import the fixed file")
        cache[import_id] = Plan.model_validate(rep["plan"])
    return cache[import_id]


def replay(
    *, conn: sa.Connection, tenant_id: str, entry_ids: list[str] | None = None, actor: str = "cli"
) -> dict[str, Any]:
    """Validate entries again (with their fixes); accepted ones become source records."""
    q = quarantine
    stmt = sa.select(q).where(q.c.tenant_id == tenant_id, q.c.status == "open", q.c.kind == "import_row")
    if entry_ids is not None:
        stmt = stmt.where(q.c.id.in_(entry_ids))
    entries = [dict(r) for r in conn.execute(stmt).mappings()]
    if entry_ids is not None and len(entries) != len(set(entry_ids)):
        found = {e["id"] for e in entries}
        missing = [i for i in entry_ids if i not in found]
        raise NotFound(f"not open or not found: {', '.join(missing)}")
    plans: dict[str, Plan] = {}
    replayed, still_bad, suppressed = [], [], []
    # a fixed row may now carry an identifier of an erased person: it is discarded, not stored
    sup = Suppressor(conn, tenant_id)
    for e in entries:
        shape = [i for i in e["issues"] or [] if i.get("code") in SHAPE_CODES]
        if shape and e["fixed_payload"] is None:
            hint = "; fix the row first (quarantine fix ID --set COLUMN=VALUE), then replay it"
            still_bad.append({"id": e["id"], "issues": [{**i, "reason": i["reason"] + hint} for i in shape]})
            continue
        values = e["fixed_payload"] or e["payload"]
        plan = _plan(conn, e["import_id"], plans)
        built = build_record(values, plan, row_number=e["row_number"])
        if built.record is None:
            first = built.issues[0]
            conn.execute(
                q.update()
                .where(q.c.id == e["id"])
                .values(issues=built.issues, field=first["field"], code=first["code"], reason=first["reason"])
            )
            still_bad.append({"id": e["id"], "issues": built.issues})
            continue
        rec = built.record
        if sup.check(pairs_of_record(rec, source_id=e["source_id"]) + pairs_of_values(values)):
            conn.execute(
                q.update()
                .where(q.c.id == e["id"])
                .values(
                    status="discarded",
                    resolved_at=utcnow(),
                    resolved_by=actor,
                    payload={},
                    fixed_payload=None,
                )
            )
            suppressed.append(e["id"])
            continue
        dup = conn.execute(
            sa.select(source_records.c.id).where(
                source_records.c.tenant_id == tenant_id,
                source_records.c.source_id == e["source_id"],
                source_records.c.record_key == rec["record_key"],
                source_records.c.row_hash == rec["row_hash"],
            )
        ).scalar()
        rid = dup or new_id("sr")
        if not dup:
            rec.update(
                id=rid,
                tenant_id=tenant_id,
                source_id=e["source_id"],
                import_id=e["import_id"],
                received_at=utcnow(),
            )
            conn.execute(source_records.insert().values(**rec))
        conn.execute(
            q.update()
            .where(q.c.id == e["id"])
            .values(status="replayed", resolved_at=utcnow(), resolved_by=actor, source_record_id=rid)
        )
        replayed.append({"id": e["id"], "source_record_id": rid})
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="quarantine.replay",
        object_type="quarantine",
        detail={"replayed": len(replayed), "still_bad": len(still_bad), "suppressed": len(suppressed)},
    )
    sup.record(conn)
    return {"replayed": replayed, "still_bad": still_bad, "suppressed": suppressed}


def discard(*, conn: sa.Connection, tenant_id: str, entry_id: str, reason: str, actor: str = "cli") -> None:
    entry = get_entry(conn=conn, tenant_id=tenant_id, entry_id=entry_id)
    if entry["status"] != "open":
        raise MedscrmError(f"quarantine entry {entry_id} is {entry['status']}, not open")
    conn.execute(
        quarantine.update()
        .where(quarantine.c.id == entry_id)
        .values(status="discarded", resolved_at=utcnow(), resolved_by=actor)
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="quarantine.discard",
        object_type="quarantine",
        object_id=entry_id,
        detail={"reason": reason},
    )


__all__ = ["list_entries", "count_open", "get_entry", "fix", "replay", "discard"]
