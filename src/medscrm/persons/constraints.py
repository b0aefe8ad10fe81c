"""People's decisions as constraints that every clustering respects.

``must_link`` pairs are joined first; scored links are then added strongest first, and a link is
skipped when it would put a ``cannot_link`` pair into one person. The same pass stops weak chains:
a link below ``strong`` may not join two groups that both already hold ``big`` records or more.
"""

from __future__ import annotations

from collections.abc import Iterable


class _DSU:
    def __init__(self, items: Iterable[str]):
        self.parent = {x: x for x in items}
        self.size = dict.fromkeys(self.parent, 1)
        self.members = {x: {x} for x in self.parent}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        self.members[ra] |= self.members.pop(rb)
        return ra


def constrained_clusters(
    records: Iterable[str],
    links: Iterable[tuple[str, str, float]],
    *,
    must: Iterable[tuple[str, str]] = (),
    cannot: Iterable[tuple[str, str]] = (),
    strong: float = 0.999,
    big: int = 20,
) -> dict[str, list[str]]:
    """Cluster ``records`` from scored ``links`` (a, b, probability) under the constraints.
    Returns cluster key (its smallest record id) -> sorted record ids."""
    dsu = _DSU(records)
    forbid: dict[str, set[str]] = {}
    for a, b in cannot:
        if a in dsu.parent and b in dsu.parent:
            forbid.setdefault(a, set()).add(b)
            forbid.setdefault(b, set()).add(a)

    def allowed(ra: str, rb: str) -> bool:
        small, other = (ra, rb) if dsu.size[ra] <= dsu.size[rb] else (rb, ra)
        other_members = dsu.members[other]
        return not any(forbid.get(x, set()) & other_members for x in dsu.members[small])

    for a, b in must:
        if a in dsu.parent and b in dsu.parent:
            ra, rb = dsu.find(a), dsu.find(b)
            if ra != rb and allowed(ra, rb):
                dsu.union(ra, rb)
    for a, b, p in sorted(links, key=lambda x: (-x[2], x[0], x[1])):
        if a not in dsu.parent or b not in dsu.parent:
            continue
        ra, rb = dsu.find(a), dsu.find(b)
        if ra == rb or not allowed(ra, rb):
            continue
        if p < strong and dsu.size[ra] >= big and dsu.size[rb] >= big:
            continue  # one weak link must not glue two big clusters
        dsu.union(ra, rb)
    out: dict[str, list[str]] = {}
    for members in dsu.members.values():
        ms = sorted(members)
        out[ms[0]] = ms
    return dict(sorted(out.items()))
