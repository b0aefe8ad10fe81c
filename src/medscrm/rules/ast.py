"""The rule AST: small frozen dataclasses produced by :func:`medscrm.rules.validate.parse`.

Values in the AST are already checked and typed; the compiler trusts them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

UNIT_DELTAS = {"hours": dt.timedelta(hours=1), "days": dt.timedelta(days=1), "weeks": dt.timedelta(weeks=1)}


@dataclass(frozen=True)
class Node:
    path: str


@dataclass(frozen=True)
class And(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    child: Node


@dataclass(frozen=True)
class Window:
    """Either the last ``last`` ``unit``s before ``now`` or an absolute [since, until) range."""

    last: int | None = None
    unit: str = "days"
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def bounds(self, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
        if self.last is not None:
            return now - self.last * UNIT_DELTAS[self.unit], now
        return self.since, self.until


@dataclass(frozen=True)
class Compare:
    """``op`` with its checked ``value`` (a scalar, a tuple for in/not_in/between, or None)."""

    op: str
    value: Any = None


@dataclass(frozen=True)
class Attr(Node):
    attr: str
    type: str  # string, number, bool, date
    cmp: Compare


@dataclass(frozen=True)
class Tag(Node):
    tag: str
    type: str  # string, number, bool
    cmp: Compare


@dataclass(frozen=True)
class PropFilter:
    property: str
    cmp: Compare


@dataclass(frozen=True)
class EventAgg(Node):
    event: str
    agg: str  # count, sum, avg, min, max, distinct, first, last
    property: str | None
    where: tuple[PropFilter, ...]
    cmp: Compare  # for first/last the value is a datetime (or a relative Ago)
    window: Window | None


@dataclass(frozen=True)
class Ago:
    """A time relative to ``now``: ``{"ago": 30, "unit": "days"}``."""

    n: int
    unit: str

    def at(self, now: dt.datetime) -> dt.datetime:
        return now - self.n * UNIT_DELTAS[self.unit]


@dataclass(frozen=True)
class Sequence(Node):
    did: str
    then: str
    within: dt.timedelta
    window: Window | None


@dataclass(frozen=True)
class DidNot(Node):
    event: str
    window: Window | None


@dataclass(frozen=True)
class SegmentRef(Node):
    segment: str


@dataclass(frozen=True)
class PersonType(Node):
    person_type: str


@dataclass(frozen=True)
class Score(Node):
    """A person's score (``person_scores``) compared with a number."""

    score: str
    cmp: Compare


@dataclass(frozen=True)
class Consent(Node):
    """The person's consent (``consents``) for a channel and purpose is ``status``.

    ``granted`` for a channel also holds through a granted ``any``-channel consent of the same purpose,
    unless that channel's own row says otherwise (an explicit withdrawal wins)."""

    channel: str
    purpose: str
    status: str = "granted"
