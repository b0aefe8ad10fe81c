"""Micro-segments (微分群): k-means on standardised behaviour features, each cluster described by
what sets it apart from the whole population (zh and en).

Who: scored persons with at least one event in the history window (the others have no behaviour to
cluster and get no ``micro_segment`` tag). Features (per person): the share of each therapy area,
channel and time of day in the recency- and engagement-weighted preference mix, the weekend share,
events in the preference window (log-scaled for the clustering), engagement score, academic points,
whether they converted, days since the last event. Labels ``ms1…msk`` go by size, largest first.
The tag ``micro_segment`` (scheduled) is usable in segment rules: ``{"tag": "micro_segment", "op":
"eq", "value": "ms2"}``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from medscrm.common import InvalidInput, utcnow
from medscrm.db.schema import micro_segments, person_tags
from medscrm.scores import features
from medscrm.scores.config import get_config
from medscrm.scores.definitions import ensure_definitions, lock_tenant
from medscrm.scores.model import CHANNEL_ZH, SLOT_ZH
from medscrm.tags import service as tags


def feature_specs(cfg: dict[str, Any]) -> list[dict[str, str]]:
    """(key, name_zh, name_en, kind) of each feature; kind 'share' prints as %, else as a number."""
    specs = [
        {"key": f"area:{a}", "zh": f"{a}内容占比", "en": f"{a} content share", "kind": "share"}
        for a in cfg["therapy_areas"]
    ]
    specs += [
        {
            "key": f"channel:{c}",
            "zh": f"{CHANNEL_ZH.get(c, c)}渠道占比",
            "en": f"{c} channel share",
            "kind": "share",
        }
        for c in cfg["channels"]
    ]
    specs += [
        {"key": f"slot:{s}", "zh": f"{SLOT_ZH.get(s, s)}时段占比", "en": f"{s} share", "kind": "share"}
        for s in cfg["time_slots"]
    ]
    specs += [
        {"key": "weekend", "zh": "周末行为占比", "en": "weekend share", "kind": "share"},
        {"key": "events", "zh": "近90天行为次数", "en": "events in 90 days", "kind": "count"},
        {"key": "engagement", "zh": "互动评分", "en": "engagement score", "kind": "count"},
        {"key": "academic", "zh": "学术兴趣分", "en": "academic points", "kind": "count"},
        {"key": "converted", "zh": "已转化比例", "en": "converted share", "kind": "share"},
        {"key": "recency", "zh": "距最近行为天数", "en": "days since last event", "kind": "count"},
    ]
    return specs


def _row(f: features.PersonFeatures, cfg: dict[str, Any], now: dt.datetime) -> dict[str, float]:
    out: dict[str, float] = {}
    for dim, prefix, values in (
        ("therapy_area", "area", cfg["therapy_areas"]),
        ("channel", "channel", cfg["channels"]),
        ("time_slot", "slot", list(cfg["time_slots"])),
    ):
        mix = {d["value"]: d["w"] for d in f.dims.get(dim, [])}
        total = sum(mix.values())
        for v in values:
            out[f"{prefix}:{v}"] = (mix.get(v, 0.0) / total) if total > 0 else 0.0
    out["weekend"] = f.weekend_w / f.preference_w if f.preference_w > 0 else 0.0
    out["events"] = float(f.n_preference)
    out["engagement"] = 100 * (1 - math.exp(-f.engagement_points / cfg["scores"]["engagement"]["scale"]))
    out["academic"] = f.academic_points
    out["converted"] = 1.0 if f.conversions_history > 0 else 0.0
    out["recency"] = (
        (now - f.last_ts).total_seconds() / 86400 if f.last_ts else float(cfg["windows"]["history"])
    )
    return out


def feature_rows(
    feats: dict[str, features.PersonFeatures], cfg: dict[str, Any], now: dt.datetime
) -> dict[str, dict[str, float]]:
    """The clustering features of the persons with behaviour (at least one event in the history window)."""
    return {p: _row(f, cfg, now) for p, f in feats.items() if f.n_history > 0}


def _fmt(v: float, kind: str) -> str:
    return f"{v:.0%}" if kind == "share" else f"{v:.1f}"


def describe(
    z: np.ndarray, means: np.ndarray, pop: np.ndarray, specs: list[dict[str, str]], top: int, min_z: float
) -> tuple[str, str, list[dict[str, Any]]]:
    order = sorted(range(len(specs)), key=lambda i: (-abs(z[i]), specs[i]["key"]))
    picked = [i for i in order if abs(z[i]) >= min_z][:top] or order[:1]
    feats, zh, en = [], [], []
    for i in picked:
        s = specs[i]
        up = z[i] > 0
        m, p = _fmt(float(means[i]), s["kind"]), _fmt(float(pop[i]), s["kind"])
        zh.append(f"{s['zh']}{'高' if up else '低'}（{m}，总体 {p}）")
        en.append(f"{'higher' if up else 'lower'} {s['en']} ({m} vs {p} overall)")
        feats.append(
            {
                "feature": s["key"],
                "name_zh": s["zh"],
                "name_en": s["en"],
                "z": round(float(z[i]), 3),
                "mean": round(float(means[i]), 4),
                "population_mean": round(float(pop[i]), 4),
            }
        )
    return "；".join(zh), "; ".join(en), feats


def refresh_micro(
    conn: sa.Connection,
    *,
    tenant_id: str,
    k: int | None = None,
    now: dt.datetime | None = None,
    config: str | Path | None = None,
    rows: dict[str, dict[str, float]] | None = None,
    chunk: int = 20_000,
) -> list[dict[str, Any]]:
    """Re-cluster the tenant's persons into ``k`` micro-segments; store descriptions and the
    ``micro_segment`` tag (history with the segment's description as the reason). Returns the
    descriptions (label, size, description_zh/en, top_features). ``rows``: :func:`feature_rows` already
    computed for the same ``now`` and configuration (the batch passes its own)."""
    # lazy: off the server's start-up path

    from sklearn.cluster import KMeans

    # lazy: off the server's start-up path
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    now = now or utcnow()
    cfg = get_config(config)
    mcfg = cfg["micro_segments"]
    k = int(k or mcfg["k"])
    if not 2 <= k <= 50:
        raise InvalidInput("k", "must be from 2 to 50")
    lock_tenant(conn, tenant_id=tenant_id)
    ensure_definitions(conn, tenant_id=tenant_id, now=now)
    if rows is None:
        rows = {}
        for id_range in features.id_ranges(conn, tenant_id=tenant_id, cfg=cfg, size=chunk):
            feats = features.compute(conn, tenant_id=tenant_id, cfg=cfg, now=now, id_range=id_range)
            rows.update(feature_rows(feats, cfg, now))
    specs = feature_specs(cfg)
    pids = sorted(rows)
    keys = [s["key"] for s in specs]
    raw = np.array([[rows[p][k] for k in keys] for p in pids], dtype=float).reshape(len(pids), len(specs))
    conn.execute(sa.delete(micro_segments).where(micro_segments.c.tenant_id == tenant_id))
    out: list[dict[str, Any]] = []
    assignment: dict[str, str] = {}
    reasons: dict[str, Any] = {}
    if len(pids) >= 2:
        X = raw.copy()
        for j, s in enumerate(specs):  # counts are heavy-tailed: cluster on log scale
            if s["key"] in ("events", "academic"):
                X[:, j] = np.log1p(X[:, j])
        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
        # each group of shares (therapy areas, channels, times of day) weighs like two features in the
        # distance, so that no group dominates the clustering by its number of columns
        groups: dict[str, list[int]] = {}
        for j, s in enumerate(specs):
            groups.setdefault(s["key"].split(":")[0], []).append(j)
        G = Z.copy()
        for cols in groups.values():
            G[:, cols] /= math.sqrt(max(1.0, len(cols) / 2))
        n_distinct = len({tuple(r) for r in np.round(G, 9)})
        kk = max(1, min(k, n_distinct))
        with threadpool_limits(1):  # small matrices: threads only add overhead (and noise)
            km = KMeans(n_clusters=kk, n_init=10, random_state=mcfg.get("random_state", 0)).fit(G)
        labels = km.labels_
        sizes = np.bincount(labels, minlength=kk)
        order = sorted(range(kk), key=lambda c: (-sizes[c], c))
        name = {c: f"ms{i + 1}" for i, c in enumerate(order)}
        pop = raw.mean(axis=0)
        db_rows = []
        for c in order:
            mask = labels == c
            zc = Z[mask].mean(axis=0)
            means = raw[mask].mean(axis=0)
            d_zh, d_en, top = describe(zc, means, pop, specs, mcfg["top_features"], mcfg["min_z"])
            row = {
                "tenant_id": tenant_id,
                "label": name[c],
                "k": kk,
                "size": int(sizes[c]),
                "description_zh": d_zh,
                "description_en": d_en,
                "top_features": top,
                "centroid": {s["key"]: round(float(means[j]), 4) for j, s in enumerate(specs)},
                "computed_at": now,
            }
            db_rows.append(row)
            out.append({k2: v for k2, v in row.items() if k2 != "tenant_id"})
        conn.execute(sa.insert(micro_segments), db_rows)
        by_label = {r["label"]: r for r in db_rows}
        for p, c in zip(pids, labels, strict=True):
            lab = name[int(c)]
            assignment[p] = lab
            r = by_label[lab]
            reasons[p] = {
                "model": "micro_segments",
                "k": kk,
                "at": now.isoformat(),
                "text_zh": r["description_zh"],
                "text_en": r["description_en"],
            }
    pt = person_tags
    current = dict(
        conn.execute(
            sa.select(pt.c.person_id, pt.c.value).where(
                pt.c.tenant_id == tenant_id, pt.c.tag_key == "micro_segment"
            )
        ).all()
    )
    values: dict[str, str | None] = {p: v for p, v in assignment.items() if current.get(p) != v}
    values.update({p: None for p in current if p not in assignment})
    if values:
        tags.set_tags(
            conn,
            tenant_id=tenant_id,
            tag_key="micro_segment",
            values=values,
            source="model",
            reason={"model": "micro_segments", "at": now.isoformat(), "text_en": "not clustered (no events)"},
            reasons=reasons,
            now=now,
            only=list(values),
        )
    return out
