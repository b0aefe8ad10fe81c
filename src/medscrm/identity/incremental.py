"""Incremental linking: new records into existing persons without a full recompute.

:class:`IncrementalLinker` keeps an in-memory index of the records already resolved (their
feature rows as the batch run scored them, and the person each belongs to) with one hash index
per blocking rule (``l.a = r.a and l.b = r.b`` → key ``(a, b)``) and per deterministic column.
For a batch of new records it

1. computes their features (:func:`medscrm.identity.features.build_features`, remarks included);
2. applies the deterministic links with the batch guards: per identifier value every holder
   (old and new) is grouped by name compatibility; a value held by more than
   ``guards.max_persons_per_value`` persons is not an identity — no link, and the value is nulled
   for scoring on every holder, as a full run does;
3. finds candidates through the same blocking rules (dictionary lookups, no scan) and scores them
   with the trained model's parameters (:class:`medscrm.identity.explain.Scorer`, the same
   comparison levels, m/u and term-frequency tables as Splink), applies the precision guards and
   the unique-nickname rule;
4. clusters locally: nodes are the touched existing persons (with their size and licence numbers)
   and the new records; links are applied strongest first with the batch safeguards (conflicting
   licence numbers, ``max_cluster_size``, one weak link may not glue two clusters of
   ``big_cluster_min`` records — the pair goes to review) and people's constraints (``must_link``
   first, never across a ``cannot_link``);
5. attaches each group to its person (two persons joined by a new record: the bigger survives and
   absorbs the other), or creates a person; uncertain pairs between different persons are returned
   for the review queue.

The index is updated in place, so the next batch sees the new records.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from .cluster import person_id_for, same_identifier
from .deterministic import _name_groups
from .explain import Scorer
from .features import FEATURE_COLUMNS, build_features
from .hospitals import HospitalIndex
from .model import MatchModel
from .settings import MatchSettings, jaro_winkler, load_settings

__all__ = ["BlockingRule", "IncrementalLinker", "LinkResult", "parse_blocking_rule"]

_PART_RE = re.compile(r"\(?\s*l\.(\w+)\s*=\s*r\.(\w+)\s*\)?")
_COLUMNS = (*FEATURE_COLUMNS, "usable")


_EITHER_RE = re.compile(r"\(\s*l\.(\w+)\s*=\s*1\s+or\s+r\.(\w+)\s*=\s*1\s*\)", re.IGNORECASE)
_SIMILAR_RE = re.compile(
    r"jaro_winkler\(\s*l\.(\w+)\s*,\s*r\.(\w+)\s*\)\s*>=\s*([0-9]*\.?[0-9]+)", re.IGNORECASE
)


class BlockingRule(NamedTuple):
    """A parsed blocking rule: equality columns (the index key), an optional either-side flag, and
    Jaro-Winkler filters applied to the records found under the key."""

    cols: tuple[str, ...]
    either: str | None = None
    similar: tuple[tuple[str, float], ...] = ()


def parse_blocking_rule(rule: str) -> BlockingRule:
    """``"l.a = r.a and l.b = r.b"`` → ``BlockingRule(("a", "b"))``; a part ``(l.f = 1 or r.f = 1)``
    (a 0/1 flag set on either side) sets ``either="f"``; parts ``jaro_winkler(l.c, r.c) >= t`` add
    ``("c", t)`` to ``similar``. Other rule shapes are refused with the rule named."""
    cols: list[str] = []
    either: str | None = None
    similar: list[tuple[str, float]] = []
    for part in re.split(r"\s+and\s+", rule.strip(), flags=re.IGNORECASE):
        m = _PART_RE.fullmatch(part.strip())
        if m and m.group(1) == m.group(2):
            cols.append(m.group(1))
            continue
        e = _EITHER_RE.fullmatch(part.strip())
        if e and e.group(1) == e.group(2) and either is None:
            either = e.group(1)
            continue
        j = _SIMILAR_RE.fullmatch(part.strip())
        if j and j.group(1) == j.group(2):
            similar.append((j.group(1), float(j.group(3))))
            continue
        raise ValueError(
            f"blocking rule {rule!r}: incremental linking needs equality conjunctions "
            "'l.col = r.col and ...' (same column on both sides), optionally with one "
            "'(l.flag = 1 or r.flag = 1)' and filters 'jaro_winkler(l.col, r.col) >= t'"
        )
    if not cols:
        raise ValueError(f"blocking rule {rule!r}: needs at least one 'l.col = r.col'")
    return BlockingRule(tuple(cols), either, tuple(similar))


def _similar(a: str, b: str | None, t: float) -> bool:
    return b is not None and (a == b or jaro_winkler(a, b) >= t)


def _none(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item") and not isinstance(v, str):
        return v.item()
    return v


@dataclass
class LinkResult:
    """What one batch did. ``person_of``: new record id → person id (existing or created)."""

    person_of: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    grown: dict[str, int] = field(default_factory=dict)  # existing person -> records added
    merged: dict[str, list[str]] = field(default_factory=dict)  # survivor -> absorbed persons
    links: list[tuple[str, str, float, str]] = field(default_factory=list)  # a, b, probability, rule
    review: list[dict[str, Any]] = field(default_factory=list)
    confidence: dict[str, tuple[float, str]] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)  # identifier values found shared now
    stats: dict[str, Any] = field(default_factory=dict)
    features: pd.DataFrame | None = None  # the new records' feature rows (as scored)

    @property
    def touched(self) -> set[str]:
        """Persons whose records changed (created, grown, survivors of merges)."""
        return set(self.created) | set(self.grown) | set(self.merged)


class _TypeIndex:
    """The records of one person type: columns, blocking indexes, person membership."""

    def __init__(self, settings: MatchSettings, model: MatchModel | None) -> None:
        self.settings = settings
        self.model = model
        self.scorer = Scorer(model) if model is not None else None
        g = settings["guards"]
        self.det_cols = [c for c in g.get("deterministic_columns") or [] if c in _COLUMNS]
        self.accounts = set(g.get("account_columns") or [])
        self.limits = {k: int(v) for k, v in (g.get("max_persons_per_value") or {}).items()}
        self.jw = float(g.get("name_compatible_jw", 0.9))
        self.conflict_cols = [c for c in g.get("conflict_columns") or [] if c in _COLUMNS]
        self.rules = [parse_blocking_rule(r) for r in settings["blocking_rules"]]
        # a rule with an either-flag also indexes (cols + flag): a record without the flag looks up
        # only the flagged records of its block
        keys = (
            {r.cols for r in self.rules}
            | {(*r.cols, r.either) for r in self.rules if r.either}
            | {(c,) for c in self.det_cols}
            | {("surname_py", "hospital_id")}
        )
        self.index: dict[tuple[str, ...], dict[Any, list[int]]] = {k: {} for k in keys}
        self.cols: dict[str, list] = {c: [] for c in _COLUMNS}
        self.uid: list[str] = self.cols["unique_id"]
        self.pos: dict[str, int] = {}
        self.person: list[str | None] = []
        self.members: dict[str, list[int]] = {}
        score_cols: set[str] = set()
        for comp in settings["comparisons"]:
            for lv in comp["levels"]:
                for cond in lv.get("when") or []:
                    arg = next(iter(cond.values()))
                    score_cols.add(arg if isinstance(arg, str) else arg[0])
                if lv.get("tf"):
                    score_cols.add(lv["tf"])
        self.score_cols = sorted(c for c in score_cols if c in _COLUMNS)

    # -- storage -----------------------------------------------------------------------------
    def add_rows(self, df: pd.DataFrame, persons: list[str | None]) -> range:
        start = len(self.uid)
        n = len(df)
        for c in _COLUMNS:
            vals = df[c].tolist() if c in df.columns else [None] * n
            self.cols[c].extend(_none(v) for v in vals)
        self.person.extend(persons)
        end = start + n
        for i in range(start, end):
            self.pos[self.uid[i]] = i
            pid = self.person[i]
            if pid is not None:
                self.members.setdefault(pid, []).append(i)
        for key, idx in self.index.items():
            cv = [self.cols[c] for c in key]
            if len(key) == 1:
                col = cv[0]
                for i in range(start, end):
                    v = col[i]
                    if v is not None:
                        lst = idx.get(v)
                        if lst is None:
                            idx[v] = [i]
                        else:
                            lst.append(i)
            else:
                for i in range(start, end):
                    k = tuple(c[i] for c in cv)
                    if None in k:
                        continue
                    lst = idx.get(k)
                    if lst is None:
                        idx[k] = [i]
                    else:
                        lst.append(i)
        return range(start, end)

    def key_of(self, key: tuple[str, ...], i: int) -> Any:
        if len(key) == 1:
            return self.cols[key[0]][i]
        k = tuple(self.cols[c][i] for c in key)
        return None if None in k else k

    def drop_value(self, i: int, col: str) -> None:
        """Null ``col`` on record ``i`` (a shared identifier) and take it out of the indexes."""
        if self.cols[col][i] is None:
            return
        for key, idx in self.index.items():
            if col in key:
                k = self.key_of(key, i)
                lst = idx.get(k)
                if lst is not None and i in lst:
                    lst.remove(i)
                    if not lst:
                        del idx[k]
        self.cols[col][i] = None

    def row(self, i: int) -> dict[str, Any]:
        cols = self.cols
        return {c: cols[c][i] for c in self.score_cols}

    def set_person(self, i: int, pid: str) -> None:
        self.person[i] = pid
        self.members.setdefault(pid, []).append(i)

    def absorb(self, survivor: str, old: str) -> None:
        for m in self.members.pop(old, []):
            self.person[m] = survivor
            self.members.setdefault(survivor, []).append(m)


class _Groups:
    """Local union-find over nodes (an existing person or a new record) with the batch safeguards."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}
        self.size: dict[Any, int] = {}
        self.vals: dict[Any, dict[str, set[str]]] = {}
        self.uids: dict[Any, set[str]] = {}

    def add(self, node: Any, size: int, vals: dict[str, set[str]], uids: set[str]) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.size[node] = size
            self.vals[node] = vals
            self.uids[node] = uids

    def find(self, x: Any) -> Any:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def conflict(self, ra: Any, rb: Any) -> bool:
        va, vb = self.vals[ra], self.vals[rb]
        for col, sa in va.items():
            sb = vb.get(col)
            if sb and any(not same_identifier(a, b) for a in sa for b in sb):
                return True
        return False

    def forbidden(self, ra: Any, rb: Any, forbid: Mapping[str, set[str]]) -> bool:
        if not forbid:
            return False
        small, other = (ra, rb) if len(self.uids[ra]) <= len(self.uids[rb]) else (rb, ra)
        ou = self.uids[other]
        return any(forbid.get(u, set()) & ou for u in self.uids[small])

    def union(self, ra: Any, rb: Any) -> Any:
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        for col, s in self.vals.pop(rb).items():
            self.vals[ra].setdefault(col, set()).update(s)
        self.uids[ra] |= self.uids.pop(rb)
        return ra


class _TypeLinkPass:
    """The new rows of one person type, linked step by step (module docstring, steps 2–5).

    Each step leaves what the next one reads: the candidate links (strongest per pair), each
    record's best score, the scored pairs, the groups and the pairs refused for review.
    """

    def __init__(
        self,
        linker: IncrementalLinker,
        ptype: str,
        sub: pd.DataFrame,
        res: LinkResult,
        forbid: dict[str, set[str]],
        stats: dict[str, Any],
    ) -> None:
        self.linker = linker
        self.ptype = ptype
        self.ti = ti = linker._type(ptype)
        self.new = ti.add_rows(sub, [None] * len(sub))
        self.is_new = set(self.new)
        self.res = res
        self.forbid = forbid
        self.stats = stats
        self.links: dict[tuple[int, int], tuple[float, str]] = {}
        self.best: dict[int, float] = {}
        self.scored: list[tuple[int, int, Any]] = []
        self.refused_pairs: list[tuple[int, int, float, str]] = []
        self.grp = _Groups()

    def add_link(self, a: int, b: int, p: float, rule: str) -> None:
        k = (a, b) if a < b else (b, a)
        if k not in self.links or self.links[k][0] < p:
            self.links[k] = (p, rule)

    # -- 1. deterministic links with the shared-value guard ----------------------------------------
    def deterministic_links(self) -> None:
        ti = self.ti
        seen: set[tuple[str, Any]] = set()
        for col in ti.det_cols:
            colv = ti.cols[col]
            for i in self.new:
                v = colv[i]
                if v is None or (col, v) in seen:
                    continue
                seen.add((col, v))
                self._link_value(col, v)

    def _link_value(self, col: str, v: Any) -> None:
        """Link the holders of one identifier value, unless it is held by too many persons."""
        ti, ptype, shared = self.ti, self.ptype, self.linker.shared
        if (ptype, col, v) in shared:
            for h in list(ti.index[(col,)].get(v, [])):
                ti.drop_value(h, col)
            return
        holders = list(ti.index[(col,)].get(v, []))
        if len(holders) < 2:
            return
        groups = self.linker._groups(ti, col, holders)
        n_persons = len({g for g in groups if g is not None} or {0})
        if n_persons > ti.limits.get(col, 1):
            shared.add((ptype, col, v))
            self.res.shared.append(
                {
                    "person_type": ptype,
                    "column": col,
                    "value": v,
                    "records": len(holders),
                    "persons": n_persons,
                }
            )
            for h in holders:
                ti.drop_value(h, col)
            return
        lic = ti.cols["license_no"]
        for h, g in zip(holders, groups, strict=True):
            if h not in self.is_new or g is None:
                continue
            for o, go in zip(holders, groups, strict=True):
                if o == h or go != g:
                    continue
                if lic[h] is not None and lic[o] is not None and not same_identifier(lic[h], lic[o]):
                    continue
                self.add_link(h, o, 1.0, f"deterministic:{col}")

    # -- 2. blocking + scoring ---------------------------------------------------------------------
    def scored_links(self) -> None:
        ti, stats = self.ti, self.stats
        if ti.scorer is None:
            return
        floor = float(ti.settings["thresholds"].get("predict_floor", 0.3))
        usable = ti.cols["usable"]
        rows: dict[int, dict] = {}

        def row(i: int) -> dict:
            r = rows.get(i)
            if r is None:
                r = rows[i] = ti.row(i)
            return r

        for i in self.new:
            if not usable[i]:
                continue
            cand = self._candidates(i)
            stats["candidates"] += len(cand)
            ri = row(i)
            for j in cand:
                if j in self.is_new and j < i:
                    continue  # the pair is scored from j's side
                if not usable[j]:
                    continue
                rj = row(j)
                stats["scored_pairs"] += 1
                if ti.scorer.probability(ri, rj, floor) < floor:
                    continue
                self._score_pair(i, j, ti.scorer.score(ri, rj))

    def _candidates(self, i: int) -> set[int]:
        """The records sharing a blocking key with record ``i`` (oversized blocks skipped)."""
        ti = self.ti
        cand: set[int] = set()
        for rule, flag, similar in ti.rules:
            k = ti.key_of(rule, i)
            if k is None:
                continue
            if flag is not None and ti.cols[flag][i] != 1:
                lst = ti.index[(*rule, flag)].get((*k, 1))  # only the flagged records
            else:
                lst = ti.index[rule].get(k)
            if not lst:
                continue
            if len(lst) > self.linker.max_block:
                self.stats["oversized_blocks"] += 1
                continue
            for c, t in similar:
                col, v = ti.cols[c], ti.cols[c][i]
                lst = [] if v is None else [j for j in lst if _similar(v, col[j], t)]
            cand.update(lst)
        cand.discard(i)
        return cand

    def _score_pair(self, i: int, j: int, ex: Any) -> None:
        best = self.best
        best[i] = max(best.get(i, 0.0), ex.probability)
        best[j] = max(best.get(j, 0.0), ex.probability)
        decision = ex.decision
        reason = ex.reason
        if decision == "review" and self.linker._unique_nickname(self.ti, i, j, ex):
            decision, reason = (
                "match",
                "nickname: the only person with this surname at this hospital",
            )
        self.scored.append((i, j, (ex, decision, reason)))
        if decision == "match":
            self.add_link(i, j, ex.probability, "probabilistic")

    # -- 3. local clustering with the batch safeguards and people's constraints --------------------
    def _node(self, i: int) -> Any:
        ti, grp = self.ti, self.grp
        pid = ti.person[i]
        key = ("P", pid) if pid is not None else ("R", i)
        if key not in grp.parent:
            ms = ti.members.get(pid, []) if pid is not None else [i]
            vals: dict[str, set[str]] = {}
            for c in ti.conflict_cols:
                s = {ti.cols[c][m] for m in ms if ti.cols[c][m] is not None}
                if s:
                    vals[c] = s
            grp.add(key, len(ms), vals, {ti.uid[m] for m in ms} if self.forbid else set())
        return key

    def cluster(self, must: list[tuple[str, str]]) -> None:
        ti, grp, node = self.ti, self.grp, self._node
        for i in self.new:
            node(i)
        for a, b in must:
            ia, ib = ti.pos.get(a), ti.pos.get(b)
            if ia is None or ib is None or (ia not in self.is_new and ib not in self.is_new):
                continue
            ra, rb = grp.find(node(ia)), grp.find(node(ib))
            if ra != rb and not grp.forbidden(ra, rb, self.forbid):
                grp.union(ra, rb)
        g = ti.settings["guards"]
        limits = (
            int(g.get("max_cluster_size", 40)),
            int(g.get("big_cluster_min", 3)),
            float(g.get("big_cluster_link", 0.999)),
        )
        pending: dict[tuple, list[set[int]]] = {}
        order = sorted(self.links.items(), key=lambda kv: (-kv[1][0], ti.uid[kv[0][0]], ti.uid[kv[0][1]]))
        for (a, b), (p, rule) in order:
            ra, rb = grp.find(node(a)), grp.find(node(b))
            if ra == rb:
                continue
            why = self._refusal(a, b, ra, rb, p, limits, pending)
            if why:
                self.res.refused.append({"record_a": ti.uid[a], "record_b": ti.uid[b], "reason": why})
                if why == "weak link between big clusters":
                    self.refused_pairs.append((a, b, p, why))
                continue
            grp.union(ra, rb)
            self.res.links.append((ti.uid[a], ti.uid[b], p, rule))

    def _refusal(
        self,
        a: int,
        b: int,
        ra: Any,
        rb: Any,
        p: float,
        limits: tuple[int, int, float],
        pending: dict[tuple, list[set[int]]],
    ) -> str | None:
        """Why the link a–b may not join groups ``ra`` and ``rb`` (None: it may)."""
        grp = self.grp
        max_size, big_min, big_link = limits
        if grp.conflict(ra, rb):
            return "conflicting identifiers"
        if grp.forbidden(ra, rb, self.forbid):
            return "cannot_link constraint"
        if grp.size[ra] + grp.size[rb] > max_size:
            return "cluster too big"
        if min(grp.size[ra], grp.size[rb]) >= big_min and p < big_link:
            k = (ra, rb) if str(ra) < str(rb) else (rb, ra)
            # a second link is needed, and it must come from another new record: several
            # links of one bridging record are not independent evidence
            seen_by = pending.setdefault(k, [])
            seen_by.append({x for x in (a, b) if x in self.is_new})
            if len(seen_by) < 2 or len(set().union(*seen_by)) < 2:
                return "weak link between big clusters"
        return None

    # -- 4. persons: attach, merge, create ---------------------------------------------------------
    def assign_persons(self, mint: Callable[[list[str]], str], age: Mapping[str, int]) -> None:
        ti, grp, res = self.ti, self.grp, self.res
        comps: dict[Any, list[Any]] = {}
        for n in list(grp.parent):
            comps.setdefault(grp.find(n), []).append(n)
        conf: dict[int, float] = {}
        for (a, b), (p, _rule) in self.links.items():
            conf[a] = max(conf.get(a, 0.0), p)
            conf[b] = max(conf.get(b, 0.0), p)
        for nodes in comps.values():
            olds = [n[1] for n in nodes if n[0] == "P"]
            recs = [n[1] for n in nodes if n[0] == "R"]
            if not recs:
                continue
            if not olds:
                pid = mint(sorted(ti.uid[i] for i in recs))
                res.created.append(pid)
            else:
                olds.sort(key=lambda p: (-len(ti.members.get(p, [])), age.get(p, 0), p))
                pid = olds[0]
                if len(olds) > 1:
                    res.merged[pid] = olds[1:]
                    for o in olds[1:]:
                        ti.absorb(pid, o)
                res.grown[pid] = res.grown.get(pid, 0) + len(recs)
            single = not olds and len(recs) == 1
            for i in recs:
                ti.set_person(i, pid)
                u = ti.uid[i]
                res.person_of[u] = pid
                if single:
                    res.confidence[u] = (round(1.0 - self.best.get(i, 0.0), 4), "singleton")
                else:
                    res.confidence[u] = (round(conf.get(i, 1.0), 4), "incremental")

    # -- 5. uncertain pairs between different persons go to review ---------------------------------
    def queue_review(self) -> None:
        ti, res = self.ti, self.res
        gamma_names = [c["name"] for c in ti.settings["comparisons"]]
        for i, j, (ex, decision, reason) in self.scored:
            if decision == "match" and ti.person[i] == ti.person[j]:
                continue
            if decision == "no_match" or ti.person[i] == ti.person[j]:
                continue
            detail = {"reason": reason, **{f.comparison: f.level for f in ex.fields}}
            res.review.append(
                {
                    "record_a": ti.uid[i],
                    "record_b": ti.uid[j],
                    "probability": float(ex.probability),
                    "match_weight": float(ex.total_weight),
                    "detail": detail,
                }
            )
        for a, b, p, why in self.refused_pairs:
            if ti.person[a] != ti.person[b]:
                res.review.append(
                    {
                        "record_a": ti.uid[a],
                        "record_b": ti.uid[b],
                        "probability": float(p),
                        "match_weight": None,
                        "detail": {"reason": why, **dict.fromkeys(gamma_names)},
                    }
                )


class IncrementalLinker:
    """Link new records into existing persons (see the module docstring).

    ``models``: {person_type: MatchModel} from the last full run (``ResolveResult.models`` or the
    saved model file). Person types without a model link on deterministic evidence only.
    """

    def __init__(
        self,
        models: Mapping[str, MatchModel],
        *,
        settings: Mapping[str, MatchSettings] | None = None,
        hospitals: HospitalIndex | None = None,
        max_block: int = 5000,
    ) -> None:
        self.models = dict(models)
        self._settings = dict(settings or {})
        self.hospitals = hospitals or HospitalIndex()
        self.max_block = max_block
        self.types: dict[str, _TypeIndex] = {}
        self.shared: set[tuple[str, str, Any]] = set()  # (person_type, column, value)

    # -- building ------------------------------------------------------------------------------
    def _type(self, ptype: str) -> _TypeIndex:
        ti = self.types.get(ptype)
        if ti is None:
            mdl = self.models.get(ptype)
            st = (
                mdl.settings
                if mdl is not None
                else self._settings.get(ptype) or load_settings(None, ptype if ptype == "patient" else "hcp")
            )
            ti = self.types[ptype] = _TypeIndex(st, mdl)
        return ti

    def load(
        self,
        features: pd.DataFrame,
        person_of: Mapping[str, str],
        shared: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Index already-resolved records: their feature rows as scored (``ResolveResult.features``),
        record id → person id, and the identifier values found shared (``ResolveResult.shared``)."""
        for s in shared:
            self.shared.add((s.get("person_type") or "hcp", s["column"], s["value"]))
        if features is None or not len(features):
            return
        for ptype, sub in features.groupby(features["person_type"].fillna("hcp"), sort=True):
            ti = self._type(str(ptype))
            persons = [person_of.get(u) for u in sub["unique_id"].tolist()]
            ti.add_rows(sub.reset_index(drop=True), persons)

    @classmethod
    def from_resolve(cls, result: Any, **kw: Any) -> IncrementalLinker:
        """A linker over the output of :func:`medscrm.identity.resolve.resolve_records`."""
        lk = cls(result.models, **kw)
        person_of = dict(zip(result.clusters["record_id"], result.clusters["person_id"], strict=True))
        lk.load(result.features, person_of, result.shared)
        return lk

    def __len__(self) -> int:
        return sum(len(t.uid) for t in self.types.values())

    def person_of(self, record_id: str) -> str | None:
        for ti in self.types.values():
            i = ti.pos.get(record_id)
            if i is not None:
                return ti.person[i]
        return None

    def persons(self) -> dict[str, list[str]]:
        return {p: [ti.uid[i] for i in ms] for ti in self.types.values() for p, ms in ti.members.items()}

    # -- linking -------------------------------------------------------------------------------
    def link(
        self,
        table: Any,
        *,
        cannot: Iterable[tuple[str, str]] = (),
        must: Iterable[tuple[str, str]] = (),
        mint: Callable[[list[str]], str] | None = None,
        age: Mapping[str, int] | None = None,
    ) -> LinkResult:
        """Link raw records (DataFrame or iterable of dicts with ``record_id`` + standard columns)."""
        t0 = time.perf_counter()
        df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
        if "record_id" not in df.columns:
            raise ValueError("the new records have no record_id column")
        df = df.astype(object).where(df.notna(), None)
        df["record_id"] = [None if v is None else str(v).strip() for v in df["record_id"]]
        bad = [i for i, v in enumerate(df["record_id"]) if not v]
        if bad:
            raise ValueError(f"record_id: missing on {len(bad)} new record(s) (rows {bad[:5]})")
        dup = df["record_id"].duplicated(keep="first")
        known = [r for r in df["record_id"] if self.person_of(r) is not None or self._indexed(r)]
        if known:
            raise ValueError(f"record_id: {len(known)} record(s) already linked, e.g. {known[:3]}")
        feats, frep = build_features(df.loc[~dup].reset_index(drop=True), self.hospitals)
        out = self.link_features(feats, cannot=cannot, must=must, mint=mint, age=age)
        out.stats["duplicate_record_ids"] = int(dup.sum())
        out.stats["features"] = frep.as_dict()
        out.stats["seconds"] = round(time.perf_counter() - t0, 4)
        return out

    def _indexed(self, rid: str) -> bool:
        return any(rid in ti.pos for ti in self.types.values())

    def link_features(
        self,
        feats: pd.DataFrame,
        *,
        cannot: Iterable[tuple[str, str]] = (),
        must: Iterable[tuple[str, str]] = (),
        mint: Callable[[list[str]], str] | None = None,
        age: Mapping[str, int] | None = None,
    ) -> LinkResult:
        """Link new feature rows (as built by ``build_features``); updates the index."""
        t0 = time.perf_counter()
        res = LinkResult(features=feats)
        mint = mint or (lambda uids: person_id_for(min(uids)))
        forbid: dict[str, set[str]] = {}
        for a, b in cannot:
            forbid.setdefault(a, set()).add(b)
            forbid.setdefault(b, set()).add(a)
        must = list(must)
        stats = {"records": len(feats), "candidates": 0, "scored_pairs": 0, "oversized_blocks": 0}
        for ptype, sub in feats.groupby(feats["person_type"].fillna("hcp"), sort=True):
            self._link_type(str(ptype), sub.reset_index(drop=True), res, forbid, must, mint, age or {}, stats)
        stats["link_seconds"] = round(time.perf_counter() - t0, 4)
        res.stats.update(stats)
        return res

    def _link_type(
        self,
        ptype: str,
        sub: pd.DataFrame,
        res: LinkResult,
        forbid: dict[str, set[str]],
        must: list[tuple[str, str]],
        mint: Callable[[list[str]], str],
        age: Mapping[str, int],
        stats: dict[str, Any],
    ) -> None:
        """Link the new rows of one person type, in the steps of the module docstring."""
        step = _TypeLinkPass(self, ptype, sub, res, forbid, stats)
        step.deterministic_links()
        step.scored_links()
        step.cluster(must)
        step.assign_persons(mint, age)
        step.queue_review()

    def _groups(self, ti: _TypeIndex, col: str, holders: list[int]) -> list[int | None]:
        c = ti.cols
        if col in ti.accounts:
            names = [c["name_py"][h] if c["name_given"][h] else None for h in holders]
            sur = [None] * len(holders)
        else:
            names = [c["name_py"][h] for h in holders]
            sur = [c["surname_py"][h] for h in holders]
        return _name_groups(
            names,
            sur,
            ti.jw,
            [c["name_given"][h] for h in holders],
            [c["name_nick"][h] for h in holders],
        )

    def _unique_nickname(self, ti: _TypeIndex, i: int, j: int, ex: Any) -> bool:
        """The batch's unique-nickname rule: a nickname at hospital H links to the one full-name
        person with that surname at H (pair in the review band, hospitals agree)."""
        g = ti.settings["guards"]
        if not g.get("unique_nickname_link", True):
            return False
        hosp = next((f for f in ex.fields if f.comparison == "hospital"), None)
        if hosp is None or hosp.level <= 0:
            return False
        if ex.probability < float(ti.settings["thresholds"]["review_lower"]):
            return False
        part = ti.cols["name_partial"]
        pi, pj = bool(part[i]), bool(part[j])
        if pi == pj:
            return False
        nick = i if pi else j
        key = (ti.cols["surname_py"][nick], ti.cols["hospital_id"][nick])
        if None in key or str(key[1]).startswith("x:"):
            return False
        names = {
            ti.cols["name_py"][m]
            for m in ti.index[("surname_py", "hospital_id")].get(key, [])
            if not part[m] and ti.cols["name_py"][m] is not None
        }
        return len(names) == 1
