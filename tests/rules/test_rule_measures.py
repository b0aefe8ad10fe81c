"""Aggregates of an event property (sum, avg, min, max) with property filters: the compiled rule (shared
events pass and one sub-query per leaf) equals a reference computed in Python from the same events, on
random leaves (hypothesis), on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.db.schema import events, identities, persons
from medscrm.rules import RuleContext, RuleError, compile_rule, parse
from rules.dataset import NOW, load


def _number(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@pytest.fixture
def world(tenant):
    """The dataset's persons and their attributed events (as the compiler attributes them)."""
    with tenant.engine.begin() as conn:
        ids = load(conn, tenant.id)
    with tenant.engine.connect() as conn:
        active = set(
            conn.execute(
                sa.select(persons.c.id).where(persons.c.tenant_id == tenant.id, persons.c.status == "active")
            ).scalars()
        )
        users = {
            v: p
            for v, p in conn.execute(
                sa.select(identities.c.value, identities.c.person_id).where(
                    identities.c.tenant_id == tenant.id, identities.c.type == "user_id"
                )
            )
        }
        evs = []
        for name, pid, uid, ts, props in conn.execute(
            sa.select(
                events.c.event, events.c.person_id, events.c.user_id, events.c.timestamp, events.c.properties
            ).where(events.c.tenant_id == tenant.id)
        ):
            who = pid or users.get(uid)
            if who is not None:
                ts = ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
                evs.append((name, who, ts, props or {}))
    return tenant, ids, active, evs


def _expected(leaf: dict, active: set[str], evs: list) -> set[str]:
    start = NOW - dt.timedelta(days=leaf["window"]["last"]) if "window" in leaf else None
    where = leaf.get("where")
    out = set()
    for pid in active:
        vals = []
        for name, who, ts, props in evs:
            if who != pid or name != leaf["event"] or (start is not None and not (start <= ts < NOW)):
                continue
            if where is not None and str(props.get(where["property"])) != where["value"]:
                continue
            x = _number(props.get(leaf["property"]))
            if x is not None:
                vals.append(x)
        agg = leaf["agg"]
        if agg == "sum":
            m = sum(vals)
        elif not vals:
            continue  # avg/min/max of nothing: no value, never matches
        else:
            m = {"avg": sum(vals) / len(vals), "min": min(vals), "max": max(vals)}[agg]
        if _holds(m, leaf["op"], leaf["value"]):
            out.add(pid)
    return out


def _holds(m: float, op: str, v) -> bool:
    if op == "between":
        return v[0] <= m <= v[1]
    return {"gt": m > v, "gte": m >= v, "lt": m < v, "lte": m <= v}[op]


measure_leaf = st.builds(
    lambda agg, op, v, v2, where, window: {
        "event": "Article Viewed",
        "agg": agg,
        "property": "minutes",
        "op": op,
        "value": sorted([v, v2]) if op == "between" else v,
        **where,
        **window,
    },
    st.sampled_from(["sum", "avg", "min", "max"]),
    st.sampled_from(["gt", "gte", "lt", "lte", "between"]),
    st.integers(0, 40),
    st.integers(0, 40),
    st.sampled_from([{}, {"where": {"property": "therapy_area", "op": "eq", "value": "心衰"}}]),
    st.one_of(st.just({}), st.builds(lambda n: {"window": {"last": n, "unit": "days"}}, st.integers(1, 300))),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(leaf=measure_leaf, negate=st.booleans())
def test_property_aggregates_match_a_python_reference(world, leaf, negate):
    tenant, _, active, evs = world
    want = _expected(leaf, active, evs)
    rule = {"not": leaf} if negate else leaf
    if negate:
        want = active - want
    with tenant.engine.connect() as conn:
        for shared in (True, False):
            q = compile_rule(rule, tenant_id=tenant.id, now=NOW, ctx=RuleContext(), share_aggregates=shared)
            assert set(conn.execute(q).scalars()) == want, (rule, shared)


def test_avg_min_max_on_the_hand_made_dataset(world):
    tenant, ids, _, _ = world
    names = {v: k for k, v in ids.items()}

    def run(rule):
        with tenant.engine.connect() as conn:
            return {
                names[i] for i in conn.execute(compile_rule(rule, tenant_id=tenant.id, now=NOW)).scalars()
            }

    hf = {"property": "therapy_area", "op": "eq", "value": "心衰"}
    # p1: 心衰 minutes 10, 5, 10 in 90 days (and 100 long ago); p2: 7 (肿瘤, as text) and 3 (心衰);
    # p3: "lots" (no number: no value)
    base = {"event": "Article Viewed", "property": "minutes", "window": {"last": 90, "unit": "days"}}
    assert run({**base, "agg": "avg", "op": "gt", "value": 5}) == {"p1"}  # p2: (7 + 3) / 2
    assert run({**base, "agg": "min", "op": "lte", "value": 3}) == {"p2"}
    assert run({**base, "agg": "max", "op": "gte", "value": 7}) == {"p1", "p2"}
    assert run({**base, "agg": "max", "where": hf, "op": "lt", "value": 7}) == {"p2"}
    assert run({"event": "Article Viewed", "agg": "max", "property": "minutes", "op": "gt", "value": 50}) == {
        "p1"
    }
    assert run({"not": {**base, "agg": "avg", "op": "gte", "value": 0}}) == {"p3", "p4", "p5"}


def test_avg_min_max_need_a_property():
    with pytest.raises(RuleError) as e:
        parse({"event": "Article Viewed", "agg": "avg", "op": "gt", "value": 1})
    assert e.value.as_list()[0]["path"] == "property"
    with pytest.raises(RuleError) as e:
        parse({"event": "Article Viewed", "agg": "median", "property": "m", "op": "gt", "value": 1})
    assert e.value.as_list()[0]["path"] == "agg"
