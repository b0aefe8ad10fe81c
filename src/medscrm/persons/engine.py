"""The bridge from the workspace to the matching engine (:mod:`medscrm.identity`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from medscrm.db.schema import PERSON_FIELDS
from medscrm.persons.run import EngineResult


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def engine_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Workspace source records → the engine's input rows (record_id, source, standard fields, remark)."""
    return [
        {
            "record_id": r["id"],
            "source": r.get("source"),
            **{f: r.get(f) for f in PERSON_FIELDS},
            # a rep's free-text remark (WeCom 备注): fills a nickname's name / hospital / department
            "remark": (r.get("attributes") or {}).get("rep_remark")
            or (r.get("attributes") or {}).get("remark"),
        }
        for r in records
    ]


def resolve_with_engine(
    records: list[dict[str, Any]],
    *,
    settings_path: Path | str | None = None,
    engine: str = "duckdb",
    model_file: Path | None = None,
    index_dir: Path | None = None,
) -> EngineResult:
    """Score and cluster the tenant's source records with the OneID engine.

    ``model_file``: where to save the trained match models (for ``medscrm identity explain`` and
    incremental linking); the feature index for incremental linking is saved beside it
    (``index_dir``, default :func:`medscrm.persons.incremental.index_dir_for` of the model file).
    """
    from medscrm.identity.resolve import resolve_records

    if not records:
        return EngineResult(clusters={}, links=[], review=[], summary={"records": 0})
    table = engine_table(records)
    res = resolve_records(table, settings=str(settings_path) if settings_path else None, engine=engine)
    if model_file is not None and res.models:
        from medscrm.identity.cli import save_models

        save_models(Path(model_file), res.models)
        from medscrm.persons.incremental import FeatureStore, index_dir_for

        FeatureStore(index_dir or index_dir_for(Path(model_file))).write(res.features, res.shared)
    clusters: dict[str, list[str]] = {}
    confidence: dict[str, tuple[float, str]] = {}
    for rid, pid, conf, size in res.clusters[
        ["record_id", "person_id", "confidence", "cluster_size"]
    ].itertuples(index=False):
        clusters.setdefault(pid, []).append(rid)
        confidence[rid] = (float(_clean(conf) or 0.0), "singleton" if int(size) == 1 else "resolved")
    pairs = res.pairs
    links: list[tuple[str, str, float]] = []
    review: list[dict[str, Any]] = []
    if len(pairs):
        gamma_cols = [c for c in pairs.columns if c.startswith("gamma_")]
        for row in pairs.to_dict("records"):
            a, b, p = row["record_id_l"], row["record_id_r"], float(_clean(row["match_probability"]) or 0.0)
            if row["decision"] == "match":
                links.append((a, b, p))
            elif row["decision"] == "review":
                weight = _clean(row.get("match_weight"))
                review.append(
                    {
                        "record_a": a,
                        "record_b": b,
                        "probability": p,
                        "match_weight": float(weight) if weight is not None else None,
                        "detail": {
                            "reason": row.get("reason"),
                            **{c[6:]: _clean(row[c]) for c in gamma_cols},
                        },
                    }
                )
    summary = {k: v for k, v in res.report.items() if isinstance(v, int | float | str)}
    return EngineResult(clusters=clusters, links=links, review=review, confidence=confidence, summary=summary)
