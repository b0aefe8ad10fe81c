"""Incremental ``identity run``: link the source records that belong to no person yet (new imports,
identify calls) into the tenant's persons without a full recompute.

What a full run leaves behind makes this possible: the trained match models (the model file of
:func:`medscrm.identity.model.model_path`) and the **feature index** beside it — the feature rows of
every resolved record as the engine scored them plus the identifier values found shared
(:class:`FeatureStore`, Parquet parts in ``<model file>.index/``). The index is a cache: records
resolved by a run whose features are missing are recomputed and added; rows of records that no
longer belong to a person are ignored; without it (or without a model) the caller runs a full
resolution.

Only the touched persons change: person_records of the new records (and of persons absorbed when a
new record joins two persons), golden records and identities of the touched persons, person_changes
rows, the review queue. People's constraints are respected (see
:class:`medscrm.identity.incremental.IncrementalLinker`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import new_id, utcnow
from medscrm.db.bulk import append_rows
from medscrm.db.schema import PERSON_FIELDS, person_changes, person_records, persons, source_records, sources
from medscrm.identity.features import build_features
from medscrm.identity.hospitals import HospitalIndex, load_extra_aliases
from medscrm.identity.incremental import IncrementalLinker, LinkResult
from medscrm.identity.model import MatchModel
from medscrm.metrics import timed_identity_run
from medscrm.persons import review
from medscrm.persons.engine import FeatureStore, engine_table, index_dir_for
from medscrm.persons.service import (
    ApplyReport,
    announce_merges,
    previous_assignment,
    rebuild_identities,
    write_golden,
)
from medscrm.persons.survivorship import Survivorship, load_survivorship

__all__ = ["FeatureStore", "IncrementalReport", "index_dir_for", "run_incremental"]

_CHUNK = 1000


@dataclass
class IncrementalReport(ApplyReport):
    new_records: int = 0
    attached: int = 0  # new records that joined an existing person
    catch_up_features: int = 0  # resolved records whose features were recomputed for the index
    review_pairs: int = 0
    refused_links: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _records_query(tenant_id: str):
    sr = source_records
    return (
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
    )


def new_records(conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """Source records of the tenant that belong to no person yet."""
    pr = person_records
    linked = sa.exists().where(pr.c.tenant_id == tenant_id, pr.c.source_record_id == source_records.c.id)
    q = _records_query(tenant_id).where(~linked).order_by(source_records.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def records_by_ids(conn: sa.Connection, tenant_id: str, ids: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ids = sorted(set(ids))
    for k in range(0, len(ids), _CHUNK):
        q = _records_query(tenant_id).where(source_records.c.id.in_(ids[k : k + _CHUNK]))
        out.extend(dict(r) for r in conn.execute(q).mappings())
    return out


def _load_models(model_file: Path) -> dict:
    try:
        data = json.loads(Path(model_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    models = data.get("models") if isinstance(data, dict) and "models" in data else None
    if not isinstance(models, dict):
        return {}
    return {k: MatchModel.from_json(v) for k, v in models.items()}


@timed_identity_run("incremental")
def run_incremental(
    conn: sa.Connection,
    *,
    tenant_id: str,
    model_file: Path,
    index_dir: Path | None = None,
    survivorship: Survivorship | None = None,
    actor: str = "identity",
) -> IncrementalReport | None:
    """Link the tenant's unlinked source records into its persons. Returns None when there is no
    previous run to build on (no persons, no saved model or no feature index): run in full."""

    t0 = time.perf_counter()
    secs: dict[str, float] = {}
    store = FeatureStore(index_dir or index_dir_for(Path(model_file)))
    models = _load_models(model_file)
    if not models or not store.exists():
        return None
    assignment, age = previous_assignment(conn, tenant_id)
    if not assignment:
        return None
    fresh = new_records(conn, tenant_id)
    secs["load"] = round(time.perf_counter() - t0, 3)
    rep = IncrementalReport(new_records=len(fresh))
    if not fresh:
        rep.seconds = secs
        return rep

    t = time.perf_counter()
    linker = _build_linker(conn, tenant_id, models, store, assignment, rep)
    secs["index"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    must, cannot = review.constraints(conn, tenant_id)
    lr = linker.link(
        pd.DataFrame(engine_table(fresh)), cannot=cannot, must=must, mint=lambda _u: new_id("per"), age=age
    )
    secs["link"] = round(time.perf_counter() - t, 3)

    # apply to the touched persons only
    t = time.perf_counter()
    now = utcnow()
    _attach_records(conn, tenant_id, lr, now)
    absorbed = {old: surv for surv, olds in lr.merged.items() for old in olds}
    _retire_absorbed(conn, tenant_id, absorbed, now)
    # consent, do-not-contact, sends and journey enrollments follow the merged persons (PIPL)
    rep.carried = announce_merges(conn, tenant_id=tenant_id, merged=absorbed, now=now, actor=actor)
    touched = sorted(lr.touched)
    person_recs = _records_of_persons(conn, tenant_id, touched, fresh)
    cfg = survivorship or load_survivorship()
    rep.conflicts = write_golden(conn, tenant_id=tenant_id, person_recs=person_recs, cfg=cfg, now=now)
    rebuild_identities(conn, tenant_id=tenant_id, person_recs=person_recs, only=set(touched) | set(absorbed))
    _log_changes(conn, tenant_id, lr, person_recs, now, actor)
    rep.review_pairs = review.queue_pairs(conn, tenant_id=tenant_id, pairs=lr.review)
    _fill_report(rep, lr, assignment, len(fresh), absorbed)
    _audit(conn, tenant_id, rep, actor)
    store.append(lr.features, lr.shared)
    secs["apply"] = round(time.perf_counter() - t, 3)
    secs["total"] = round(time.perf_counter() - t0, 3)
    rep.seconds = secs
    return rep


def _build_linker(
    conn: sa.Connection,
    tenant_id: str,
    models: dict[str, MatchModel],
    store: FeatureStore,
    assignment: dict[str, str],
    rep: IncrementalReport,
) -> IncrementalLinker:
    """The index of resolved records: features from the store, the missing ones recomputed (and
    added to the store)."""

    settings = next(iter(models.values())).settings
    extra = load_extra_aliases(settings["hospital_aliases"]) if settings.get("hospital_aliases") else []
    hidx = HospitalIndex(extra)
    feats = store.read()
    if len(feats):
        feats = feats[feats["unique_id"].isin(assignment.keys())]
    have = set(feats["unique_id"]) if len(feats) else set()
    missing = [r for r in assignment if r not in have]
    if missing:
        recs = records_by_ids(conn, tenant_id, missing)
        extra_feats, _ = build_features(pd.DataFrame(engine_table(recs)), hidx)
        store.append(extra_feats, [])
        feats = pd.concat([feats, extra_feats], ignore_index=True) if len(feats) else extra_feats
        rep.catch_up_features = len(extra_feats)
    linker = IncrementalLinker(models, hospitals=hidx)
    linker.load(feats, assignment, store.shared())
    return linker


def _attach_records(conn: sa.Connection, tenant_id: str, lr: LinkResult, now: dt.datetime) -> None:
    """A person_records row for each newly linked record."""
    append_rows(
        conn,
        person_records,
        [
            {
                "id": new_id("pr"),
                "tenant_id": tenant_id,
                "person_id": pid,
                "source_record_id": rid,
                "confidence": float(lr.confidence.get(rid, (1.0, "incremental"))[0]),
                "rule": lr.confidence.get(rid, (1.0, "incremental"))[1],
                "assigned_at": now,
            }
            for rid, pid in lr.person_of.items()
        ],
    )


def _retire_absorbed(conn: sa.Connection, tenant_id: str, absorbed: dict[str, str], now: dt.datetime) -> None:
    """Absorbed persons: their records move to the survivor, they are marked merged (one statement
    per chunk, a CASE maps each absorbed id to its survivor)."""
    olds = sorted(absorbed)
    for k in range(0, len(olds), 500):
        chunk = olds[k : k + 500]
        to = sa.case({o: absorbed[o] for o in chunk}, value=person_records.c.person_id)
        conn.execute(
            person_records.update()
            .where(person_records.c.tenant_id == tenant_id, person_records.c.person_id.in_(chunk))
            .values(person_id=to)
        )
        conn.execute(
            persons.update()
            .where(persons.c.tenant_id == tenant_id, persons.c.id.in_(chunk))
            .values(
                status="merged",
                merged_into=sa.case({o: absorbed[o] for o in chunk}, value=persons.c.id),
                updated_at=now,
            )
        )


def _records_of_persons(
    conn: sa.Connection, tenant_id: str, touched: list[str], fresh: list[dict[str, Any]]
) -> dict[str, list[dict]]:
    """Every source record of the touched persons, by person (the new ones are already read)."""
    member_rows: list[tuple[str, str]] = []
    for k in range(0, len(touched), _CHUNK):
        member_rows.extend(
            conn.execute(
                sa.select(person_records.c.source_record_id, person_records.c.person_id).where(
                    person_records.c.tenant_id == tenant_id,
                    person_records.c.person_id.in_(touched[k : k + _CHUNK]),
                )
            ).all()
        )
    by_id = {r["id"]: r for r in fresh}
    need = [rid for rid, _ in member_rows if rid not in by_id]
    by_id.update({r["id"]: r for r in records_by_ids(conn, tenant_id, need)})
    person_recs: dict[str, list[dict]] = defaultdict(list)
    for rid, pid in member_rows:
        if rid in by_id:
            person_recs[pid].append(by_id[rid])
    return person_recs


def _log_changes(
    conn: sa.Connection,
    tenant_id: str,
    lr: LinkResult,
    person_recs: dict[str, list[dict]],
    now: dt.datetime,
    actor: str,
) -> None:
    """person_changes rows: persons created, grown and merged by this run."""
    changes = [
        ("created", p, [], {"records": len(person_recs.get(p, [])), "incremental": True}) for p in lr.created
    ]
    changes += [("grown", p, [], {"records_added": n, "incremental": True}) for p, n in lr.grown.items()]
    changes += [("merged", p, olds, {"absorbed": olds, "incremental": True}) for p, olds in lr.merged.items()]
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


def _fill_report(
    rep: IncrementalReport, lr: LinkResult, assignment: dict[str, str], n_fresh: int, absorbed: dict[str, str]
) -> None:
    rep.records = len(assignment) + n_fresh
    rep.persons = len(set(assignment.values()) - set(absorbed)) + len(lr.created)
    rep.created, rep.grown, rep.merged = len(lr.created), len(lr.grown), len(lr.merged)
    rep.retired = len(absorbed)
    rep.attached = sum(lr.grown.values())
    rep.refused_links = len(lr.refused)
    rep.person_of = dict(lr.person_of)


def _audit(conn: sa.Connection, tenant_id: str, rep: IncrementalReport, actor: str) -> None:
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="identity.incremental",
        object_type="tenant",
        object_id=tenant_id,
        detail={
            "new_records": rep.new_records,
            "attached": rep.attached,
            "created": rep.created,
            "merged": rep.merged,
            "review_pairs": rep.review_pairs,
        },
    )
