"""Pure-Python scorer: the same comparison levels and trained weights as the Splink model.

``Scorer(model).score(left, right)`` evaluates every comparison of the match settings on two
feature rows (dicts as produced by :func:`medscrm.identity.features.build_features`), adds the
trained match weights (log2 m/u) and the term-frequency adjustments, and applies the precision
guards — returning per-field levels, weights, the total weight, the probability, the decision and
a human reason. Used by ``explain A B`` and for incremental linking (microseconds per pair).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .features import STRONG_ID_COLUMNS, build_features
from .model import MatchModel
from .settings import MatchSettings, compile_levels

__all__ = ["Scorer", "PairExplanation", "FieldResult", "guard_flags", "apply_guards"]


@dataclass
class FieldResult:
    comparison: str
    level: int  # Splink gamma: -1 null, 0 else, higher = closer
    label: str
    weight: float  # log2 Bayes factor incl. term-frequency adjustment
    tf_adjustment: float = 0.0


@dataclass
class PairExplanation:
    fields: list[FieldResult]
    prior_weight: float
    total_weight: float
    probability: float
    decision: str  # match | review | no_match
    reason: str
    guards: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.__dict__ for f in self.fields],
            "prior_weight": self.prior_weight,
            "total_weight": self.total_weight,
            "probability": self.probability,
            "decision": self.decision,
            "reason": self.reason,
            "guards": self.guards,
        }


def _gamma_sets(settings: MatchSettings) -> dict[str, dict[str, set[int]]]:
    """Per comparison: the gamma values that count as agree / strong / partial-name / name-conflict."""
    out: dict[str, dict[str, set[int]]] = {}
    for comp in settings["comparisons"]:
        n = len(comp["levels"]) - 1
        d: dict[str, set[int]] = {"agree": set(), "strong": set(), "partial": set(), "conflict": set()}
        for i, lv in enumerate(comp["levels"]):
            g = -1 if lv.get("null_level") else n - i
            if lv.get("agree"):
                d["agree"].add(g)
            if lv.get("strong"):
                d["strong"].add(g)
            if any("either" in c for c in lv.get("when") or []):
                d["partial"].add(g)
        if comp.get("is_name"):
            d["conflict"].add(0)
        out[comp["name"]] = d
    return out


def guard_flags(
    settings: MatchSettings, gammas: dict[str, int], sets: dict[str, dict[str, set[int]]] | None = None
) -> dict[str, bool]:
    sets = sets if sets is not None else _gamma_sets(settings)
    name = next((c["name"] for c in settings["comparisons"] if c.get("is_name")), None)
    corroborated = any(gammas.get(c) in s["agree"] for c, s in sets.items() if c != name)
    strong = any(gammas.get(c) in s["strong"] for c, s in sets.items() if c != name)
    ng = gammas.get(name) if name else None
    return {
        "corroborated": corroborated,
        "strong": strong,
        "name_partial_or_missing": name is not None and (ng == -1 or ng in sets[name]["partial"]),
        "name_conflict": name is not None and ng in sets[name]["conflict"],
    }


def _decide(settings: MatchSettings, probability: float, flags: dict[str, bool]) -> tuple[str, str]:
    th = settings["thresholds"]
    auto, lower = float(th["auto_merge"]), float(th["review_lower"])
    require = settings["guards"].get("require_corroboration", True)
    if probability >= auto:
        if flags["name_conflict"]:
            return "review", "high score but the names disagree"
        if require and not flags["corroborated"]:
            return "review", "name-only match: no corroborating hospital/phone/e-mail/identifier"
        if flags["name_partial_or_missing"] and not flags["strong"]:
            return "review", "nickname or missing name without a strong identifier"
        return "match", "score above the auto-merge threshold with corroboration"
    if probability >= lower:
        return "review", "score in the review band"
    return "no_match", "score below the review band"


def apply_guards(pairs: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """Vectorised decisions for scored pairs (adds ``decision`` and ``reason`` columns)."""
    sets = _gamma_sets(settings)
    name = next((c["name"] for c in settings["comparisons"] if c.get("is_name")), None)
    idx = pairs.index
    corr = pd.Series(False, index=idx)
    strong = pd.Series(False, index=idx)
    for c, s in sets.items():
        col = f"gamma_{c}"
        if c == name or col not in pairs.columns:
            continue
        corr |= pairs[col].isin(list(s["agree"]))
        strong |= pairs[col].isin(list(s["strong"]))
    if name:
        ng = pairs[f"gamma_{name}"]
        partial = (ng == -1) | ng.isin(list(sets[name]["partial"]))
        conflict = ng.isin(list(sets[name]["conflict"]))
    else:
        partial = conflict = pd.Series(False, index=idx)
    th = settings["thresholds"]
    p = pairs["match_probability"]
    require = settings["guards"].get("require_corroboration", True)
    high = p >= float(th["auto_merge"])
    ok = high & ~conflict & ~(partial & ~strong)
    if require:
        ok &= corr
    decision = pd.Series("no_match", index=idx)
    decision[p >= float(th["review_lower"])] = "review"
    decision[ok] = "match"
    reason = pd.Series("score below the review band", index=idx)
    reason[decision == "review"] = "score in the review band"
    reason[high & ~ok] = "high score held back by a precision guard"
    reason[ok] = "score above the auto-merge threshold with corroboration"
    out = pairs.copy()
    out["decision"] = decision
    out["reason"] = reason
    return out


class Scorer:
    """Score record pairs with a trained :class:`MatchModel`, exactly as Splink does."""

    def __init__(self, model: MatchModel) -> None:
        self.model = model
        self.settings = model.settings
        self.prior_weight = math.log2(model.prior / (1 - model.prior))
        self._levels = []
        self._sets = _gamma_sets(self.settings)
        tf_min = float(model.splink_model.get("tf_minimum_u_value") or 0.0)
        for comp in self.settings["comparisons"]:
            params = model.level_params(comp["name"])
            n = len(comp["levels"]) - 1
            by_gamma: dict[int, tuple[str, float, str | None, float, float]] = {}
            exact_u: dict[str, float] = {}
            for i, lv in enumerate(comp["levels"]):
                if lv.get("null_level"):
                    continue
                pr = params[i]
                m = _p(pr.get("m_probability"))
                u = _p(pr.get("u_probability"))
                conds = lv.get("when") or []
                if len(conds) == 1 and "exact" in conds[0]:
                    exact_u[conds[0]["exact"]] = u
                by_gamma[n - i] = (
                    lv["label"],
                    math.log2(m / u),
                    lv.get("tf"),
                    float(lv.get("tf_weight", 1.0)),
                    u,
                )
            self._levels.append((comp, by_gamma, exact_u, tf_min, compile_levels(comp)))

        self._bound_order, self._rest_max = self._bounds()

    def _bounds(self) -> tuple[list[int], list[float]]:
        """Evaluation order for :meth:`probability` (name, then strong identifiers, then the rest)
        and, per position, the largest weight the comparisons after it can still add."""
        best: list[float] = []
        for _comp, by_gamma, exact_u, tf_min, _level in self._levels:
            w_max = 0.0  # the null level adds nothing
            for g, (_label, w, tf_col, tf_w, u) in by_gamma.items():
                if tf_col and g != 0:
                    vals = [v for v in self.model.tf.get(tf_col, {}).values() if v]
                    lo = max(min(vals), tf_min) if vals else max(u, 1e-12)
                    w += max(0.0, tf_w * (math.log2(exact_u.get(tf_col, u)) - math.log2(max(lo, 1e-12))))
                w_max = max(w_max, w)
            best.append(w_max)
        sets = self._sets
        order = sorted(
            range(len(self._levels)),
            key=lambda k: (
                0
                if self._levels[k][0].get("is_name")
                else 1
                if sets[self._levels[k][0]["name"]]["strong"]
                else 2,
                k,
            ),
        )
        rest = [sum(best[k] for k in order[i + 1 :]) for i in range(len(order))]
        return order, rest

    def probability(self, left: dict, right: dict, floor: float | None = None) -> float:
        """The match probability alone (no explanation built): a fast pre-filter. With ``floor``,
        evaluation stops (returning 0.0) as soon as the comparisons still to come cannot lift the
        weight to ``floor`` — exact: a pair that would reach ``floor`` is never cut."""
        total = self.prior_weight
        tf_all = self.model.tf
        stop = math.log2(floor / (1 - floor)) if floor is not None and 0 < floor < 1 else None
        rest = self._rest_max
        for pos, k in enumerate(self._bound_order):
            _comp, by_gamma, exact_u, tf_min, level = self._levels[k]
            g = level(left, right)
            if g != -1:
                _label, w, tf_col, tf_w, _u = by_gamma[g]
                total += w
                if tf_col and g != 0:
                    tfs = tf_all.get(tf_col, {})
                    tl, tr = tfs.get(left.get(tf_col)), tfs.get(right.get(tf_col))
                    if tl is not None or tr is not None:
                        tfv = max(tl if tl is not None else tr, tr if tr is not None else tl, tf_min)
                        total += tf_w * (math.log2(exact_u.get(tf_col, _u)) - math.log2(tfv))
            if stop is not None and total + rest[pos] < stop:
                return 0.0
        return _prob(total)

    def score(self, left: dict, right: dict) -> PairExplanation:
        fields: list[FieldResult] = []
        total = self.prior_weight
        gammas: dict[str, int] = {}
        for comp, by_gamma, exact_u, tf_min, level in self._levels:
            g = level(left, right)
            gammas[comp["name"]] = g
            if g == -1:
                fields.append(FieldResult(comp["name"], -1, comp["levels"][0]["label"], 0.0))
                continue
            label, w, tf_col, tf_w, _u = by_gamma[g]
            adj = 0.0
            if tf_col and g != 0:
                tfs = self.model.tf.get(tf_col, {})
                tl, tr = tfs.get(left.get(tf_col)), tfs.get(right.get(tf_col))
                if tl is not None or tr is not None:
                    tfv = max(tl if tl is not None else tr, tr if tr is not None else tl, tf_min)
                    adj = tf_w * (math.log2(exact_u.get(tf_col, _u)) - math.log2(tfv))
            fields.append(FieldResult(comp["name"], g, label, w + adj, adj))
            total += w + adj
        prob = _prob(total)
        flags = guard_flags(self.settings, gammas, self._sets)
        decision, reason = _decide(self.settings, prob, flags)
        top = sorted((f for f in fields if f.level != -1), key=lambda f: -abs(f.weight))[:4]
        detail = ", ".join(f"{f.comparison}: {f.label} ({f.weight:+.1f})" for f in top)
        return PairExplanation(fields, self.prior_weight, total, prob, decision, f"{reason}; {detail}", flags)


def _p(v: Any) -> float:
    if v is None or isinstance(v, str):
        return 1e-6
    return max(float(v), 1e-12)


def _prob(w: float) -> float:
    if w > 60:
        return 1.0
    if w < -60:
        return 0.0
    b = 2.0**w
    return b / (1 + b)


def explain_pair(record_a: dict, record_b: dict, model) -> tuple[dict, dict, object, list[str]]:
    """Features of two raw records, the scorer's explanation and the strong identifiers they share."""

    feats, _ = build_features(pd.DataFrame([record_a, record_b]).astype(object))
    rows = []
    for rec in feats.to_dict("records"):
        rows.append(
            {
                k: (None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v)
                for k, v in rec.items()
            }
        )
    left, right = rows
    exp = Scorer(model).score(left, right)
    shared = [c for c in STRONG_ID_COLUMNS if left.get(c) and left.get(c) == right.get(c)]
    return left, right, exp, shared
