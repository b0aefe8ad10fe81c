"""People stay in control: the review queue, manual merge, unmerge, and do-not-merge constraints.

Every decision is a constraint (``must_link`` / ``cannot_link`` between source records) that later
identity runs respect, and every change is audited and recorded in the person's history.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import MedscrmError, NotFound, new_id, utcnow
from medscrm.db.bulk import append_rows
from medscrm.db.schema import identity_constraints, identity_review, person_records, source_records, sources
from medscrm.persons.service import ApplyReport, apply_clusters


def current_clusters(conn: sa.Connection, tenant_id: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for rid, pid in conn.execute(
        sa.select(person_records.c.source_record_id, person_records.c.person_id).where(
            person_records.c.tenant_id == tenant_id
        )
    ):
        out[pid].append(rid)
    return dict(out)


def constraints(conn: sa.Connection, tenant_id: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    c = identity_constraints
    rows = conn.execute(
        sa.select(c.c.kind, c.c.record_a, c.c.record_b).where(
            c.c.tenant_id == tenant_id, c.c.revoked_at.is_(None)
        )
    ).all()
    return (
        [(a, b) for k, a, b in rows if k == "must_link"],
        [(a, b) for k, a, b in rows if k == "cannot_link"],
    )


def _constrain(
    conn, tenant_id: str, kind: str, pairs: list[tuple[str, str]], reason: str | None, actor: str
) -> None:
    now = utcnow()
    append_rows(
        conn,
        identity_constraints,
        [
            {
                "id": new_id("ic"),
                "tenant_id": tenant_id,
                "kind": kind,
                "record_a": a,
                "record_b": b,
                "reason": reason,
                "created_by": actor,
                "created_at": now,
                "revoked_at": None,
            }
            for a, b in pairs
        ],
    )


def _person_of(clusters: dict[str, list[str]], record_id: str) -> str:
    for pid, recs in clusters.items():
        if record_id in recs:
            return pid
    raise NotFound(f"record {record_id!r} belongs to no person; run `medscrm identity run` first")


def merge_persons(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_a: str,
    person_b: str,
    actor: str,
    reason: str | None = None,
) -> ApplyReport:
    """Make two persons one; later runs keep them together (must_link)."""
    clusters = current_clusters(conn, tenant_id)
    for p in (person_a, person_b):
        if p not in clusters:
            raise NotFound(f"person {p!r} not found (or already merged into another)")
    if person_a == person_b:
        raise MedscrmError("person_b: a person cannot be merged with itself")
    _, cannot = constraints(conn, tenant_id)
    a_set, b_set = set(clusters[person_a]), set(clusters[person_b])
    clash = [(x, y) for x, y in cannot if (x in a_set and y in b_set) or (x in b_set and y in a_set)]
    if clash:
        raise MedscrmError(
            f"a do-not-merge decision keeps these apart ({clash[0][0]} ≠ {clash[0][1]}); revoke it first"
        )
    _constrain(conn, tenant_id, "must_link", [(min(a_set), min(b_set))], reason, actor)
    merged = {k: v for k, v in clusters.items() if k not in (person_a, person_b)}
    merged[person_a] = sorted(a_set | b_set)
    rep = apply_clusters(
        conn, tenant_id=tenant_id, clusters=merged, confidence=_manual(merged[person_a]), actor=actor
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="identity.merge",
        object_type="person",
        object_id=person_a,
        detail={"merged": [person_a, person_b], "reason": reason},
    )
    return rep


def unmerge(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    record_ids: list[str],
    actor: str,
    reason: str | None = None,
) -> ApplyReport:
    """Move ``record_ids`` out of ``person_id`` into a new person; later runs keep them apart."""
    clusters = current_clusters(conn, tenant_id)
    if person_id not in clusters:
        raise NotFound(f"person {person_id!r} not found")
    members = set(clusters[person_id])
    moving = set(record_ids)
    if not moving or not moving <= members:
        raise MedscrmError(f"record_ids: give records of {person_id} to split off (it has {len(members)})")
    staying = members - moving
    if not staying:
        raise MedscrmError("record_ids: leave at least one record with the person")
    # must_link decisions between the two sides are revoked; the two sides may not meet again
    c = identity_constraints
    conn.execute(
        c.update()
        .where(
            c.c.tenant_id == tenant_id,
            c.c.kind == "must_link",
            c.c.revoked_at.is_(None),
            sa.or_(
                sa.and_(c.c.record_a.in_(moving), c.c.record_b.in_(staying)),
                sa.and_(c.c.record_a.in_(staying), c.c.record_b.in_(moving)),
            ),
        )
        .values(revoked_at=utcnow())
    )
    _constrain(
        conn,
        tenant_id,
        "cannot_link",
        [(m, s) for m in sorted(moving) for s in sorted(staying)],
        reason,
        actor,
    )
    new = {k: v for k, v in clusters.items() if k != person_id}
    new[person_id] = sorted(staying)
    new[f"split:{min(moving)}"] = sorted(moving)
    rep = apply_clusters(
        conn, tenant_id=tenant_id, clusters=new, confidence=_manual(sorted(moving)), actor=actor
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="identity.unmerge",
        object_type="person",
        object_id=person_id,
        detail={"moved_records": sorted(moving), "reason": reason},
    )
    return rep


def _manual(recs: list[str]) -> dict[str, tuple[float, str]]:
    return {r: (1.0, "manual") for r in recs}


# --- review queue ---------------------------------------------------------------------------------
def queue_pairs(conn: sa.Connection, *, tenant_id: str, pairs: list[dict[str, Any]]) -> int:
    """Add uncertain pairs (record_a, record_b, probability, match_weight, detail) unless already
    open or already decided by a constraint."""
    r = identity_review
    open_pairs = {
        (a, b)
        for a, b in conn.execute(
            sa.select(r.c.record_a, r.c.record_b).where(r.c.tenant_id == tenant_id, r.c.status == "open")
        )
    }
    must, cannot = constraints(conn, tenant_id)
    decided = {tuple(sorted(p)) for p in must + cannot}
    now = utcnow()
    rows = []
    for p in pairs:
        a, b = sorted((p["record_a"], p["record_b"]))
        if (a, b) in open_pairs or (a, b) in decided:
            continue
        open_pairs.add((a, b))
        rows.append(
            {
                "id": new_id("rv"),
                "tenant_id": tenant_id,
                "record_a": a,
                "record_b": b,
                "probability": float(p["probability"]),
                "match_weight": p.get("match_weight"),
                "detail": p.get("detail") or {},
                "status": "open",
                "created_at": now,
                "decided_at": None,
                "decided_by": None,
            }
        )
    append_rows(conn, identity_review, rows)
    return len(rows)


def list_reviews(
    conn: sa.Connection, *, tenant_id: str, status: str = "open", limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    r = identity_review
    rows = [
        dict(x)
        for x in conn.execute(
            sa.select(r)
            .where(r.c.tenant_id == tenant_id, r.c.status == status)
            .order_by(r.c.probability.desc(), r.c.id)
            .limit(limit)
            .offset(offset)
        ).mappings()
    ]
    ids = {x["record_a"] for x in rows} | {x["record_b"] for x in rows}
    recs = records_by_id(conn, tenant_id, ids)
    for x in rows:
        x["a"], x["b"] = recs.get(x["record_a"]), recs.get(x["record_b"])
    return rows


def records_by_id(conn: sa.Connection, tenant_id: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    sr = source_records
    q = (
        sa.select(sr, sources.c.name.label("source"))
        .join(sources, sources.c.id == sr.c.source_id)
        .where(sr.c.tenant_id == tenant_id, sr.c.id.in_(sorted(ids)))
    )
    return {r["id"]: dict(r) for r in conn.execute(q).mappings()}


def decide(
    conn: sa.Connection,
    *,
    tenant_id: str,
    review_id: str,
    decision: str,
    actor: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """``merge``: the two records' persons become one; ``reject``: they are kept apart for good."""
    r = identity_review
    row = conn.execute(sa.select(r).where(r.c.tenant_id == tenant_id, r.c.id == review_id)).mappings().first()
    if not row:
        raise NotFound(f"review {review_id!r} not found")
    if row["status"] != "open":
        raise MedscrmError(f"review {review_id} was already decided: {row['status']}")
    if decision not in ("merge", "reject"):
        raise MedscrmError("decision: use merge or reject")
    result: dict[str, Any] = {"review_id": review_id, "decision": decision}
    if decision == "merge":
        clusters = current_clusters(conn, tenant_id)
        pa_, pb_ = _person_of(clusters, row["record_a"]), _person_of(clusters, row["record_b"])
        if pa_ != pb_:
            big, small = (pa_, pb_) if len(clusters[pa_]) >= len(clusters[pb_]) else (pb_, pa_)
            rep = merge_persons(
                conn, tenant_id=tenant_id, person_a=big, person_b=small, actor=actor, reason=reason
            )
            result["person_id"] = rep.person_of[big]
        else:
            _constrain(conn, tenant_id, "must_link", [(row["record_a"], row["record_b"])], reason, actor)
            result["person_id"] = pa_
    else:
        _constrain(conn, tenant_id, "cannot_link", [(row["record_a"], row["record_b"])], reason, actor)
    conn.execute(
        r.update()
        .where(r.c.id == review_id)
        .values(status="merged" if decision == "merge" else "rejected", decided_at=utcnow(), decided_by=actor)
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=f"identity.review.{decision}",
        object_type="identity_review",
        object_id=review_id,
        detail={"record_a": row["record_a"], "record_b": row["record_b"], "reason": reason},
    )
    return result


def revoke_rejection(
    conn: sa.Connection, *, tenant_id: str, review_id: str, actor: str, reason: str | None = None
) -> dict[str, Any]:
    """Take back a ``reject`` decision: the pair's cannot-link constraint is revoked (later runs may
    link the two records again) and the pair is open for review once more. Audited."""
    r = identity_review
    row = conn.execute(sa.select(r).where(r.c.tenant_id == tenant_id, r.c.id == review_id)).mappings().first()
    if not row:
        raise NotFound(f"review {review_id!r} not found")
    if row["status"] != "rejected":
        raise MedscrmError(f"review {review_id} is {row['status']}: only a rejection can be revoked")
    a, b = row["record_a"], row["record_b"]
    c = identity_constraints
    revoked = conn.execute(
        c.update()
        .where(
            c.c.tenant_id == tenant_id,
            c.c.kind == "cannot_link",
            c.c.revoked_at.is_(None),
            sa.or_(
                sa.and_(c.c.record_a == a, c.c.record_b == b), sa.and_(c.c.record_a == b, c.c.record_b == a)
            ),
        )
        .values(revoked_at=utcnow())
    ).rowcount
    conn.execute(
        r.update().where(r.c.id == review_id).values(status="open", decided_at=None, decided_by=None)
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="identity.review.revoke",
        object_type="identity_review",
        object_id=review_id,
        detail={
            "record_a": a,
            "record_b": b,
            "was": "rejected",
            "decided_by": row["decided_by"],
            "constraints_revoked": revoked,
            "reason": reason,
        },
    )
    return {"review_id": review_id, "status": "open", "constraints_revoked": revoked}
