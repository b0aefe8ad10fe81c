"""`medscrm identity run`: resolve every source record of the tenant into persons.

The matching engine (:mod:`medscrm.identity`) scores and clusters the records; this module applies
people's constraints (must_link / cannot_link), queues the uncertain pairs for review, and makes the
result the tenant's persons with stable ids and golden records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from medscrm.db.bulk import analyze, worth_bulk
from medscrm.db.schema import identities, person_records, persons
from medscrm.metrics import timed_identity_run
from medscrm.persons import review
from medscrm.persons.constraints import constrained_clusters
from medscrm.persons.service import ApplyReport, apply_clusters, load_records
from medscrm.persons.survivorship import Survivorship


@dataclass
class EngineResult:
    """What the matching engine hands back, in the engine-neutral form this module needs."""

    clusters: dict[str, list[str]]  # cluster key -> record ids
    links: list[tuple[str, str, float]]  # accepted pairwise links (a, b, probability)
    review: list[dict[str, Any]]  # uncertain pairs: record_a, record_b, probability, match_weight, detail
    confidence: dict[str, tuple[float, str]] = field(default_factory=dict)  # record -> (confidence, rule)
    summary: dict[str, Any] = field(default_factory=dict)


def respect_constraints(
    result: EngineResult,
    must: list[tuple[str, str]],
    cannot: list[tuple[str, str]],
) -> dict[str, list[str]]:
    """Keep the engine's clusters, except where a person decided otherwise: clusters holding a
    cannot_link pair are rebuilt from their own links without it; must_link pairs join clusters."""
    if not must and not cannot:
        return result.clusters
    cluster_of = {r: k for k, rs in result.clusters.items() for r in rs}
    bad = {cluster_of[a] for a, b in cannot if a in cluster_of and cluster_of.get(b) == cluster_of[a]}
    out: dict[str, list[str]] = {k: v for k, v in result.clusters.items() if k not in bad}
    if bad:
        members = {r for k in bad for r in result.clusters[k]}
        inner = [(a, b, p) for a, b, p in result.links if a in members and b in members]
        out.update(constrained_clusters(sorted(members), inner, cannot=cannot))
    if must:
        # join whole clusters along must_link pairs (respecting cannot_link between the joined groups)
        cluster_of = {r: k for k, rs in out.items() for r in rs}
        keys = sorted(out)
        links = [(cluster_of[a], cluster_of[b], 1.0) for a, b in must if a in cluster_of and b in cluster_of]
        cannot_k = [(cluster_of[a], cluster_of[b]) for a, b in cannot if a in cluster_of and b in cluster_of]
        grouped = constrained_clusters(keys, links, cannot=cannot_k, strong=0.0)
        out = {g[0]: sorted(r for k in g for r in out[k]) for g in grouped.values()}
    return out


@timed_identity_run("full")
def run_identity(
    conn: sa.Connection,
    *,
    tenant_id: str,
    resolve,
    survivorship: Survivorship | None = None,
    actor: str = "identity",
) -> tuple[ApplyReport, EngineResult, int]:
    """``resolve(records) -> EngineResult`` is the matching engine. Returns the apply report, the
    engine result and the number of pairs queued for review."""
    records = load_records(conn, tenant_id)
    result: EngineResult = resolve(records)
    must, cannot = review.constraints(conn, tenant_id)
    clusters = respect_constraints(result, must, cannot)
    cluster_of = {r: k for k, rs in clusters.items() for r in rs}
    # a pair is worth a person's look only while its two records are in different persons
    queued = review.queue_pairs(
        conn,
        tenant_id=tenant_id,
        pairs=[p for p in result.review if cluster_of.get(p["record_a"]) != cluster_of.get(p["record_b"])],
    )
    rep = apply_clusters(
        conn,
        tenant_id=tenant_id,
        clusters=clusters,
        confidence=result.confidence,
        records=records,
        survivorship=survivorship,
        actor=actor,
    )
    if worth_bulk(conn, len(records)):
        analyze(conn, persons, person_records, identities)
    return rep, result, queued
