"""Golden records: per attribute, survivorship rules pick one value and say where it came from.

Every golden attribute carries its lineage — the source record, its source, when it arrived, the
rule that decided — and the conflicting values that lost, so conflicts stay visible.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from medscrm.common import MedscrmError
from medscrm.db.schema import PERSON_FIELDS

RULES = ("verified", "source_priority", "most_recent", "most_frequent")
GOLDEN_FIELDS = tuple(f for f in PERSON_FIELDS if f != "person_type")
DEFAULT_FILE = Path(__file__).with_name("survivorship.yaml")


class Survivorship(BaseModel):
    verified_sources: list[str] = Field(default_factory=list)
    source_priority: dict[str, int] = Field(default_factory=dict)
    default: list[str] = Field(default_factory=lambda: list(RULES))
    attributes: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("default")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if r not in RULES]
        if bad:
            raise ValueError(f"unknown rule(s) {bad}; rules: {', '.join(RULES)}")
        return v

    @field_validator("attributes")
    @classmethod
    def _known_attrs(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for attr, rules in v.items():
            bad = [r for r in rules if r not in RULES]
            if bad:
                raise ValueError(f"attributes.{attr}: unknown rule(s) {bad}; rules: {', '.join(RULES)}")
        return v

    def rules_for(self, attr: str) -> list[str]:
        return self.attributes.get(attr, self.default)


def load_survivorship(path: Path | str | None = None) -> Survivorship:
    p = Path(path) if path else DEFAULT_FILE
    try:
        return Survivorship.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise MedscrmError(f"{p}: cannot read survivorship settings: {exc}") from exc
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MedscrmError(f"{p}: {msgs}") from exc


@dataclass
class Candidate:
    value: Any
    record_id: str
    source: str
    received_at: dt.datetime
    verified: bool


@dataclass
class Golden:
    person_type: str
    attributes: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def conflicts(self) -> dict[str, list[Any]]:
        return {a: lin["conflicts"] for a, lin in self.lineage.items() if lin.get("conflicts")}


def _pick(cands: list[Candidate], rules: list[str], cfg: Survivorship) -> tuple[Candidate, str]:
    pool = cands
    decided = rules[-1] if rules else "most_recent"
    for rule in rules:
        if len({c.value for c in pool}) == 1:
            break
        if rule == "verified":
            ver = [c for c in pool if c.verified]
            if ver and len(ver) < len(pool):
                pool, decided = ver, rule
        elif rule == "source_priority":
            best = min(cfg.source_priority.get(c.source, 100) for c in pool)
            top = [c for c in pool if cfg.source_priority.get(c.source, 100) == best]
            if len(top) < len(pool):
                pool, decided = top, rule
        elif rule == "most_frequent":
            counts = Counter(c.value for c in pool)
            best = max(counts.values())
            top = [c for c in pool if counts[c.value] == best]
            if len(top) < len(pool):
                pool, decided = top, rule
        elif rule == "most_recent":
            newest = max(c.received_at for c in pool)
            top = [c for c in pool if c.received_at == newest]
            if len(top) < len(pool):
                pool, decided = top, rule
    # still tied: newest, then the value most records agree on, then the most specific (longest)
    # value (北京协和医院 over 协和医院), then the smallest record id — deterministic
    counts = Counter(c.value for c in cands)
    winner = sorted(
        pool, key=lambda c: (-c.received_at.timestamp(), -counts[c.value], -len(str(c.value)), c.record_id)
    )[0]
    return winner, decided if len({c.value for c in cands}) > 1 else "unanimous"


def golden_record(records: list[dict[str, Any]], cfg: Survivorship) -> Golden:
    """``records``: source records of one person (dicts with id, source, received_at, the standard
    fields, attributes). Returns the golden attributes with lineage."""
    ptypes = Counter(r.get("person_type") or "hcp" for r in records)
    g = Golden(person_type="hcp" if ptypes.get("hcp", 0) >= ptypes.get("patient", 0) else "patient")
    verified_src = set(cfg.verified_sources)
    for attr in GOLDEN_FIELDS:
        cands = [
            Candidate(
                r[attr],
                r["id"],
                r.get("source") or "?",
                r["received_at"],
                r.get("source") in verified_src or bool((r.get("attributes") or {}).get("verified")),
            )
            for r in records
            if r.get(attr) not in (None, "")
        ]
        if not cands:
            continue
        win, rule = _pick(cands, cfg.rules_for(attr), cfg)
        g.attributes[attr] = win.value
        others = sorted({str(c.value) for c in cands if c.value != win.value})
        g.lineage[attr] = {
            "source_record_id": win.record_id,
            "source": win.source,
            "received_at": win.received_at.isoformat(),
            "rule": rule,
            "candidates": len(cands),
            "conflicts": others,
        }
    # custom attributes: most recent value wins, lineage kept the same way
    customs: dict[str, list[Candidate]] = {}
    for r in records:
        for k, v in (r.get("attributes") or {}).items():
            if v not in (None, ""):
                customs.setdefault(k, []).append(
                    Candidate(v, r["id"], r.get("source") or "?", r["received_at"], False)
                )
    for k, cands in sorted(customs.items()):
        win, rule = _pick(cands, ["most_recent"], cfg)
        g.attributes[k] = win.value
        g.lineage[k] = {
            "source_record_id": win.record_id,
            "source": win.source,
            "received_at": win.received_at.isoformat(),
            "rule": rule,
            "candidates": len(cands),
            "conflicts": sorted({str(c.value) for c in cands if c.value != win.value})[:10],
        }
    return g
