"""The behaviour model's rules and weights: ``rules.yaml`` shipped with the package, overridden by a
tenant's YAML (an explicit path, or ``MEDSCRM_SCORES_CONFIG``). Mappings merge key by key; lists and
scalars replace. Bad values are refused with the key path and the reason."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medscrm.common import InvalidInput
from medscrm.config import get_settings

ENV_VAR = "MEDSCRM_SCORES_CONFIG"


@lru_cache(maxsize=1)
def _default_text() -> str:
    return resources.files(__package__).joinpath("rules.yaml").read_text(encoding="utf-8")


def default_config() -> dict[str, Any]:
    return yaml.safe_load(_default_text())


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The effective configuration: defaults, then the override file (argument, else the environment)."""
    cfg = default_config()
    path = path or get_settings().scores_config or None
    if path:
        try:
            over = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput("config", f"{path}: not a readable YAML file: {exc}") from exc
        if not isinstance(over, dict):
            raise InvalidInput("config", f"{path}: must be a mapping at the top level")
        cfg = _merge(cfg, over)
    validate(cfg)
    return cfg


def get_config(path: str | Path | None = None) -> dict[str, Any]:
    """:func:`load_config`, cached while the override file is unchanged (per-event refreshes call this)."""
    path = path or get_settings().scores_config or None
    stamp = None
    if path:
        try:
            st = Path(path).stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
    return copy.deepcopy(_cached(str(path) if path else None, stamp))


@lru_cache(maxsize=16)
def _cached(path: str | None, stamp: tuple[int, int] | None) -> dict[str, Any]:
    return load_config(path) if path else load_config_defaults()


def load_config_defaults() -> dict[str, Any]:
    cfg = default_config()
    validate(cfg)
    return cfg


def _num(cfg: dict[str, Any], path: str, *, positive: bool = True) -> None:
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InvalidInput(f"config.{path}", "is missing")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or (positive and node <= 0):
        raise InvalidInput(
            f"config.{path}", f"must be a {'positive ' if positive else ''}number, not {node!r}"
        )


def validate(cfg: dict[str, Any]) -> None:
    for p in (
        "windows.preference",
        "windows.activity",
        "windows.conversion",
        "windows.history",
        "half_life_days.preference",
        "half_life_days.lead",
        "scores.engagement.scale",
        "scores.lead.scale",
        "potential_tier.thresholds.A",
        "potential_tier.thresholds.B",
        "lifecycle.churned_after_days",
        "lifecycle.dormant_after_days",
        "micro_segments.k",
    ):
        _num(cfg, p)
    for section in ("event_points", "academic_points"):
        for k, v in (cfg.get(section) or {}).items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise InvalidInput(f"config.{section}.{k}", f"must be a number ≥ 0, not {v!r}")
    for name, span in (cfg.get("time_slots") or {}).items():
        if not (
            isinstance(span, list)
            and len(span) == 2
            and all(isinstance(h, int) and 0 <= h <= 24 for h in span)
        ):
            raise InvalidInput(f"config.time_slots.{name}", "must be [from_hour, to_hour] with hours 0–24")
    if cfg["windows"]["history"] < max(cfg["windows"][k] for k in ("preference", "activity", "conversion")):
        raise InvalidInput("config.windows.history", "must cover the other windows")
    if cfg["potential_tier"]["thresholds"]["A"] <= cfg["potential_tier"]["thresholds"]["B"]:
        raise InvalidInput("config.potential_tier.thresholds", "A must be above B")
    k = cfg["micro_segments"]["k"]
    if not isinstance(k, int) or not 2 <= k <= 50:
        raise InvalidInput("config.micro_segments.k", "must be an integer from 2 to 50")
