"""Synthetic, deterministic source data for one pharma tenant (demo data and identity-resolution benchmark).

>>> from medscrm.synth import generate
>>> manifest = generate(Path("data/demo"), hcps=1000, seed=42)   # doctest: +SKIP
"""

from medscrm.synth.generator import SourceInfo, SynthManifest, generate
from medscrm.synth.sources import (
    ALL_SOURCES,
    GROUND_TRUTH_COLUMNS,
    IDENTIFYING_FIELDS,
    RESOLVE_COLUMNS,
    SOURCES_BY_NAME,
    STANDARD_FIELDS,
    SourceSpec,
)

__all__ = [
    "ALL_SOURCES",
    "GROUND_TRUTH_COLUMNS",
    "IDENTIFYING_FIELDS",
    "RESOLVE_COLUMNS",
    "SOURCES_BY_NAME",
    "STANDARD_FIELDS",
    "SourceInfo",
    "SourceSpec",
    "SynthManifest",
    "generate",
]
