"""Compilation: semantics on a hand-made dataset (both engines), injection stays inert, random valid
rules compile and run."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import persons
from medscrm.rules import RuleContext, RuleError, compile_rule, parse
from rules.dataset import NOW, load


def make_ctx() -> RuleContext:
    c = RuleContext(tags={"potential_tier": "string", "kol": "bool", "score": "number"})
    c.fields.update(hospital_grade="string", rx_volume="number")
    return c


@pytest.fixture
def data(tenant):
    with tenant.engine.begin() as conn:
        ids = load(conn, tenant.id)
    names = {v: k for k, v in ids.items()}

    def run(rule) -> set[str]:
        out = []
        for shared in (True, False):  # one events pass for all aggregates, or one sub-query per leaf
            q = compile_rule(rule, tenant_id=tenant.id, now=NOW, ctx=make_ctx(), share_aggregates=shared)
            with tenant.engine.connect() as conn:
                out.append({names[i] for i in conn.execute(q).scalars()})
        assert out[0] == out[1]
        return out[0]

    return run


CASES = [
    ({"attr": "title", "op": "in", "value": ["主任医师", "副主任医师"]}, {"p1", "p2", "p5"}),
    ({"attr": "rx_volume", "op": "gte", "value": 100}, {"p1"}),
    ({"attr": "rx_volume", "op": "ne", "value": 30}, {"p1", "p3", "p4", "p5"}),
    ({"attr": "rx_volume", "op": "between", "value": [1, 50]}, {"p2"}),
    ({"attr": "name", "op": "contains", "value": "%_"}, {"p4"}),
    ({"attr": "hospital", "op": "contains", "value": "协和"}, {"p1", "p3"}),
    ({"attr": "hospital", "op": "starts_with", "value": "瑞金"}, {"p4", "p5"}),
    ({"attr": "department", "op": "not_exists"}, {"p4"}),
    ({"attr": "hospital_grade", "op": "not_in", "value": ["三甲"]}, {"p3", "p4", "p5"}),
    ({"tag": "potential_tier", "op": "eq", "value": "A"}, {"p1"}),
    ({"tag": "potential_tier", "op": "ne", "value": "A"}, {"p2", "p3", "p4", "p5"}),
    ({"tag": "kol", "op": "exists"}, {"p2"}),
    ({"tag": "kol", "op": "eq", "value": True}, {"p2"}),
    ({"tag": "score", "op": "gt", "value": 70}, {"p3"}),
    ({"event": "Article Viewed", "op": "gte", "value": 3, "window": {"last": 90, "unit": "days"}}, {"p1"}),
    ({"event": "Article Viewed", "op": "lt", "value": 2, "window": {"last": 90}}, {"p3", "p4", "p5"}),
    (
        {
            "event": "Article Viewed",
            "agg": "sum",
            "property": "minutes",
            "where": {"property": "therapy_area", "op": "eq", "value": "心衰"},
            "op": "gte",
            "value": 20,
            "window": {"last": 90},
        },
        {"p1"},
    ),
    (
        {
            "event": "Article Viewed",
            "agg": "sum",
            "property": "minutes",
            "op": "gte",
            "value": 10,
            "window": {"last": 90},
        },
        {"p1", "p2"},
    ),
    (
        {"event": "Article Viewed", "agg": "distinct", "property": "therapy_area", "op": "gte", "value": 2},
        {"p2"},
    ),
    ({"event": "Article Viewed", "agg": "first", "op": "lt", "value": {"ago": 100, "unit": "days"}}, {"p1"}),
    ({"event": "App Opened", "agg": "last", "op": "gte", "value": {"ago": 7}}, {"p1"}),
    (
        {"event": "Article Viewed", "window": {"since": "2026-02-20", "until": "2026-02-27"}},
        {"p2", "p3"},
    ),
    ({"did": "Webinar Registered", "then": "Webinar Attended", "within": {"days": 7}}, {"p1"}),
    ({"did": "Webinar Registered", "then": "Webinar Attended", "within": {"days": 30}}, {"p1", "p2"}),
    ({"did_not": "App Opened", "window": {"last": 30, "unit": "days"}}, {"p2", "p3", "p4", "p5"}),
    ({"person_type": "patient"}, {"p5"}),
    ({"not": {"person_type": "hcp"}}, {"p5"}),
    (
        {
            "and": [
                {"person_type": "hcp"},
                {"or": [{"tag": "kol", "op": "exists"}, {"attr": "rx_volume", "op": "gt", "value": 100}]},
                {"not": {"did_not": "Article Viewed", "window": {"last": 90}}},
            ]
        },
        {"p1", "p2"},
    ),
]


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_semantics_match_hand_computed_sets(data, rule, expected):
    assert data(rule) == expected


def test_injection_in_values_and_keys_stays_inert(data, tenant):
    evil = ["x' OR '1'='1", "'; DROP TABLE persons; --", "\\'); DELETE FROM events; --", "%", "_"]
    for v in evil:
        assert data({"attr": "title", "op": "eq", "value": v}) == set()
        assert data({"attr": "title", "op": "in", "value": [v, v + "2"]}) == set()
        assert data({"attr": "title", "op": "contains", "value": v}) == set()
        assert data({"event": v, "op": "gte", "value": 1}) == set()
        assert data({"tag": "potential_tier", "op": "eq", "value": v}) == set()
    for bad_key in ("title'; DROP TABLE persons; --", "$.title", "/title", 'a"b'):
        for rule in ({"attr": bad_key, "op": "exists"}, {"tag": bad_key, "op": "exists"}):
            with pytest.raises(RuleError):
                parse(rule, make_ctx())
    with tenant.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(persons)).scalar() >= 6


def test_every_value_is_a_bound_parameter():
    q = compile_rule(
        {
            "and": [
                {"attr": "title", "op": "eq", "value": "SECRET_1"},
                {"event": "SECRET_2", "op": "gte", "value": 987654},
            ]
        },
        tenant_id="t",
        now=NOW,
        ctx=make_ctx(),
    )
    from sqlalchemy.dialects import postgresql

    sql = str(q.compile(dialect=postgresql.dialect()))
    assert "SECRET" not in sql and "987654" not in sql


# --- random valid rules compile and run (DuckDB) ---------------------------------------------------
ops_str = st.sampled_from(["eq", "ne", "contains", "starts_with", "exists", "not_exists"])
text = st.text(min_size=1, max_size=8)
attr_leaf = st.one_of(
    st.builds(
        lambda a, o, v: {"attr": a, "op": o, **({} if "exists" in o else {"value": v})},
        st.sampled_from(["title", "hospital", "name", "hospital_grade"]),
        ops_str,
        text,
    ),
    st.builds(
        lambda o, v: {"attr": "title", "op": o, "value": v},
        st.sampled_from(["in", "not_in"]),
        st.lists(text, min_size=1, max_size=5),
    ),
    st.builds(
        lambda o, v: {"attr": "rx_volume", "op": o, "value": v},
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.integers(-1000, 1000) | st.floats(-1e6, 1e6),
    ),
)
window = st.one_of(
    st.builds(
        lambda n, u: {"last": n, "unit": u}, st.integers(1, 500), st.sampled_from(["days", "hours", "weeks"])
    ),
    st.just({"since": "2025-12-01"}),
    st.just({"since": "2026-01-01", "until": "2026-02-15T08:00:00+08:00"}),
)
event_name = st.sampled_from(["Article Viewed", "App Opened", "Webinar Attended", "Nope"])
event_leaf = st.one_of(
    st.builds(
        lambda e, o, v, w: {"event": e, "op": o, "value": v, "window": w},
        event_name,
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.integers(0, 5),
        window,
    ),
    st.builds(
        lambda a, p, v, wh: {
            "event": "Article Viewed",
            "agg": a,
            "property": p,
            "op": "gte",
            "value": v,
            **wh,
        },
        st.sampled_from(["sum", "avg", "min", "max", "distinct"]),
        st.sampled_from(["minutes", "therapy_area"]),
        st.integers(0, 30),
        st.sampled_from(
            [
                {},
                {"where": {"property": "therapy_area", "op": "in", "value": ["心衰", 3, True]}},
                {"where": [{"property": "minutes", "op": "between", "value": [1, 9]}]},
            ]
        ),
    ),
    st.builds(
        lambda a, o: {"event": "App Opened", "agg": a, "op": o, "value": {"ago": 10}},
        st.sampled_from(["first", "last"]),
        st.sampled_from(["gt", "lte"]),
    ),
    st.builds(
        lambda d: {"did": "Webinar Registered", "then": "Webinar Attended", "within": {"days": d}},
        st.integers(1, 60),
    ),
    st.builds(lambda e, w: {"did_not": e, "window": w}, event_name, window),
)
other_leaf = st.one_of(
    st.builds(
        lambda o, v: {"tag": "potential_tier", "op": o, "value": v},
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["A", "B"]),
    ),
    st.just({"tag": "kol", "op": "exists"}),
    st.builds(
        lambda o, v: {"tag": "score", "op": o, "value": v},
        st.sampled_from(["gt", "lte"]),
        st.integers(0, 100),
    ),
    st.builds(lambda t: {"person_type": t}, st.sampled_from(["hcp", "patient"])),
)
valid_rule = st.recursive(
    st.one_of(attr_leaf, event_leaf, other_leaf),
    lambda ch: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(ch, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(ch, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, ch),
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    eng = make_engine(f"duckdb:///{tmp_path_factory.mktemp('rules') / 'h.duckdb'}")
    upgrade_to_head(eng)
    with eng.begin() as conn:
        load(conn, "ten_hypothesis")
    yield eng
    eng.dispose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rule=valid_rule)
def test_random_valid_rules_compile_and_run_on_duckdb(duck, rule):
    q = compile_rule(rule, tenant_id="ten_hypothesis", now=NOW, ctx=make_ctx())
    with duck.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar()
        got = set(conn.execute(q).scalars())
        # one shared events pass (inner or outer join) = one sub-query per aggregate leaf
        per_leaf = compile_rule(
            rule, tenant_id="ten_hypothesis", now=NOW, ctx=make_ctx(), share_aggregates=False
        )
        assert got == set(conn.execute(per_leaf).scalars())
    assert 0 <= n <= 5
    with duck.connect() as conn:  # NOT of a rule is its complement among active persons
        m = conn.execute(
            sa.select(sa.func.count()).select_from(
                compile_rule({"not": rule}, tenant_id="ten_hypothesis", now=NOW, ctx=make_ctx()).subquery()
            )
        ).scalar()
    assert n + m == 5
