"""Batch refresh of behaviour tags and scores, and reads for profiles, the API and the console.

Keyword-only functions; the caller owns the transaction. Every tag change goes through
``medscrm.tags.service`` (definitions of category ``behaviour_model``, ``tag_history`` with the reason).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from medscrm.common import utcnow
from medscrm.db.bulk import analyze, append_rows, worth_bulk
from medscrm.db.query import in_ids, in_pairs
from medscrm.db.schema import micro_segments, person_scores, person_tags
from medscrm.scores import features
from medscrm.scores.config import get_config
from medscrm.scores.definitions import ensure_definitions, lock_tenant
from medscrm.scores.micro import feature_rows, refresh_micro
from medscrm.scores.model import (
    REALTIME_TAGS,
    SCORES,
    STAGE_TAGS,
    Outcome,
    derive,
    hide_prescription_detail,
    stage_from_tags,
)
from medscrm.tags import service as tags


def _chunks(items: list, n: int = 5000):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def compute_outcomes(
    conn: sa.Connection,
    *,
    tenant_id: str,
    now: dt.datetime,
    cfg: dict[str, Any],
    person_ids: list[str] | None = None,
) -> dict[str, Outcome]:
    feats = features.compute(conn, tenant_id=tenant_id, cfg=cfg, now=now, person_ids=person_ids)
    return derive_all(feats, cfg, now)


def derive_all(
    feats: dict[str, features.PersonFeatures], cfg: dict[str, Any], now: dt.datetime
) -> dict[str, Outcome]:
    return {pid: derive(f, cfg, now) for pid, f in sorted(feats.items())}


def apply(
    conn: sa.Connection,
    *,
    tenant_id: str,
    outcomes: dict[str, Outcome],
    now: dt.datetime,
    mode: str,
    whole_tenant: bool,
    id_range: features.IdRange | None = None,
) -> dict[str, Any]:
    """Write what changed: tags (with history and reasons) and scores. ``whole_tenant``: ``outcomes``
    covers every scored person (of ``id_range``, when given): other persons there (merged away, no
    longer scored) lose the model's tags and scores."""
    ensure_definitions(conn, tenant_id=tenant_id, now=now)
    pids = list(outcomes)
    pt, ps = person_tags, person_scores
    cur_tags: dict[tuple[str, str], str | None] = {}
    cur_scores: dict[tuple[str, str], float] = {}
    tq = sa.select(pt.c.person_id, pt.c.tag_key, pt.c.value).where(
        pt.c.tenant_id == tenant_id, pt.c.tag_key.in_(REALTIME_TAGS)
    )
    sq = sa.select(ps.c.person_id, ps.c.score_key, ps.c.value).where(
        ps.c.tenant_id == tenant_id, ps.c.score_key.in_(list(SCORES))
    )
    if whole_tenant:
        tq = tq.where(*features.person_filter(pt.c.person_id, None, id_range))
        sq = sq.where(*features.person_filter(ps.c.person_id, None, id_range))
        cur_tags.update(((p, k), v) for p, k, v in conn.execute(tq).all())
        cur_scores.update(((p, k), v) for p, k, v in conn.execute(sq).all())
    else:
        for chunk in _chunks(pids):
            cur_tags.update(
                ((p, k), v) for p, k, v in conn.execute(tq.where(in_ids(pt.c.person_id, chunk))).all()
            )
            cur_scores.update(
                ((p, k), v) for p, k, v in conn.execute(sq.where(in_ids(ps.c.person_id, chunk))).all()
            )
    changed: set[str] = set()
    base_reason = {"model": "behaviour", "refresh": mode, "at": now.isoformat()}
    tag_values: dict[str, dict[str, str | None]] = {}
    tag_reasons: dict[str, dict[str, Any]] = {}
    for key in REALTIME_TAGS:
        values: dict[str, str | None] = {}
        reasons: dict[str, Any] = {}
        for pid, o in outcomes.items():
            v, reason = o.tags[key]
            if cur_tags.get((pid, key)) != v:
                values[pid] = v
                reasons[pid] = {**base_reason, **reason}
        if whole_tenant:
            for pid, k in cur_tags:
                if k == key and pid not in outcomes:
                    values[pid] = None
                    reasons[pid] = {**base_reason, "text_en": "no longer scored", "text_zh": "不再参与评分"}
        if values:
            changed.update(values)
            tag_values[key], tag_reasons[key] = values, reasons
    # every tag in one go (the definitions exist: ensure_definitions above)
    tag_stats = tags.write_tag_changes(
        conn,
        tenant_id=tenant_id,
        changes=tag_values,
        current=cur_tags,
        source="model",
        reason=base_reason,
        reasons=tag_reasons,
        now=now,
    )
    new_rows: list[dict[str, Any]] = []
    stale: dict[str, list[str]] = {}
    for pid, o in outcomes.items():
        for key, (value, reason) in o.scores.items():
            old = cur_scores.get((pid, key))
            if old is not None and abs(old - value) < 1e-7:
                continue
            changed.add(pid)
            if old is not None:
                stale.setdefault(key, []).append(pid)
            new_rows.append(
                {
                    "tenant_id": tenant_id,
                    "person_id": pid,
                    "score_key": key,
                    "value": value,
                    "computed_at": now,
                    "reason": reason,
                }
            )
    if whole_tenant:
        for pid, key in cur_scores:
            if pid not in outcomes:
                stale.setdefault(key, []).append(pid)
                changed.add(pid)
    # the replaced or dropped (person, score) rows: one DELETE, not one per score
    gone = [(pid, key) for key, who in stale.items() for pid in who]
    for chunk in _chunks(gone):
        conn.execute(
            sa.delete(ps).where(ps.c.tenant_id == tenant_id, in_pairs(ps.c.person_id, ps.c.score_key, chunk))
        )
    if worth_bulk(conn, len(new_rows)):
        append_rows(conn, ps, new_rows)
    elif new_rows:
        conn.execute(sa.insert(ps), new_rows)
    return {
        "persons": len(outcomes),
        "changed": len(changed),
        "tags": tag_stats,
        "scores_written": len(new_rows),
    }


def refresh_all(
    conn: sa.Connection,
    *,
    tenant_id: str,
    now: dt.datetime | None = None,
    config: str | Path | None = None,
    micro: bool = False,
    k: int | None = None,
    chunk: int = 20_000,
) -> dict[str, Any]:
    """Recompute every scored person's behaviour tags and scores (the scheduled refresh), in
    the caller's transaction. With ``micro``, also re-cluster the micro-segments. Persons are processed
    in id ranges of about ``chunk`` (memory stays bounded on big tenants). Returns counts, what changed
    and distributions. A big tenant on DuckDB needs :func:`refresh_all_committed` (one transaction per
    range): one transaction of a million persons' tag changes outgrew DuckDB's memory limit."""
    t0 = time.perf_counter()
    now = now or utcnow()
    cfg = get_config(config)
    lock_tenant(conn, tenant_id=tenant_id)
    out = _new_totals()
    micro_rows: dict[str, dict[str, float]] = {}
    for id_range in features.id_ranges(conn, tenant_id=tenant_id, cfg=cfg, size=chunk):
        _refresh_range(conn, tenant_id, cfg, now, id_range, out, micro_rows if micro else None)
    return _finish(conn, tenant_id, now, config, micro, k, micro_rows, out, t0)


def refresh_all_committed(
    engine: sa.Engine,
    *,
    tenant_id: str,
    now: dt.datetime | None = None,
    config: str | Path | None = None,
    micro: bool = False,
    k: int | None = None,
    chunk: int = 20_000,
    last: Any = None,
) -> dict[str, Any]:
    """:func:`refresh_all` with a transaction (and the tenant's lock) per id range, then one for the
    statistics, micro-segments and distributions — bounded memory and short locks on big tenants
    (real-time refreshes run between ranges). ``last(conn, result)``: called in the final
    transaction (e.g. to record the run in the audit log)."""
    t0 = time.perf_counter()
    now = now or utcnow()
    cfg = get_config(config)
    out = _new_totals()
    micro_rows: dict[str, dict[str, float]] = {}
    with engine.connect() as conn:
        ranges = features.id_ranges(conn, tenant_id=tenant_id, cfg=cfg, size=chunk)
    for id_range in ranges:
        with engine.begin() as conn:
            lock_tenant(conn, tenant_id=tenant_id)
            _refresh_range(conn, tenant_id, cfg, now, id_range, out, micro_rows if micro else None)
    with engine.begin() as conn:
        res = _finish(conn, tenant_id, now, config, micro, k, micro_rows, out, t0)
        if last is not None:
            last(conn, res)
    return res


def _new_totals() -> dict[str, Any]:
    return {"persons": 0, "changed": 0, "tags": {}, "scores_written": 0, "chunks": 0}


def _refresh_range(
    conn: sa.Connection,
    tenant_id: str,
    cfg: dict[str, Any],
    now: dt.datetime,
    id_range: features.IdRange,
    out: dict[str, Any],
    micro_rows: dict[str, dict[str, float]] | None,
) -> None:
    """One id range of the batch: features, outcomes, writes; adds its counts to ``out``."""
    feats = features.compute(conn, tenant_id=tenant_id, cfg=cfg, now=now, id_range=id_range)
    res = apply(
        conn,
        tenant_id=tenant_id,
        outcomes=derive_all(feats, cfg, now),
        now=now,
        mode="scheduled",
        whole_tenant=True,
        id_range=id_range,
    )
    out["chunks"] += 1
    for key in ("persons", "changed", "scores_written"):
        out[key] += res[key]
    for key, st in res["tags"].items():
        acc = out["tags"].setdefault(key, {"added": 0, "changed": 0, "removed": 0})
        for k2, v in st.items():
            acc[k2] += v
    if micro_rows is not None:
        micro_rows.update(feature_rows(feats, cfg, now))


def _finish(
    conn: sa.Connection,
    tenant_id: str,
    now: dt.datetime,
    config: str | Path | None,
    micro: bool,
    k: int | None,
    micro_rows: dict[str, dict[str, float]],
    out: dict[str, Any],
    t0: float,
) -> dict[str, Any]:
    if worth_bulk(conn, out["persons"]):
        analyze(conn, person_tags, person_scores)
    if micro:
        out["micro_segments"] = refresh_micro(
            conn, tenant_id=tenant_id, now=now, config=config, k=k, rows=micro_rows
        )
    out["distributions"] = distributions(conn, tenant_id=tenant_id)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# --- reads ------------------------------------------------------------------------------------------

DISTRIBUTION_TAGS = (
    "potential_tier",
    "aipl",
    "lifecycle",
    "activity_level",
    "academic_interest",
    "content_preference",
    "channel_preference",
    "time_preference",
    "weekday_preference",
    "treatment_concept",
    "micro_segment",
)


def score_histogram(
    conn: sa.Connection, *, tenant_id: str, score_key: str, bucket: int = 10
) -> dict[str, Any]:
    """Counts per bucket of ``bucket`` points (0–9, 10–19, … 90–100) and the mean."""
    ps = person_scores
    b = sa.func.least(sa.func.floor(ps.c.value / bucket), 100 // bucket - 1).label("b")
    where = (ps.c.tenant_id == tenant_id, ps.c.score_key == score_key)
    rows = conn.execute(sa.select(b, sa.func.count()).where(*where).group_by(b).order_by(b)).all()
    mean = conn.execute(sa.select(sa.func.avg(ps.c.value)).where(*where)).scalar()
    buckets = {f"{int(x) * bucket}-{int(x) * bucket + bucket - 1}": int(n) for x, n in rows if x is not None}
    return {
        "buckets": buckets,
        "count": sum(buckets.values()),
        "mean": None if mean is None else round(float(mean), 2),
    }


def distributions(conn: sa.Connection, *, tenant_id: str) -> dict[str, Any]:
    """Counts per value of the model's tags and histograms of the scores (the console's dashboard)."""
    return {
        "tags": {k: tags.distribution(conn, tenant_id=tenant_id, tag_key=k) for k in DISTRIBUTION_TAGS},
        "scores": {
            k: score_histogram(conn, tenant_id=tenant_id, score_key=k) for k in ("lead_score", "engagement")
        },
    }


def scores_of(
    conn: sa.Connection, *, tenant_id: str, person_id: str, prescriptions: bool = True
) -> dict[str, dict[str, Any]]:
    """The person's scores: ``{key: {value, computed_at, reason}}``; without ``prescriptions`` the
    reasons lose per-HCP prescription detail."""
    ps = person_scores
    rows = conn.execute(
        sa.select(ps.c.score_key, ps.c.value, ps.c.computed_at, ps.c.reason).where(
            ps.c.tenant_id == tenant_id, ps.c.person_id == person_id
        )
    ).all()
    return {
        k: {
            "value": v,
            "computed_at": at,
            "reason": reason if prescriptions else hide_prescription_detail(reason),
        }
        for k, v, at, reason in sorted(rows)
    }


def stage_of(conn: sa.Connection, *, tenant_id: str, person_id: str) -> dict[str, Any]:
    """``{lifecycle, aipl, potential_tier, micro_segment}`` from the person's tags (None where absent)."""
    pt = person_tags
    got = dict(
        conn.execute(
            sa.select(pt.c.tag_key, pt.c.value).where(
                pt.c.tenant_id == tenant_id, pt.c.person_id == person_id, pt.c.tag_key.in_(STAGE_TAGS)
            )
        ).all()
    )
    return stage_from_tags(got)


def list_micro_segments(conn: sa.Connection, *, tenant_id: str) -> list[dict[str, Any]]:
    m = micro_segments
    rows = conn.execute(sa.select(m).where(m.c.tenant_id == tenant_id)).mappings().all()
    return sorted(
        (dict(r) for r in rows), key=lambda r: int(r["label"][2:]) if r["label"][2:].isdigit() else 0
    )
