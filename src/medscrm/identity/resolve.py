"""Batch identity resolution: records → persons.

``resolve_records(table)`` is the library entry point (the workspace's ``identity run`` builds on
it); ``resolve_file(input, output)`` reads any import format and writes
``record_id,person_id,confidence,cluster_size``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from medscrm.exports import csv_cell
from medscrm.ingest.readers import open_reader

from .cluster import cluster_links, person_id_for
from .deterministic import deterministic_links
from .explain import apply_guards
from .features import FeatureReport, build_features
from .hospitals import HospitalIndex, load_extra_aliases
from .model import MatchModel, train_and_predict
from .settings import MatchSettings, load_settings

__all__ = ["ResolveResult", "resolve_records", "resolve_file", "read_table"]

Progress = Callable[[str, float], None]


@dataclass
class ResolveResult:
    """``clusters``: record_id, person_id, confidence, cluster_size (one row per input row).
    ``pairs``: record_id_l, record_id_r, match_probability, match_weight, decision, reason, source
    (``deterministic:<column>`` or ``probabilistic``), gamma_<comparison> columns.
    Iterating yields ``(clusters, pairs)``."""

    clusters: pd.DataFrame
    pairs: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)
    models: dict[str, MatchModel] = field(default_factory=dict)
    features: pd.DataFrame | None = None  # the feature rows as scored (shared identifier values nulled)
    shared: list[dict] = field(default_factory=list)  # every identifier value that is not an identity

    def __iter__(self):
        yield self.clusters
        yield self.pairs


def _to_frame(table: Any) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        df = table
    elif hasattr(table, "to_pandas"):
        df = table.to_pandas()
    elif isinstance(table, Iterable):
        df = pd.DataFrame(list(table))
    else:
        raise TypeError(f"cannot read records from {type(table).__name__}")
    if "record_id" not in df.columns:
        raise ValueError("the input has no record_id column")
    df = df.reset_index(drop=True)
    df = df.astype(object).where(df.notna(), None)
    df["record_id"] = [None if v is None else str(v).strip() for v in df["record_id"]]
    return df


def resolve_records(
    table: Any,
    *,
    settings: str | Path | Mapping | None = None,
    person_type: str | None = None,
    engine: str = "duckdb",
    model: MatchModel | Mapping[str, MatchModel] | None = None,
    train: bool = True,
    spark: Any = None,
    progress: Progress | None = None,
) -> ResolveResult:
    """Resolve records into persons.

    ``table``: pandas DataFrame, pyarrow Table or iterable of dicts with ``record_id`` and any
    standard columns (raw values). ``settings``: a match-settings YAML path or dict (default: the
    packaged file for each person type). ``person_type``: force every record to this type
    (otherwise the ``person_type`` column, default ``hcp``). Records of different person types are
    never linked. ``model``: a trained model (or {person_type: model}) whose parameters are reused;
    with ``train=False`` no training happens.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg, _frac: None)
    df = _to_frame(table)
    report: dict[str, Any] = {"input_rows": len(df)}
    missing_id = df["record_id"].isna() | (df["record_id"] == "")
    if missing_id.any():
        report["missing_record_id"] = int(missing_id.sum())
        df.loc[missing_id, "record_id"] = [f"__row{i + 1}" for i in df.index[missing_id]]
    dup = df["record_id"].duplicated(keep="first")
    report["duplicate_record_ids"] = int(dup.sum())
    report["duplicate_examples"] = df.loc[dup, "record_id"].head(5).tolist()
    uniq = df.loc[~dup].reset_index(drop=True)
    if person_type:
        uniq["person_type"] = person_type
    say("features", 0.05)
    base_settings = (
        None
        if settings is None
        else load_settings(settings if not isinstance(settings, Mapping) else dict(settings))
    )
    extra = []
    if base_settings and base_settings.get("hospital_aliases"):
        extra = load_extra_aliases(base_settings["hospital_aliases"])
    hidx = HospitalIndex(extra)
    feats, frep = build_features(uniq, hidx, default_person_type=person_type or "hcp")
    report["features"] = frep.as_dict()
    clusters_all, pairs_all, models = [], [], {}
    types = sorted(feats["person_type"].dropna().unique().tolist())
    report["person_types"] = {}
    shared_all: list[dict] = []
    scored_all: list[pd.DataFrame] = []
    for k, ptype in enumerate(types):
        sub = feats[feats["person_type"] == ptype].reset_index(drop=True)
        st = (
            base_settings
            if base_settings is not None
            else load_settings(None, ptype if ptype in ("hcp", "patient") else "hcp")
        )
        say(f"{ptype}: deterministic links", 0.1 + 0.8 * k / len(types))
        det = deterministic_links(sub, st)
        shared_all.extend({**s, "person_type": ptype} for s in det.shared)
        scored = det.features
        scored_all.append(scored)
        mdl = model.get(ptype) if isinstance(model, Mapping) else model
        pairs = pd.DataFrame(columns=["unique_id_l", "unique_id_r", "match_weight", "match_probability"])
        usable = scored[scored["usable"] == 1]
        if len(usable) >= 2:
            say(f"{ptype}: scoring ({len(usable):,} records)", 0.2 + 0.8 * k / len(types))
            try:
                pairs, trained = train_and_predict(
                    usable, st, engine=engine, model=mdl, spark=spark, train=train or mdl is None
                )
                models[ptype] = trained
            except Exception as e:  # noqa: BLE001 - report, fall back to deterministic links only
                report.setdefault("errors", []).append(f"{ptype}: probabilistic scoring failed: {e}")
        pairs = apply_guards(pairs, st) if len(pairs) else pairs.assign(decision=[], reason=[])
        if len(pairs):
            pairs = _promote_unique_nicknames(pairs, sub, st)
        pairs["source"] = "probabilistic"
        accepted = pairs[pairs["decision"] == "match"][["unique_id_l", "unique_id_r", "match_probability"]]
        dedges = det.edges.assign(match_probability=1.0)
        links = _concat([dedges[["unique_id_l", "unique_id_r", "match_probability"]], accepted])
        best = {}
        if len(pairs):
            mx = pd.concat(
                [
                    pairs[["unique_id_l", "match_probability"]].rename(columns={"unique_id_l": "u"}),
                    pairs[["unique_id_r", "match_probability"]].rename(columns={"unique_id_r": "u"}),
                ]
            )
            best = mx.groupby("u")["match_probability"].max().to_dict()
        g = st["guards"]
        conflicts = {
            c: dict(zip(sub["unique_id"], sub[c], strict=True)) for c in g.get("conflict_columns") or []
        }
        say(f"{ptype}: clustering", 0.85)
        cres = cluster_links(
            sub["unique_id"].tolist(),
            links,
            conflicts,
            max_cluster_size=int(g.get("max_cluster_size", 40)),
            big_cluster_min=int(g.get("big_cluster_min", 3)),
            big_cluster_link=float(g.get("big_cluster_link", 0.999)),
            best_scores=best,
        )
        clusters_all.append(cres.assignments)
        det_pairs = det.edges.assign(
            match_probability=1.0,
            match_weight=float("inf"),
            decision="match",
            reason="deterministic: " + det.edges["column"].astype(str),
            source="deterministic:" + det.edges["column"].astype(str),
        ).drop(columns="column")
        pairs_all.append(_concat([det_pairs, pairs]))
        report["person_types"][ptype] = {
            "records": len(sub),
            "usable_records": len(usable),
            "deterministic_links": len(det.edges),
            "scored_pairs": len(pairs),
            "accepted_pairs": int((pairs["decision"] == "match").sum()) if len(pairs) else 0,
            "review_pairs": int((pairs["decision"] == "review").sum()) if len(pairs) else 0,
            "refused_links": len(cres.refused),
            "refused_examples": cres.refused[:5],
        }
    report["shared_identifier_values"] = len(shared_all)
    report["shared_identifier_examples"] = sorted(shared_all, key=lambda s: -s["records"])[:10]
    clusters = (
        pd.concat(clusters_all, ignore_index=True)
        if clusters_all
        else pd.DataFrame(columns=["unique_id", "person_id", "confidence", "cluster_size"])
    )
    clusters = clusters.rename(columns={"unique_id": "record_id"})
    # duplicate record ids get the person of their first occurrence: nothing dropped
    order = df[["record_id"]].merge(clusters, on="record_id", how="left")
    pairs = pd.concat(pairs_all, ignore_index=True) if pairs_all else pd.DataFrame()
    if len(pairs):
        pairs = pairs.rename(columns={"unique_id_l": "record_id_l", "unique_id_r": "record_id_r"})
    report["persons"] = int(order["person_id"].nunique())
    report["singletons"] = int((order["cluster_size"] == 1).sum())
    report["seconds"] = round(time.perf_counter() - t0, 3)
    say("done", 1.0)
    return ResolveResult(
        clusters=order,
        pairs=pairs,
        report=report,
        models=models,
        features=pd.concat(scored_all, ignore_index=True) if scored_all else feats,
        shared=shared_all,
    )


def _promote_unique_nicknames(pairs: pd.DataFrame, feats: pd.DataFrame, st: MatchSettings) -> pd.DataFrame:
    """A nickname record (张医生 at hospital H) held back for lack of a strong identifier is linked
    when exactly one full-name person with that surname is known at H and the pair scores at least
    ``review_lower`` (no conflicting department/title). A nickname alone never links otherwise."""
    g = st["guards"]
    if not g.get("unique_nickname_link", True) or "gamma_hospital" not in pairs.columns:
        return pairs
    full = feats[(feats["name_partial"] == 0) & feats["name_py"].notna() & feats["hospital_id"].notna()]
    full = full[~full["hospital_id"].astype(str).str.startswith("x:")]
    n_names = full.groupby(["surname_py", "hospital_id"])["name_py"].nunique()
    partial_ids = set(feats.loc[feats["name_partial"] == 1, "unique_id"])
    info = feats.set_index("unique_id")[["surname_py", "hospital_id", "name_partial"]]
    cand = pairs[
        (pairs["decision"] == "review")
        & (pairs["gamma_hospital"] > 0)
        & (pairs["match_probability"] >= float(st["thresholds"]["review_lower"]))
    ]
    if cand.empty:
        return pairs
    l_part = cand["unique_id_l"].isin(partial_ids)
    r_part = cand["unique_id_r"].isin(partial_ids)
    cand = cand[l_part ^ r_part]
    if cand.empty:
        return pairs
    nick = cand["unique_id_l"].where(cand["unique_id_l"].isin(partial_ids), cand["unique_id_r"])
    other = cand["unique_id_r"].where(cand["unique_id_l"].isin(partial_ids), cand["unique_id_l"])
    keys = list(zip(info.loc[nick, "surname_py"], info.loc[nick, "hospital_id"], strict=True))
    unique = [n_names.get(k, 0) == 1 for k in keys]
    other_full = info.loc[other, "name_partial"].to_numpy() == 0
    # each nickname record may be promoted towards one person only
    ok = pd.Series(unique, index=cand.index) & pd.Series(other_full, index=cand.index)
    per_nick = pd.Series(nick.to_numpy(), index=cand.index)[ok]
    promote = ok.index[ok]
    if len(promote):
        pairs = pairs.copy()
        pairs.loc[promote, "decision"] = "match"
        pairs.loc[promote, "reason"] = "nickname: the only person with this surname at this hospital"
    del per_nick
    return pairs


def read_table(path: str | Path) -> pd.DataFrame:
    """Read any import format (CSV/XLSX/JSONL/Parquet) into a DataFrame of raw values."""

    p = Path(path)
    if p.suffix.lower() == ".csv":
        try:
            return pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        except UnicodeDecodeError:
            pass
    reader = open_reader(p)
    rows: list[dict] = []
    for batch in reader.batches(10_000):
        rows.extend(r.values for r in batch)
    return pd.DataFrame(rows, columns=list(getattr(reader, "columns", None) or []) or None)


def resolve_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    engine: str = "duckdb",
    settings: str | Path | Mapping | None = None,
    person_type: str | None = None,
    progress: Progress | None = None,
    model_out: str | Path | None = None,
) -> dict[str, Any]:
    """Resolve a file; writes ``record_id,person_id,confidence,cluster_size``; returns the summary."""
    df = read_table(input_path)
    res = resolve_records(df, engine=engine, settings=settings, person_type=person_type, progress=progress)
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # record ids come from the input file: one a spreadsheet would read as a formula is written as
    # text (the other columns are ours: ids, confidences and sizes, never negative)
    safe = res.clusters.copy(deep=False)
    for col in safe.columns:
        if safe[col].dtype == object:
            safe[col] = safe[col].map(csv_cell)
    safe.to_csv(out, index=False, encoding="utf-8")
    if model_out and res.models:
        for ptype, m in res.models.items():
            m.save(Path(str(model_out).replace("{person_type}", ptype)))
    summary = dict(res.report)
    summary["output"] = str(out)
    summary["engine"] = engine
    return summary


__all__ += ["person_id_for", "FeatureReport", "MatchSettings"]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat`` without the empty frames (pandas is to stop ignoring their dtypes: a
    FutureWarning today), the first frame's empty shape when all are empty."""
    parts = [f for f in frames if len(f)]
    if not parts:
        return frames[0].iloc[0:0]
    return parts[0].reset_index(drop=True) if len(parts) == 1 else pd.concat(parts, ignore_index=True)
