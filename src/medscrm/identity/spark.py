"""A local PySpark session for ``engine="spark"`` (install the ``spark`` extra; Java 17)."""

from __future__ import annotations

from typing import Any

__all__ = ["local_spark"]


def local_spark(cores: int = 2) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ImportError("engine='spark' needs PySpark: pip install 'medscrm[spark]'") from e
    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("medscrm-identity")
        .config("spark.sql.shuffle.partitions", str(max(4, cores * 2)))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
