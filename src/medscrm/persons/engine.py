"""The bridge from the workspace to the matching engine (:mod:`medscrm.identity`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from medscrm.common import MedscrmError
from medscrm.db.schema import PERSON_FIELDS
from medscrm.identity.model import MatchModel, model_path, save_models
from medscrm.identity.resolve import resolve_records
from medscrm.persons.run import EngineResult
from medscrm.persons.service import load_records


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


def index_dir_for(model_file: Path) -> Path:
    """``<db>.identity-model.<tenant>.json`` → ``<db>.identity-model.<tenant>.index/``."""
    s = str(model_file)
    return Path((s[:-5] if s.endswith(".json") else s) + ".index")


class FeatureStore:
    """Feature rows of resolved records (Parquet parts) and the shared identifier values."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return (self.path / "shared.json").exists()

    def write(self, features: pd.DataFrame | None, shared: list[dict]) -> None:
        """Replace the store with a full run's features."""
        self.path.mkdir(parents=True, exist_ok=True)
        for p in self.path.glob("part-*.parquet"):
            p.unlink()
        (self.path / "shared.json").unlink(missing_ok=True)
        if features is not None and len(features):
            self._part(features, 0)
        self._write_shared(shared)

    def append(self, features: pd.DataFrame | None, shared: list[dict]) -> None:
        parts = sorted(self.path.glob("part-*.parquet"))
        if features is not None and len(features):
            n = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
            self._part(features, n)
        if shared:
            self._write_shared(self.shared() + shared)

    def _part(self, df: pd.DataFrame, n: int) -> None:
        df = df.astype(object).where(df.notna(), None)
        tmp = self.path / f".part-{n:05d}.tmp"
        df.to_parquet(tmp, index=False)
        tmp.rename(self.path / f"part-{n:05d}.parquet")

    def _write_shared(self, shared: list[dict]) -> None:
        tmp = self.path / ".shared.tmp"
        tmp.write_text(json.dumps(shared, ensure_ascii=False, default=str), encoding="utf-8")
        tmp.rename(self.path / "shared.json")

    def shared(self) -> list[dict]:
        try:
            return json.loads((self.path / "shared.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []

    def read(self) -> pd.DataFrame:
        parts = sorted(self.path.glob("part-*.parquet"))
        if not parts:
            return pd.DataFrame()
        df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        df = df.drop_duplicates("unique_id", keep="last").reset_index(drop=True)
        return df.astype(object).where(df.notna(), None)


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
    (``index_dir``, default :func:`index_dir_for` of the model file).
    """

    if not records:
        return EngineResult(clusters={}, links=[], review=[], summary={"records": 0})
    table = engine_table(records)
    res = resolve_records(table, settings=str(settings_path) if settings_path else None, engine=engine)
    if model_file is not None and res.models:
        save_models(Path(model_file), res.models)
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


def record_table(records: list[dict]) -> list[dict]:
    """Source records → the scorer's input rows (record_id, source, standard fields)."""
    return [
        {"record_id": r["id"], "source": r.get("source"), **{f: r.get(f) for f in PERSON_FIELDS}}
        for r in records
    ]


def load_or_train_model(ws, *, person_type: str = "hcp", retrain: bool = False):
    """The tenant's saved model, or one trained now on the tenant's records (and saved)."""

    path = model_path(ws.engine, ws.tenant_slug)
    if path.exists() and not retrain:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            models = data.get("models") if "models" in data else {person_type: data}
            if person_type in models:
                return MatchModel.from_json(models[person_type]), path, False
        except (OSError, ValueError, KeyError):
            pass  # unreadable: retrain
    with ws.engine.connect() as conn:
        records = load_records(conn, ws.tenant_id)
    if len(records) < 2:
        raise MedscrmError("not enough source records to train a match model")
    res = resolve_records(record_table(records))
    if not res.models:
        raise MedscrmError("the match model could not be trained: " + "; ".join(res.report.get("errors", [])))
    save_models(path, res.models)
    mdl = res.models.get(person_type) or next(iter(res.models.values()))
    return mdl, path, True
