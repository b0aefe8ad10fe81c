"""Validation: every problem at once, each at its JSON path; junk never raises anything but RuleError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.rules import RuleContext, RuleError, SegmentInfo, parse
from medscrm.rules.validate import MAX_DEPTH


def ctx(**kw) -> RuleContext:
    c = RuleContext(tags={"potential_tier": "string", "kol": "bool", "score": "number"}, **kw)
    c.fields.update(hospital_grade="string", rx_volume="number")
    return c


def problems(rule, c=None) -> dict[str, str]:
    with pytest.raises(RuleError) as ei:
        parse(rule, c or ctx())
    return {p.path: p.reason for p in ei.value.problems}


def test_valid_rule_of_every_leaf_parses():
    rule = {
        "and": [
            {"attr": "title", "op": "in", "value": ["主任医师", "副主任医师"]},
            {"attr": "rx_volume", "op": "between", "value": [10, 200]},
            {"tag": "potential_tier", "op": "eq", "value": "A"},
            {"tag": "kol", "op": "exists"},
            {
                "event": "Article Viewed",
                "agg": "sum",
                "property": "minutes",
                "where": {"property": "therapy_area", "op": "eq", "value": "心衰"},
                "op": "gte",
                "value": 3,
                "window": {"last": 90, "unit": "days"},
            },
            {"event": "App Opened", "agg": "last", "op": "gte", "value": {"ago": 7, "unit": "days"}},
            {"did": "Webinar Registered", "then": "Webinar Attended", "within": {"days": 7}},
            {"or": [{"did_not": "App Opened", "window": {"since": "2026-01-01", "until": "2026-02-01"}}]},
            {"not": {"person_type": "patient"}},
        ]
    }
    node = parse(rule, ctx())
    assert len(node.children) == 9


def test_all_problems_reported_with_paths():
    got = problems(
        {
            "and": [
                {"attr": "titel", "op": "eq", "value": "x"},
                {"attr": "title", "op": "gt", "value": "x"},
                {"event": "Article Viewed", "window": {"last": 0, "unit": "days"}},
                {"tag": "nope", "op": "exists"},
                {"segment": "ghost"},
                {"person_type": "robot"},
                {"attr": "rx_volume", "op": "eq", "value": "ten"},
                {"did": "A", "then": "B", "within": {"days": -1}},
                {"event": "X", "agg": "sum", "op": "gt", "value": 1},
                {"attr": "title", "op": "eq", "value": "x", "extra": 1},
                {"bogus": 1},
            ]
        }
    )
    assert "did you mean 'title'" in got["and[0].attr"]
    assert "not valid for string" in got["and[1].op"]
    assert got["and[2].window.last"] == "must be a positive integer ≤ 3650"
    assert "unknown tag" in got["and[3].tag"]
    assert "unknown segment" in got["and[4].segment"]
    assert "hcp" in got["and[5].person_type"]
    assert "number" in got["and[6].value"]
    assert "positive integer" in got["and[7].within.days"]
    assert "property" in got["and[8].property"]
    assert "unknown field 'extra'" in got["and[9].extra"]
    assert "expected one of" in got["and[10]"]


def test_huge_in_list_depth_and_bad_windows():
    got = problems({"attr": "title", "op": "in", "value": ["x"] * 10_001})
    assert "at most 10,000" in got["value"]
    parse({"attr": "title", "op": "in", "value": [str(i) for i in range(10_000)]}, ctx())
    deep: dict = {"person_type": "hcp"}
    for _ in range(MAX_DEPTH + 2):
        deep = {"not": deep}
    assert any("nested too deeply" in r for r in problems(deep).values())
    got = problems({"did_not": "X", "window": {"since": "2026-02-01", "until": "2026-01-01"}})
    assert got["window"] == "until must be after since"
    got = problems({"did_not": "X", "window": {"since": "yesterday"}})
    assert "ISO date" in got["window.since"]
    got = problems({"did_not": "X", "window": {"last": 5, "unit": "fortnights"}})
    assert "window.unit" in got


def test_segment_cycles_rejected():
    segs = {
        "a": SegmentInfo(id="seg_a", kind="dynamic", rule={"segment": "b"}),
        "b": SegmentInfo(id="seg_b", kind="dynamic", rule={"and": [{"segment": "c"}]}),
        "c": SegmentInfo(id="seg_c", kind="dynamic", rule={"person_type": "hcp"}),
    }
    # redefining c to refer to a closes the loop a → b → c → a
    got = problems({"segment": "a"}, ctx(segments=segs, defining_segment="c"))
    assert "cycle" in got["segment"] and "a → b → c" in got["segment"]
    assert "itself" in problems({"segment": "c"}, ctx(segments=segs, defining_segment="c"))["segment"]
    parse({"segment": "a"}, ctx(segments=segs, defining_segment="new"))


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.sampled_from(["eq", "in", "gte", "between", "exists", "title", "kol", "days", "last", "2026-01-01"]),
)
keys = st.sampled_from(
    [
        "and",
        "or",
        "not",
        "attr",
        "tag",
        "event",
        "did",
        "then",
        "did_not",
        "segment",
        "person_type",
        "op",
        "value",
        "agg",
        "property",
        "where",
        "window",
        "within",
        "last",
        "unit",
        "since",
        "until",
        "ago",
        "x",
    ]
)
junk = st.recursive(
    json_leaf,
    lambda ch: st.one_of(st.lists(ch, max_size=4), st.dictionaries(keys, ch, max_size=5)),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk)
def test_junk_never_raises_anything_but_rule_error(rule):
    try:
        parse(rule, ctx(segments={"s": SegmentInfo("seg_s", "dynamic", {"segment": "s"})}))
    except RuleError as exc:
        assert exc.problems and all(isinstance(p.reason, str) for p in exc.problems)
