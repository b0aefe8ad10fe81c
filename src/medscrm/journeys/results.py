"""Journey results: per-variant figures of A/B splits with a significance test, and the persons behind
a journey's figures (drill-down, CSV export).

**Unit.** Every enrollment that passed a split step is one observation of the variant the split drew
for it (``journey_step_runs`` of the split: reason ``branch_<i>``; a person who entered twice counts
twice, each time randomised afresh). A variant's *sends* and *blocks* are the send-step outcomes at
steps reachable from the variant's branch, executed at or after the split; *opens* (``Content
Viewed``) and *clicks* (``Content Clicked``) are the feedback events of those sends (by ``send_id``),
counted once per enrollment.

**Conversion.** With a journey goal (``goal:`` rule or a ``goal`` step) an enrollment converted when
it ended ``converted``. Otherwise — or when the user picks one — conversion is an event (name,
optionally ``property = value``) of the person within N days after the split.

**Test.** Each variant is compared with the first (the control): the difference of conversion rates
with a 95 % confidence interval (Newcombe's hybrid score interval from Wilson intervals — sound at
0 % and 100 %) and a two-sided p-value: the pooled two-proportion z-test, or Fisher's exact test when
an expected cell count of the 2×2 table is below 5. With three or more variants a chi-square test of
independence over all of them is reported as well. Below :data:`MIN_PER_VARIANT` enrollments in a
variant, or with no conversion (or no non-conversion) at all, the result says "not enough data"
instead of a figure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from medscrm.access import visible_attributes
from medscrm.common import InvalidInput, NotFound
from medscrm.db.schema import (
    events,
    journey_enrollments,
    journey_step_runs,
    journey_versions,
    journeys,
    persons,
)
from medscrm.exports import SafeDictWriter
from medscrm.journeys.model import Journey, SplitStep, validate_definition

#: fewer enrollments than this in any variant: no test, "not enough data"
MIN_PER_VARIANT = 10
#: Cochran's rule: an expected cell count below this uses Fisher's exact test instead of the z-test
MIN_EXPECTED = 5
OPEN_EVENT = "Content Viewed"
CLICK_EVENT = "Content Clicked"
DEFAULT_EVENT = CLICK_EVENT
DEFAULT_DAYS = 14
MAX_DAYS = 365
PERSON_FIELDS = ("name", "hospital", "department", "title", "phone", "email")


# --- the statistics ---------------------------------------------------------------------------------
def wilson(x: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion x/n (n > 0)."""
    p = x / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float]:
    """95 % confidence interval of p1 − p0 (Newcombe 1998, method 10: hybrid score)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1)
    l0, u0 = wilson(x0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def compare(x1: int, n1: int, x0: int, n0: int) -> dict[str, Any]:
    """Variant (x1 conversions of n1) against the control (x0 of n0): the difference with its 95 % CI,
    the test used (``z`` or ``fisher``) and its two-sided p-value; ``enough`` False (and no figures)
    below the minimum counts."""
    out: dict[str, Any] = {"test": None, "statistic": None, "p_value": None, "diff": None, "ci": None}
    total_x, total_n = x0 + x1, n0 + n1
    if min(n0, n1) < MIN_PER_VARIANT:
        return {**out, "enough": False, "why": "too_few_entered"}
    if total_x == 0 or total_x == total_n:
        return {**out, "enough": False, "why": "no_variation"}
    from scipy import stats  # lazy: scipy is slow to import and only results need it

    pooled = total_x / total_n
    expected = [n * q for n in (n0, n1) for q in (pooled, 1 - pooled)]
    diff = x1 / n1 - x0 / n0
    lo, hi = newcombe(x1, n1, x0, n0)
    if min(expected) < MIN_EXPECTED:
        _, p = stats.fisher_exact([[x1, n1 - x1], [x0, n0 - x0]], alternative="two-sided")
        test, statistic = "fisher", None
    else:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
        statistic = diff / se
        p = 2 * stats.norm.sf(abs(statistic))
        test = "z"
    return {
        "enough": True,
        "why": None,
        "test": test,
        "statistic": statistic,
        "p_value": float(min(1.0, max(0.0, p))),
        "diff": diff,
        "ci": (lo, hi),
    }


def chi_square(counts: list[tuple[int, int]]) -> dict[str, Any] | None:
    """Chi-square test of independence over k ≥ 3 variants ((conversions, entered) each); None when
    there is not enough data."""
    if len(counts) < 3 or any(n < MIN_PER_VARIANT for _, n in counts):
        return None
    total_x = sum(x for x, _ in counts)
    if total_x == 0 or total_x == sum(n for _, n in counts):
        return None
    from scipy import stats

    res = stats.chi2_contingency([[x, n - x] for x, n in counts], correction=False)
    return {
        "test": "chi2",
        "statistic": float(res.statistic),
        "dof": int(res.dof),
        "p_value": float(res.pvalue),
    }


# --- the journey's data -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Conversion:
    """What counts as converted: the journey goal (``mode="goal"``) or an event within ``days`` after
    the split, optionally with ``prop = value``."""

    mode: str = "goal"
    event: str | None = None
    prop: str | None = None
    value: str | None = None
    days: int = DEFAULT_DAYS

    def check(self) -> Conversion:
        if self.mode not in ("goal", "event"):
            raise InvalidInput("conversion", "must be 'goal' or 'event'")
        if self.mode == "event":
            if not (self.event or "").strip():
                raise InvalidInput("conversion.event", "the event name is required")
            if not 1 <= int(self.days) <= MAX_DAYS:
                raise InvalidInput("conversion.days", f"must be between 1 and {MAX_DAYS}")
            if (self.value or "").strip() and not (self.prop or "").strip():
                raise InvalidInput("conversion.property", "a value needs the property it applies to")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "event": self.event,
            "property": self.prop,
            "value": self.value,
            "days": self.days,
        }


def _rule_events(rule: Any) -> list[str]:
    """Event names a rule of the DSL mentions (``{"event": name, …}`` anywhere in it)."""
    out: list[str] = []
    if isinstance(rule, dict):
        if isinstance(rule.get("event"), str):
            out.append(rule["event"])
        for v in rule.values():
            out += _rule_events(v)
    elif isinstance(rule, list):
        for v in rule:
            out += _rule_events(v)
    return out


def has_goal(journey: Journey) -> bool:
    return journey.goal is not None or any(s.type == "goal" for s in journey.steps)


def default_conversion(journey: Journey) -> Conversion:
    """The journey's goal where it has one; else the first event its branch conditions test (what the
    journey waits for, e.g. "Webinar Attended"), else a click on the content it sent, within 14 days."""
    if has_goal(journey):
        return Conversion(mode="goal")
    for s in journey.steps:
        names = _rule_events(getattr(s, "condition", None))
        if names:
            return Conversion(mode="event", event=names[0])
    return Conversion(mode="event", event=DEFAULT_EVENT)


def _journey(conn: sa.Connection, tenant_id: str, key: str) -> tuple[dict[str, Any], Journey]:
    j = journeys
    row = conn.execute(sa.select(j).where(j.c.tenant_id == tenant_id, j.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"journey {key!r} not found")
    v = journey_versions
    d = conn.execute(
        sa.select(v.c.definition).where(v.c.journey_id == row["id"], v.c.version == row["current_version"])
    ).scalar_one()
    return dict(row), validate_definition(d)


def _reachable(journey: Journey, start: str | None) -> set[str]:
    seen: set[str] = set()
    stack = [start] if start else []
    while stack:
        cur = stack.pop()
        if cur in seen or cur not in journey._by_id():
            continue
        seen.add(cur)
        stack += [t for _, t in journey.step(cur).targets()]
    return seen


def _variant_of(reason: str | None, detail: Any) -> int | None:
    if isinstance(detail, dict) and isinstance(detail.get("branch"), int):
        return detail["branch"]
    if reason and reason.startswith("branch_") and reason[7:].isdigit():
        return int(reason[7:])
    return None


def _split_entries(
    conn, tenant_id: str, journey_id: str, step_id: str
) -> dict[str, tuple[int, str, dt.datetime]]:
    """enrollment id -> (variant, person id, split time): the first pass of each enrollment."""
    r = journey_step_runs
    out: dict[str, tuple[int, str, dt.datetime]] = {}
    for eid, pid, reason, detail, at in conn.execute(
        sa.select(r.c.enrollment_id, r.c.person_id, r.c.reason, r.c.detail, r.c.executed_at)
        .where(r.c.tenant_id == tenant_id, r.c.journey_id == journey_id, r.c.step_id == step_id)
        .where(r.c.step_type == "split")
        .order_by(r.c.executed_at, r.c.visit)
    ):
        v = _variant_of(reason, detail)
        if v is not None and eid not in out:
            out[eid] = (v, pid, at)
    return out


def _chunks(items: list[str], n: int = 2000):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _converted(
    conn, tenant_id: str, journey_id: str, entries: dict[str, tuple[int, str, dt.datetime]], conv: Conversion
) -> set[str]:
    """The enrollment ids (of ``entries``) that converted."""
    eids = list(entries)
    out: set[str] = set()
    if conv.mode == "goal":
        e = journey_enrollments
        for chunk in _chunks(eids):
            out |= set(
                conn.execute(
                    sa.select(e.c.id).where(
                        e.c.tenant_id == tenant_id, e.c.id.in_(chunk), e.c.status == "converted"
                    )
                ).scalars()
            )
        return out
    by_person: dict[str, list[tuple[str, dt.datetime]]] = {}
    for eid, (_, pid, at) in entries.items():
        by_person.setdefault(pid, []).append((eid, at))
    window = dt.timedelta(days=int(conv.days))
    first = min((at for _, _, at in entries.values()), default=None)
    if first is None:
        return out
    ev = events
    prop, value = (conv.prop or "").strip(), (conv.value or "").strip()
    for chunk in _chunks(sorted(by_person)):
        q = sa.select(ev.c.person_id, ev.c.timestamp, ev.c.properties).where(
            ev.c.tenant_id == tenant_id,
            ev.c.event == conv.event.strip(),
            ev.c.person_id.in_(chunk),
            ev.c.timestamp >= first,
        )
        for pid, ts, props in conn.execute(q):
            if prop and value and str((props or {}).get(prop)) != value:
                continue
            if prop and not value and (props or {}).get(prop) in (None, ""):
                continue
            for eid, at in by_person.get(pid, []):
                if at <= ts <= at + window:
                    out.add(eid)
    return out


def split_results(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    conversion: Conversion | None = None,
) -> dict[str, Any]:
    """Per split step of the journey's current version, per variant: entered (enrollments), persons,
    sends, blocked, opens, clicks, converted, the conversion rate, and the comparison with the control
    (:func:`compare`); ``conversion`` defaults to :func:`default_conversion`."""
    row, journey = _journey(conn, tenant_id, key)
    conv = (conversion or default_conversion(journey)).check()
    splits = [s for s in journey.steps if isinstance(s, SplitStep)]
    out: dict[str, Any] = {
        "journey": key,
        "conversion": conv.as_dict(),
        "default_conversion": default_conversion(journey).as_dict(),
        "has_goal": has_goal(journey),
        "min_per_variant": MIN_PER_VARIANT,
        "splits": [],
    }
    r = journey_step_runs
    for s in splits:
        entries = _split_entries(conn, tenant_id, row["id"], s.id)
        converted = _converted(conn, tenant_id, row["id"], entries, conv)
        reach = [_reachable(journey, b.next) for b in s.branches]
        sends: dict[str, list[str]] = {}
        blocked: dict[str, int] = {}
        eids = list(entries)
        steps_after = sorted(set().union(*reach)) if reach else []
        for chunk in _chunks(eids):
            for eid, step_id, outcome, send_id, at in conn.execute(
                sa.select(r.c.enrollment_id, r.c.step_id, r.c.outcome, r.c.send_id, r.c.executed_at).where(
                    r.c.tenant_id == tenant_id,
                    r.c.journey_id == row["id"],
                    r.c.enrollment_id.in_(chunk),
                    r.c.outcome.in_(("sent", "blocked")),
                    r.c.step_id.in_(steps_after),
                )
            ):
                v, _, split_at = entries[eid]
                if v >= len(reach) or step_id not in reach[v] or at < split_at:
                    continue
                if outcome == "sent":
                    sends.setdefault(eid, []).append(send_id)
                else:
                    blocked[eid] = blocked.get(eid, 0) + 1
        send_owner = {sid: eid for eid, ids in sends.items() for sid in ids if sid}
        opened: set[str] = set()
        clicked: set[str] = set()
        pids = sorted({pid for _, pid, _ in entries.values()})
        if send_owner:
            ev = events
            for chunk in _chunks(pids):
                for name, sid in conn.execute(
                    sa.select(ev.c.event, ev.c.properties["send_id"].as_string()).where(
                        ev.c.tenant_id == tenant_id,
                        ev.c.event.in_((OPEN_EVENT, CLICK_EVENT)),
                        ev.c.person_id.in_(chunk),
                    )
                ):
                    eid = send_owner.get(sid)
                    if eid:
                        (opened if name == OPEN_EVENT else clicked).add(eid)
        variants = []
        for i, b in enumerate(s.branches):
            mine = [eid for eid, (v, _, _) in entries.items() if v == i]
            n, x = len(mine), sum(1 for eid in mine if eid in converted)
            variants.append(
                {
                    "index": i,
                    "label": b.label or chr(ord("A") + i),
                    "weight": b.weight,
                    "next": b.next,
                    "entered": n,
                    "persons": len({entries[eid][1] for eid in mine}),
                    "sends": sum(len(sends.get(eid, [])) for eid in mine),
                    "blocked": sum(blocked.get(eid, 0) for eid in mine),
                    "opened": sum(1 for eid in mine if eid in opened),
                    "clicked": sum(1 for eid in mine if eid in clicked),
                    "converted": x,
                    "rate": (x / n) if n else None,
                }
            )
        control = variants[0]
        for v in variants[1:]:
            v["vs_control"] = compare(v["converted"], v["entered"], control["converted"], control["entered"])
        out["splits"].append(
            {
                "step_id": s.id,
                "name": s.name,
                "variants": variants,
                "overall": chi_square([(v["converted"], v["entered"]) for v in variants]),
            }
        )
    return out


# --- drill-down: the persons behind a figure -----------------------------------------------------------
@dataclass(frozen=True)
class Drill:
    """Which persons: a step's outcome (``sent`` / ``blocked``, optionally one block ``reason``), or a
    split's variant (``split`` + ``variant``)."""

    step: str | None = None
    outcome: str | None = None
    reason: str | None = None
    split: str | None = None
    variant: int | None = None

    def check(self) -> Drill:
        if self.split:
            if self.variant is None or self.variant < 0:
                raise InvalidInput("variant", "a split's variant number (0, 1, …) is required")
        elif not self.step:
            raise InvalidInput("step", "name the step (or split and variant) whose persons to list")
        elif self.outcome not in ("sent", "blocked", "entered"):
            raise InvalidInput("outcome", "must be sent, blocked or entered")
        return self


def _drill_runs(conn, tenant_id: str, row: dict[str, Any], journey: Journey, drill: Drill) -> sa.Select:
    """A SELECT of (person_id, outcome, reason, executed_at) rows behind ``drill``."""
    r = journey_step_runs
    base = [r.c.tenant_id == tenant_id, r.c.journey_id == row["id"]]
    if drill.split:
        step = journey._by_id().get(drill.split)
        if not isinstance(step, SplitStep):
            raise InvalidInput("split", f"{drill.split!r} is not a split step of this journey")
        if drill.variant >= len(step.branches):
            raise InvalidInput("variant", f"the split {drill.split!r} has {len(step.branches)} variants")
        return sa.select(r.c.person_id, r.c.outcome, r.c.reason, r.c.executed_at).where(
            *base,
            r.c.step_id == drill.split,
            r.c.step_type == "split",
            r.c.reason == f"branch_{drill.variant}",
        )
    if drill.step not in journey._by_id():
        raise InvalidInput("step", f"{drill.step!r} is not a step of this journey")
    q = sa.select(r.c.person_id, r.c.outcome, r.c.reason, r.c.executed_at).where(
        *base, r.c.step_id == drill.step
    )
    if drill.outcome in ("sent", "blocked"):
        q = q.where(r.c.outcome == drill.outcome)
    if drill.outcome == "blocked" and drill.reason:
        q = q.where(sa.func.coalesce(r.c.reason, "unknown") == drill.reason)
    return q


def persons_behind(
    conn: sa.Connection,
    *,
    tenant_id: str,
    key: str,
    drill: Drill,
    role: str,
    scope: sa.Select | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """The persons behind a figure (one row per step execution: the person's name, hospital,
    department, title, phone and e-mail as ``role`` may see them, the outcome, reason and time), and
    their total. ``scope``: only these person ids (a rep's own HCPs)."""
    row, journey = _journey(conn, tenant_id, key)
    runs = _drill_runs(conn, tenant_id, row, journey, drill.check()).subquery()
    p = persons
    q = sa.select(runs.c.person_id, runs.c.outcome, runs.c.reason, runs.c.executed_at, p.c.attributes).join(
        p, sa.and_(p.c.tenant_id == tenant_id, p.c.id == runs.c.person_id), isouter=True
    )
    if scope is not None:
        q = q.where(runs.c.person_id.in_(scope))
    total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    rows = conn.execute(
        q.order_by(runs.c.executed_at.desc(), runs.c.person_id).limit(limit).offset(offset)
    ).all()
    out = []
    for pid, outcome, reason, at, attrs in rows:
        v = visible_attributes(attrs or {}, role)
        out.append(
            {
                "person_id": pid,
                **{k: v.get(k) for k in PERSON_FIELDS},
                "outcome": outcome,
                "reason": reason,
                "at": at,
            }
        )
    return out, int(total)


def persons_csv(
    conn: sa.Connection, *, tenant_id: str, key: str, drill: Drill, role: str, scope: sa.Select | None = None
) -> str:
    """:func:`persons_behind`, every row, as CSV text (UTF-8 with BOM for Excel); cells a spreadsheet
    would read as a formula are written as text (:mod:`medscrm.exports`)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    cols = ("person_id", *PERSON_FIELDS, "outcome", "reason", "at")
    w = SafeDictWriter(buf, fieldnames=cols, extrasaction="ignore", quoting=csv.QUOTE_MINIMAL)
    w.writeheader()
    offset = 0
    while True:
        page, _ = persons_behind(
            conn, tenant_id=tenant_id, key=key, drill=drill, role=role, scope=scope, limit=5000, offset=offset
        )
        w.writerows({**r, "at": r["at"].isoformat() if r["at"] else ""} for r in page)
        if len(page) < 5000:
            break
        offset += 5000
    return buf.getvalue()
