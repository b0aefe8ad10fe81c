"""A local PySpark session for ``engine="spark"`` (install the ``spark`` extra; Java 17)."""

from __future__ import annotations

import tempfile
from typing import Any

__all__ = ["local_spark", "ensure_checkpoint_dir"]


def local_spark(cores: int = 2) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ImportError("engine='spark' needs PySpark: pip install 'medscrm[spark]'") from e
    try:  # Splink's string-similarity UDFs (jaro_winkler ...) live in a jar shipped with Splink
        from splink.backends.spark import similarity_jar_location

        jars = similarity_jar_location()
    except Exception:  # noqa: BLE001 - older Splink: the UDFs must be registered by the caller
        jars = ""
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.jars", jars)
        .appName("medscrm-identity")
        .config("spark.sql.shuffle.partitions", str(max(4, cores * 2)))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    ensure_checkpoint_dir(spark)
    return spark


def ensure_checkpoint_dir(spark: Any) -> None:
    """Splink checkpoints intermediate tables on Spark: a checkpoint directory must be set."""
    sc = spark.sparkContext
    if sc.getCheckpointDir():
        return

    sc.setCheckpointDir(tempfile.mkdtemp(prefix="medscrm-spark-ckpt-"))
