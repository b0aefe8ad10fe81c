"""Clustering accepted links into persons, with anti-chaining safeguards.

Links are applied strongest first (deterministic links, then by probability) with a union-find.
A union is refused when

* the merged cluster would hold two different values of a conflict column (two licence numbers),
* it would exceed ``max_cluster_size``,
* both clusters already have ``big_cluster_min`` records and the link is weaker than
  ``big_cluster_link``: one weak link must not glue two big clusters; a second independent link
  between the same two clusters is required.

The output is deterministic: person ids are ``p_`` + a hash of the cluster's smallest record id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["ClusterResult", "cluster_links", "person_id_for", "same_identifier"]


def _osa(a: str, b: str) -> int:
    """Optimal-string-alignment distance (substitutions, insertions, deletions, adjacent swaps)."""
    la, lb = len(a), len(b)
    d = [[0] * (lb + 1) for _ in range(la + 1)]
    for i in range(la + 1):
        d[i][0] = i
    for j in range(lb + 1):
        d[0][j] = j
    for i in range(1, la + 1):
        for j in range(1, lb + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[la][lb]


def same_identifier(a: str, b: str) -> bool:
    """Two values of a conflict column denote the same identifier: equal, or one typo apart (one
    digit changed or two adjacent digits swapped — keying errors, not a second licence)."""
    return a == b or (len(a) == len(b) and _osa(a, b) <= 1)


def person_id_for(smallest_record_id: str) -> str:
    return "p_" + hashlib.sha1(smallest_record_id.encode("utf-8")).hexdigest()[:16]


@dataclass
class ClusterResult:
    assignments: pd.DataFrame  # unique_id, person_id, confidence, cluster_size
    refused: list[dict] = field(default_factory=list)


def cluster_links(
    ids: list[str],
    links: pd.DataFrame,
    conflicts: dict[str, dict[str, str]] | None = None,
    *,
    max_cluster_size: int = 40,
    big_cluster_min: int = 3,
    big_cluster_link: float = 0.999,
    best_scores: dict[str, float] | None = None,
) -> ClusterResult:
    """``links``: unique_id_l, unique_id_r, match_probability (1.0 for deterministic links).
    ``conflicts``: column -> {unique_id: value}."""
    index = {u: i for i, u in enumerate(ids)}
    parent = list(range(len(ids)))
    size = [1] * len(ids)
    conflicts = conflicts or {}
    vals: list[dict[str, str] | None] = [None] * len(ids)
    for col, m in conflicts.items():
        for u, v in m.items():
            i = index.get(u)
            if i is not None and v is not None:
                if vals[i] is None:
                    vals[i] = {}
                vals[i][col] = v

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    conf = [0.0] * len(ids)
    refused: list[dict] = []
    pending: dict[tuple[int, int], int] = {}
    if len(links):
        order = links.sort_values(
            ["match_probability", "unique_id_l", "unique_id_r"],
            ascending=[False, True, True],
            kind="mergesort",
        )
        rows = zip(
            order["unique_id_l"].tolist(),
            order["unique_id_r"].tolist(),
            order["match_probability"].tolist(),
            strict=True,
        )
    else:
        rows = iter(())
    for ul, ur, p in rows:
        a, b = index.get(ul), index.get(ur)
        if a is None or b is None:
            continue
        ra, rb = find(a), find(b)
        if ra == rb:
            conf[a] = max(conf[a], p)
            conf[b] = max(conf[b], p)
            continue
        va, vb = vals[ra], vals[rb]
        if va and vb and any(k in vb and not same_identifier(vb[k], v) for k, v in va.items()):
            refused.append({"unique_id_l": ul, "unique_id_r": ur, "reason": "conflicting identifiers"})
            continue
        if size[ra] + size[rb] > max_cluster_size:
            refused.append({"unique_id_l": ul, "unique_id_r": ur, "reason": "cluster too big"})
            continue
        if min(size[ra], size[rb]) >= big_cluster_min and p < big_cluster_link:
            key = (min(ra, rb), max(ra, rb))
            pending[key] = pending.get(key, 0) + 1
            if pending[key] < 2:
                refused.append(
                    {"unique_id_l": ul, "unique_id_r": ur, "reason": "weak link between big clusters"}
                )
                continue
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        if vals[rb]:
            vals[ra] = {**(vals[rb] or {}), **(vals[ra] or {})}
        conf[a] = max(conf[a], p)
        conf[b] = max(conf[b], p)
    roots = [find(i) for i in range(len(ids))]
    smallest: dict[int, str] = {}
    for i, r in enumerate(roots):
        if r not in smallest or ids[i] < smallest[r]:
            smallest[r] = ids[i]
    csize: dict[int, int] = {}
    for r in roots:
        csize[r] = csize.get(r, 0) + 1
    pid = {r: person_id_for(u) for r, u in smallest.items()}
    best_scores = best_scores or {}
    out_conf = []
    for i, r in enumerate(roots):
        if csize[r] == 1:
            out_conf.append(round(1.0 - best_scores.get(ids[i], 0.0), 4))
        else:
            out_conf.append(round(conf[i], 4))
    df = pd.DataFrame(
        {
            "unique_id": ids,
            "person_id": [pid[r] for r in roots],
            "confidence": out_conf,
            "cluster_size": [csize[r] for r in roots],
        }
    )
    return ClusterResult(assignments=df, refused=refused)
