"""Applying a clustering of source records to the workspace: stable person ids, golden records with
lineage, identities, and the history of what changed. The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.accounts import service as accounts
from medscrm.common import new_id, utcnow
from medscrm.db.bulk import append_rows
from medscrm.db.schema import (
    PERSON_FIELDS,
    identities,
    identity_links,
    person_changes,
    person_records,
    persons,
    source_records,
    sources,
)
from medscrm.ingest.events import forget_identity_cache
from medscrm.persons.stable_ids import assign_ids
from medscrm.persons.survivorship import Survivorship, golden_record, load_survivorship

#: standard fields that are identifiers, and the identity type they become
IDENTIFIER_FIELDS = {
    "phone": "phone",
    "email": "email",
    "license_no": "license_no",
    "wechat_unionid": "wechat_unionid",
    "wecom_external_userid": "wecom_external_userid",
}


@dataclass
class ApplyReport:
    records: int = 0
    persons: int = 0
    created: int = 0
    grown: int = 0
    merged: int = 0
    split: int = 0
    retired: int = 0
    conflicts: int = 0
    person_of: dict[str, str] = field(default_factory=dict)  # cluster key -> person id
    #: consent/do-not-contact rows carried to survivors, sends and journey enrollments moved
    #: (what the subscribers of the ``persons.merged`` event report, see :func:`announce_merges`)
    carried: dict[str, int] = field(default_factory=dict)


def load_records(conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """Every source record of the tenant (the latest version of each key, older versions too: all
    versions belong to the same person), with its source name."""
    sr = source_records
    q = (
        sa.select(
            sr.c.id,
            sr.c.source_id,
            sources.c.name.label("source"),
            sr.c.record_key,
            sr.c.import_id,
            sr.c.received_at,
            sr.c.attributes,
            *[sr.c[f] for f in PERSON_FIELDS],
        )
        .join(sources, sources.c.id == sr.c.source_id)
        .where(sr.c.tenant_id == tenant_id)
        .order_by(sr.c.id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def previous_assignment(conn: sa.Connection, tenant_id: str) -> tuple[dict[str, str], dict[str, int]]:
    rows = conn.execute(
        sa.select(person_records.c.source_record_id, person_records.c.person_id).where(
            person_records.c.tenant_id == tenant_id
        )
    ).all()
    ages = conn.execute(
        sa.select(persons.c.id, persons.c.created_at)
        .where(persons.c.tenant_id == tenant_id)
        .order_by(persons.c.created_at, persons.c.id)
    ).all()
    return {r: p for r, p in rows}, {pid: i for i, (pid, _) in enumerate(ages)}


def apply_clusters(
    conn: sa.Connection,
    *,
    tenant_id: str,
    clusters: dict[str, list[str]],
    confidence: dict[str, tuple[float, str]] | None = None,
    records: list[dict] | None = None,
    survivorship: Survivorship | None = None,
    actor: str = "identity",
) -> ApplyReport:
    """Make ``clusters`` (key -> source record ids) the tenant's persons."""
    cfg = survivorship or load_survivorship()
    confidence = confidence or {}
    records = records if records is not None else load_records(conn, tenant_id)
    by_id = {r["id"]: r for r in records}
    previous, age = previous_assignment(conn, tenant_id)
    assignment = assign_ids(clusters, previous, age=age)
    now = utcnow()
    rep = ApplyReport(
        records=sum(len(v) for v in clusters.values()), persons=len(clusters), person_of=assignment.person_of
    )

    # membership
    conn.execute(person_records.delete().where(person_records.c.tenant_id == tenant_id))
    members: list[dict] = []
    person_recs: dict[str, list[dict]] = defaultdict(list)
    for key, recs in clusters.items():
        pid = assignment.person_of[key]
        for rid in recs:
            conf, rule = confidence.get(rid, (1.0, "singleton" if len(recs) == 1 else "linked"))
            members.append(
                {
                    "id": new_id("pr"),
                    "tenant_id": tenant_id,
                    "person_id": pid,
                    "source_record_id": rid,
                    "confidence": float(conf),
                    "rule": rule,
                    "assigned_at": now,
                }
            )
            if rid in by_id:
                person_recs[pid].append(by_id[rid])
    append_rows(conn, person_records, members)

    # golden records
    rep.conflicts = write_golden(conn, tenant_id=tenant_id, person_recs=person_recs, cfg=cfg, now=now)
    absorbed_by = {old: survivor for survivor, olds in assignment.merged.items() for old in olds}
    for old in assignment.retired:
        conn.execute(
            persons.update()
            .where(persons.c.tenant_id == tenant_id, persons.c.id == old)
            .values(status="merged", merged_into=absorbed_by.get(old), updated_at=now)
        )
    # consent, do-not-contact, sends and journey enrollments of the persons that stop existing or
    # split (PIPL) follow them: the higher layers that own those rows subscribe to this event
    retired = set(assignment.retired)
    rep.carried = announce_merges(
        conn,
        tenant_id=tenant_id,
        merged={o: s for o, s in absorbed_by.items() if o in retired and o not in assignment.split},
        split=assignment.split,  # withdrawals and do-not-contact go to every part, grants do not
        now=now,
        actor=actor,
    )

    rebuild_identities(conn, tenant_id=tenant_id, person_recs=person_recs)

    # history
    changes = []
    for pid in assignment.created:
        changes.append(("created", pid, [], {"records": len(person_recs.get(pid, []))}))
    for pid, n in assignment.grown.items():
        changes.append(("grown", pid, [], {"records_added": n}))
    for pid, olds in assignment.merged.items():
        changes.append(("merged", pid, olds, {"absorbed": olds}))
    for old, targets in assignment.split.items():
        changes.append(("split", old, targets, {"into": targets}))
    append_rows(
        conn,
        person_changes,
        [
            {
                "id": new_id("pc"),
                "tenant_id": tenant_id,
                "occurred_at": now,
                "kind": k,
                "person_id": p,
                "related": rel,
                "detail": d,
                "actor": actor,
            }
            for k, p, rel, d in changes
        ],
    )
    rep.created, rep.grown, rep.merged = (
        len(assignment.created),
        len(assignment.grown),
        len(assignment.merged),
    )
    rep.split, rep.retired = len(assignment.split), len(assignment.retired)
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="identity.apply",
        object_type="tenant",
        object_id=tenant_id,
        detail={k: getattr(rep, k) for k in ("records", "persons", "created", "grown", "merged", "split")},
    )
    return rep


def write_golden(
    conn: sa.Connection, *, tenant_id: str, person_recs: dict[str, list[dict]], cfg: Survivorship, now: Any
) -> int:
    """Golden records of ``person_recs`` (person id -> its records): new persons inserted, existing
    ones updated (and active again). Returns the number of persons with conflicting values."""
    ids = sorted(person_recs)
    created: dict[str, Any] = {}
    for k in range(0, len(ids), 1000):
        created.update(
            conn.execute(
                sa.select(persons.c.id, persons.c.created_at).where(
                    persons.c.tenant_id == tenant_id, persons.c.id.in_(ids[k : k + 1000])
                )
            ).all()
        )
    conflicts = 0
    rows = []
    for pid, recs in person_recs.items():
        g = golden_record(recs, cfg)
        conflicts += bool(g.conflicts)
        rows.append(
            {
                "id": pid,
                "tenant_id": tenant_id,
                "person_type": g.person_type,
                "status": "active",
                "merged_into": None,
                "attributes": g.attributes,
                "lineage": g.lineage,
                "created_at": created.get(pid, now),
                "updated_at": now,
            }
        )
    # existing persons are rewritten in bulk (delete + append keeps their id and created_at): one
    # UPDATE per person is far slower on both engines
    old = sorted(created)
    for k in range(0, len(old), 1000):
        conn.execute(
            persons.delete().where(persons.c.tenant_id == tenant_id, persons.c.id.in_(old[k : k + 1000]))
        )
    append_rows(conn, persons, rows)
    return conflicts


def rebuild_identities(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_recs: dict[str, list[dict]],
    only: set[str] | None = None,
) -> int:
    """identities = every identifier value of every record → its person; event user ids too
    (identify calls are source records keyed by userId), and aliases through identity links.

    ``only``: rebuild just these persons' identities (incremental runs); the others are kept."""
    if only is None:
        conn.execute(identities.delete().where(identities.c.tenant_id == tenant_id))
    else:
        ids = sorted(only)
        for k in range(0, len(ids), 1000):
            conn.execute(
                identities.delete().where(
                    identities.c.tenant_id == tenant_id, identities.c.person_id.in_(ids[k : k + 1000])
                )
            )

    forget_identity_cache(tenant_id)
    now = utcnow()
    rows: dict[tuple[str, str, str], dict] = {}
    user_person: dict[str, str] = {}
    for pid, recs in person_recs.items():
        for r in recs:
            for f, typ in IDENTIFIER_FIELDS.items():
                if r.get(f):
                    rows.setdefault((typ, r[f], pid), {"source_record_id": r["id"]})
            if r.get("import_id") is None and r.get("record_key"):
                typ, val = (
                    ("anonymous_id", r["record_key"][5:])
                    if r["record_key"].startswith("anon:")
                    else ("user_id", r["record_key"])
                )
                rows.setdefault((typ, val, pid), {"source_record_id": r["id"]})
                if typ == "user_id":
                    user_person[val] = pid
    # aliases and WeCom/WeChat links extend known identities to the other side of the link
    known = {(t, v): p for (t, v, p) in rows}
    lk = identity_links
    cols = (lk.c.type_a, lk.c.value_a, lk.c.type_b, lk.c.value_b, lk.c.relation)
    if only is None:
        links = conn.execute(sa.select(*cols).where(lk.c.tenant_id == tenant_id)).all()
    else:
        # only the links touching these persons' values; values other persons already hold stay theirs
        vals = sorted({v for (_t, v) in known})
        links = []
        for k in range(0, len(vals), 500):
            chunk = vals[k : k + 500]
            links.extend(
                conn.execute(
                    sa.select(*cols).where(
                        lk.c.tenant_id == tenant_id, sa.or_(lk.c.value_a.in_(chunk), lk.c.value_b.in_(chunk))
                    )
                ).all()
            )
        others = {v for _ta, va, _tb, vb, _r in links for v in (va, vb)} - set(vals)
        for k in range(0, len(sorted(others)), 500):
            chunk = sorted(others)[k : k + 500]
            for t, v in conn.execute(
                sa.select(identities.c.type, identities.c.value).where(
                    identities.c.tenant_id == tenant_id, identities.c.value.in_(chunk)
                )
            ):
                known.setdefault((t, v), "")
    for ta, va, tb, vb, rel in links:
        if rel == "wecom_contact_of":
            continue  # a rep is not the contact
        for (t1, v1), (t2, v2) in (((ta, va), (tb, vb)), ((tb, vb), (ta, va))):
            pid = known.get((t1, v1))
            if pid and (t2, v2) not in known:
                rows[(t2, v2, pid)] = {"source_record_id": None}
                known[(t2, v2)] = pid
    append_rows(
        conn,
        identities,
        [
            {
                "id": new_id("idn"),
                "tenant_id": tenant_id,
                "type": t,
                "value": v,
                "person_id": p,
                "source_record_id": meta["source_record_id"],
                "created_at": now,
            }
            for (t, v, p), meta in rows.items()
        ],
    )
    return len(rows)


def announce_merges(
    conn: sa.Connection,
    *,
    tenant_id: str,
    merged: dict[str, str],
    split: dict[str, list[str]] | None = None,
    now: dt.datetime,
    actor: str,
) -> dict[str, int]:
    """Tell the layers above that persons were merged (``old -> survivor``) or split (``old -> its
    parts``), in this transaction: they carry consents, do-not-contact, sends and journey
    enrollments over (:mod:`medscrm.hooks`, topic ``persons.merged``). Returns the counts every
    subscriber reported, in one mapping."""
    out: dict[str, int] = {}
    results = hooks.emit(
        hooks.PERSONS_MERGED,
        conn=conn,
        tenant_id=tenant_id,
        merged=merged,
        split=split or {},
        now=now,
        actor=actor,
    )
    for counts in results.values():
        for k, v in (counts or {}).items():
            out[k] = out.get(k, 0) + v
    return out
