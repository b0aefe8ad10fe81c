"""Stable person ids across runs: a cluster keeps its id when it grows; splits and merges are told.

Given the previous assignment (record → person id) and a new clustering (record → cluster key),
each new cluster inherits the previous id that covers most of its records (ties: the older id, then
the smaller id); an old id goes to one cluster only. Clusters with no old id get a new one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from medscrm.common import new_id


@dataclass
class Assignment:
    person_of: dict[str, str]  # cluster key -> person id
    created: list[str] = field(default_factory=list)
    grown: dict[str, int] = field(default_factory=dict)  # person id -> records added
    merged: dict[str, list[str]] = field(default_factory=dict)  # surviving person -> absorbed persons
    split: dict[str, list[str]] = field(default_factory=dict)  # old person -> the persons its records went to
    retired: list[str] = field(default_factory=list)  # old ids no longer used (absorbed)


def assign_ids(
    clusters: dict[str, list[str]],
    previous: dict[str, str],
    *,
    mint: Callable[[], str] = lambda: new_id("per"),
    age: dict[str, int] | None = None,
) -> Assignment:
    """``clusters``: cluster key -> record ids. ``previous``: record id -> person id (last run).
    ``age``: person id -> creation order (smaller = older) for tie-breaks."""
    age = age or {}
    overlaps: list[tuple[int, int, str, str]] = []  # (-overlap, age, old id, cluster)
    old_ids_of: dict[str, Counter] = {}
    for key, recs in clusters.items():
        cnt = Counter(previous[r] for r in recs if r in previous)
        old_ids_of[key] = cnt
        for pid, n in cnt.items():
            overlaps.append((-n, age.get(pid, 0), pid, key))
    overlaps.sort()
    person_of: dict[str, str] = {}
    used: set[str] = set()
    for _neg, _age, pid, key in overlaps:
        if key in person_of or pid in used:
            continue
        person_of[key] = pid
        used.add(pid)
    out = Assignment(person_of=person_of)
    for key in sorted(clusters):
        if key not in person_of:
            person_of[key] = mint()
            out.created.append(person_of[key])
    # what changed
    old_members: dict[str, set[str]] = defaultdict(set)
    for r, pid in previous.items():
        old_members[pid].add(r)
    went_to: dict[str, set[str]] = defaultdict(set)
    for key, recs in clusters.items():
        pid = person_of[key]
        for r in recs:
            if r in previous:
                went_to[previous[r]].add(pid)
        absorbed = sorted(p for p in old_ids_of[key] if p != pid)
        if absorbed:
            out.merged[pid] = absorbed
        added = sum(1 for r in recs if previous.get(r) != pid)
        if pid not in out.created and added:
            out.grown[pid] = added
    for old, targets in went_to.items():
        if len(targets) > 1:
            out.split[old] = sorted(targets)
    out.retired = sorted(p for p in old_members if p not in used)
    return out
