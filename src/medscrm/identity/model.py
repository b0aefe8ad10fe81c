"""Fellegi–Sunter scoring with Splink (DuckDB or Spark): training, prediction, save/load.

:class:`MatchModel` bundles our match settings (the YAML), the trained Splink model (m/u per
level, the prior) and the term-frequency tables of the tf-adjusted columns, so that the pure-Python
scorer (:mod:`medscrm.identity.explain`) and incremental linking reuse the same parameters.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from splink import DuckDBAPI, Linker

from .settings import MatchSettings, prediction_rules, rule_columns, rule_sql, splink_settings

__all__ = ["MatchModel", "train_and_predict", "tf_tables"]

_log = logging.getLogger(__name__)


@dataclass
class MatchModel:
    settings: MatchSettings
    splink_model: dict[str, Any]
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    version: int = 1

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "settings": self.settings,
            "splink_model": self.splink_model,
            "tf": self.tf,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict) -> MatchModel:
        return cls(
            settings=data["settings"],
            splink_model=data["splink_model"],
            tf=data.get("tf") or {},
            version=int(data.get("version", 1)),
        )

    @classmethod
    def load(cls, path: str | Path) -> MatchModel:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    @property
    def prior(self) -> float:
        return float(self.splink_model.get("probability_two_random_records_match") or 1e-4)

    def level_params(self, comparison: str) -> list[dict]:
        for c in self.splink_model["comparisons"]:
            if c["output_column_name"] == comparison:
                return c["comparison_levels"]
        raise KeyError(comparison)


def tf_tables(features: pd.DataFrame, settings: MatchSettings) -> dict[str, dict[str, float]]:
    cols = {lv["tf"] for c in settings["comparisons"] for lv in c["levels"] if lv.get("tf")}
    out = {}
    for col in sorted(cols):
        s = features[col].dropna()
        if len(s) == 0:
            out[col] = {}
            continue
        out[col] = (s.value_counts() / len(s)).to_dict()
    return out


def _splink_input(features: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    cols = {"unique_id"}
    for c in settings["comparisons"]:
        for lv in c["levels"]:
            for cond in lv.get("when") or []:
                arg = next(iter(cond.values()))
                cols.add(arg if isinstance(arg, str) else arg[0])
            if lv.get("tf"):
                cols.add(lv["tf"])
    for br in settings["blocking_rules"]:
        cols |= rule_columns(br)
    keep = [c for c in features.columns if c in cols]
    return features[keep]


def _db_api(engine: str, spark: Any = None):
    if engine == "spark":
        from splink import SparkAPI

        if spark is None:
            from .spark import local_spark

            spark = local_spark()
        from .spark import ensure_checkpoint_dir

        ensure_checkpoint_dir(spark)
        return SparkAPI(spark_session=spark), spark

    return DuckDBAPI(connection=duckdb.connect()), None


def _to_spark(spark: Any, df: pd.DataFrame):
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    fields = []
    for c in df.columns:
        kind = LongType() if c in ("title_rank", "name_partial", "usable") else StringType()
        fields.append(StructField(c, kind, True))
    rows = []
    for rec in df.itertuples(index=False, name=None):
        rows.append(
            tuple(
                None
                if (v is None or v is pd.NA or (isinstance(v, float) and v != v))
                else (int(v) if isinstance(fields[i].dataType, LongType) else str(v))
                for i, v in enumerate(rec)
            )
        )
    return spark.createDataFrame(rows, StructType(fields))


def train_and_predict(
    features: pd.DataFrame,
    settings: MatchSettings,
    *,
    engine: str = "duckdb",
    model: MatchModel | None = None,
    spark: Any = None,
    train: bool = True,
) -> tuple[pd.DataFrame, MatchModel]:
    """Train (unless ``model`` is given and ``train`` is False) and score the blocked pairs.

    Returns the scored pairs (``unique_id_l``, ``unique_id_r``, ``match_weight``,
    ``match_probability``, ``gamma_<comparison>``) above ``thresholds.predict_floor`` and the model.
    """

    data = _splink_input(features, settings)
    db_api, spark = _db_api(engine, spark)
    dialect = "spark" if engine == "spark" else "duckdb"
    if engine == "spark":
        sdf = db_api.register(_to_spark(spark, data))
    else:
        sdf = db_api.register(data)
    sset = splink_settings(settings, dialect, model.splink_model if model else None)
    linker = Linker(sdf, sset, log_level=logging.ERROR)
    n = len(data)
    tr = settings["training"]
    if (train or model is None) and (model is None or train):
        try:
            linker.training.estimate_probability_two_random_records_match(
                [rule_sql(r, dialect) for r in tr["prior_rules"]], recall=float(tr.get("prior_recall", 0.7))
            )
        except Exception as e:  # noqa: BLE001 - tiny inputs: keep the default prior
            _log.info("prior estimation skipped: %s", e)
        linker.training.estimate_u_using_random_sampling(max_pairs=float(tr.get("u_max_pairs", 2e6)), seed=42)
        max_pairs = None if n <= int(tr.get("em_max_records", 300000)) else 3e6
        for br in tr.get("em_blocking_rules") or []:
            saved = copy.deepcopy(linker._settings_obj)
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule_sql(br, dialect), estimate_without_term_frequencies=True, max_pairs=max_pairs
                )
            except Exception as e:  # noqa: BLE001 - EM may find no pairs on tiny inputs
                linker._settings_obj = saved  # a failed EM session leaves comparisons deactivated
                _log.info("EM on %s skipped: %s", br, e)
    floor = float(settings["thresholds"].get("predict_floor", 0.3))
    pred = linker.inference.predict(threshold_match_probability=floor)
    gamma_cols = [f"gamma_{c['name']}" for c in settings["comparisons"]]
    keep = ["unique_id_l", "unique_id_r", "match_weight", "match_probability", *gamma_cols]
    # only the columns used (the prediction table also holds every compared value and tf column)
    q = "`" if dialect == "spark" else '"'
    have = {c.unquote().name for c in pred.columns}
    cols = ", ".join(f"{q}{c}{q}" for c in keep if c in have)
    pairs = pred.query_sql(f"select {cols} from {{this}}").as_pandas_dataframe()
    pairs["unique_id_l"] = pairs["unique_id_l"].astype(str)
    pairs["unique_id_r"] = pairs["unique_id_r"].astype(str)
    trained = linker.misc.save_model_to_json()
    out_model = MatchModel(settings=settings, splink_model=trained, tf=tf_tables(features, settings))
    return pairs, out_model


def count_blocked_pairs(features: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """All pairs generated by the blocking rules (unique_id_l, unique_id_r) — for blocking recall."""

    con = duckdb.connect()
    data = _splink_input(features, settings)
    con.register("df", data)
    parts = []
    for br in prediction_rules(list(settings["blocking_rules"])):
        parts.append(
            f"select l.unique_id as unique_id_l, r.unique_id as unique_id_r from df l join df r "
            f"on ({br}) and l.unique_id < r.unique_id"
        )
    sql = "select distinct * from (" + " union all ".join(parts) + ")"
    return con.execute(sql).df()


def model_path(engine, tenant_slug: str) -> Path:
    """Where the tenant's trained match model lives: beside the DuckDB/SQLite database file
    (``<db file>.identity-model.<tenant>.json``), else in the working directory."""
    db = getattr(engine.url, "database", None)
    backend = engine.url.get_backend_name()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tenant_slug) or "default"
    if backend in ("duckdb", "sqlite") and db and db != ":memory:":
        return Path(f"{db}.identity-model.{safe}.json")
    return Path.cwd() / f".medscrm-identity-model.{safe}.json"


def save_models(path: Path, models: dict) -> None:
    """Persist {person_type: MatchModel} (what ``identity run`` trained) for ``explain``."""
    payload = {"models": {k: m.to_json() for k, m in models.items()}}
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
