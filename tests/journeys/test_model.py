"""Journey definitions: structure, durations and the graph validator (hypothesis against an oracle)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.journeys.engine import split_choice, window_start
from medscrm.journeys.model import JourneyError, load_file, parse_duration, validate_definition

EXAMPLE = "src/medscrm/journeys/examples/webinar.yaml"


def _paths(exc: JourneyError) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in exc.problems:
        out[p.path] = f"{out[p.path]}; {p.reason}" if p.path in out else p.reason
    return out


def test_errors_name_the_node():
    bad = {
        "key": "j",
        "name": "J",
        "triggers": [{"type": "event"}, {"type": "nope"}],
        "steps": [
            {"id": "invite", "type": "send", "channel": "email", "content": "c", "next": "gone"},
            {"id": "pause", "type": "wait", "duration": "soon", "next": "loop_a"},
            {"id": "loop_a", "type": "add_tag", "tag": "x", "next": "loop_b"},
            {"id": "loop_b", "type": "branch", "condition": {"tag": "x", "op": "exists"}, "then": "loop_a"},
            {"id": "orphan", "type": "exit"},
            {"id": "split", "type": "split", "branches": [{"weight": 1, "next": "orphan"}]},
            {"id": "fax", "type": "send", "channel": "fax", "content": "c"},
            {"id": "end", "type": "goal", "next": "invite"},
        ],
    }
    with pytest.raises(JourneyError) as ei:
        validate_definition(bad)
    p = _paths(ei.value)
    assert p["steps[invite].next"] == "unknown step 'gone'"
    assert "not a duration" in p["steps[pause].duration"]
    assert "cycle without a wait" in p["steps[loop_a]"] and "loop_b" in p["steps[loop_a]"]
    assert "unreachable" in p["steps[orphan]"]
    assert "steps[split].branches" in p  # at least two branches
    assert "steps[fax].channel" in p
    assert "ends the journey" in p["steps[end].next"]
    assert p["triggers[0].event"] == "is required"
    assert "triggers[1].type" in p


def test_cycle_with_a_wait_is_fine_and_example_is_valid():
    d = {
        "key": "loop",
        "name": "loop",
        "steps": [
            {"id": "a", "type": "add_tag", "tag": "x", "next": "w"},
            {"id": "w", "type": "wait", "duration": "7d", "next": "b"},
            {
                "id": "b",
                "type": "branch",
                "condition": {"tag": "x", "op": "exists"},
                "then": "a",
                "else": "e",
            },
            {"id": "e", "type": "exit"},
        ],
    }
    j = validate_definition(d)
    assert j.entry_step == "a" and j.step("b").else_ == "e"
    web = validate_definition(load_file(EXAMPLE))
    assert {s.type for s in web.steps} >= {"send", "wait_window", "branch", "task", "goal"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2d", 172800),
        ("90m", 5400),
        ("1.5h", 5400),
        ("PT2H30M", 9000),
        ("P1W", 604800),
        ({"days": 1, "hours": 2}, 93600),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "bad", ["0d", "-1d", "2 fortnights", "", "P", "PT", "400d", {"years": 1}, True, None, [1]]
)
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_window_start_china_time():
    # 02:00 UTC = 10:00 Shanghai: inside morning (06-11), before afternoon (14-18)
    t = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    assert window_start(t, "morning") is None
    assert window_start(t, "afternoon") == dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
    # 15:00 UTC = 23:00 Shanghai: inside night (22-06); morning starts tomorrow 06:00 = 22:00 UTC today
    late = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    assert window_start(late, "night") is None
    assert window_start(late, "morning") == dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.UTC)


def test_split_choice_proportions_and_determinism():
    picks = [split_choice(f"e{i}:s:1", [1, 3]) for i in range(20000)]
    share = picks.count(1) / len(picks)
    assert 0.73 < share < 0.77
    assert split_choice("x", [1, 1]) == split_choice("x", [1, 1])


# --- the graph validator against an independent oracle -----------------------------------------
@st.composite
def graphs(draw):
    n = draw(st.integers(1, 8))
    ids = [f"s{i}" for i in range(n)]
    steps = []
    for sid in ids:
        kind = draw(st.sampled_from(["wait", "add_tag", "branch", "split", "exit"]))
        target = st.one_of(st.none(), st.sampled_from(ids + ["ghost"]))
        if kind == "wait":
            steps.append({"id": sid, "type": "wait", "duration": "1h", "next": draw(target)})
        elif kind == "add_tag":
            steps.append({"id": sid, "type": "add_tag", "tag": "t", "next": draw(target)})
        elif kind == "branch":
            steps.append(
                {
                    "id": sid,
                    "type": "branch",
                    "condition": {"tag": "t", "op": "exists"},
                    "then": draw(target),
                    "else": draw(target),
                }
            )
        elif kind == "split":
            k = draw(st.integers(2, 3))
            steps.append(
                {
                    "id": sid,
                    "type": "split",
                    "branches": [{"weight": 1, "next": draw(target)} for _ in range(k)],
                }
            )
        else:
            steps.append({"id": sid, "type": "exit"})
    return {"key": "g", "name": "g", "triggers": [{"type": "api"}], "steps": steps}


def _edges(steps):
    out = {}
    for s in steps:
        t = [s.get("next"), s.get("then"), s.get("else")] + [b.get("next") for b in s.get("branches", [])]
        out[s["id"]] = [x for x in t if x is not None]
    return out


def _oracle_ok(d) -> bool:
    edges = _edges(d["steps"])
    if any(t not in edges for ts in edges.values() for t in ts):
        return False
    seen, todo = {d["steps"][0]["id"]}, [d["steps"][0]["id"]]
    while todo:
        for t in edges[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    if seen != set(edges):
        return False
    # without the wait steps the graph must be acyclic (Kahn's algorithm)
    waits = {s["id"] for s in d["steps"] if s["type"] == "wait"}
    g = {k: [t for t in v if t not in waits] for k, v in edges.items() if k not in waits}
    indeg = {k: 0 for k in g}
    for v in g.values():
        for t in v:
            indeg[t] += 1
    q = [k for k, x in indeg.items() if x == 0]
    removed = 0
    while q:
        k = q.pop()
        removed += 1
        for t in g[k]:
            indeg[t] -= 1
            if indeg[t] == 0:
                q.append(t)
    return removed == len(g)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_graph_validator_matches_oracle(d):
    ok = _oracle_ok(d)
    try:
        validate_definition(d)
        assert ok, "accepted an invalid graph"
    except JourneyError as exc:
        assert not ok, f"rejected a valid graph: {exc}"
        assert all(p.path.startswith("steps[") for p in exc.problems)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
step_like = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["a", "b", "c", "", "1x"]),
        "type": st.sampled_from(["wait", "send", "branch", "split", "x"]),
    },
    optional={
        "next": st.sampled_from(["a", "b", "c", "zz"]) | json_values,
        "duration": json_values | st.sampled_from(["1d", "PT1H", "0s"]),
        "channel": json_values | st.just("email"),
        "content": json_values,
        "condition": json_values,
        "branches": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "key": json_values | st.just("k"),
                "name": json_values | st.just("n"),
                "steps": st.lists(step_like, max_size=5),
            },
            optional={
                "triggers": json_values,
                "entry": json_values,
                "reentry": json_values,
                "caps": json_values,
            },
        ),
    )
)
def test_any_input_gives_journey_error_or_a_journey(data):
    try:
        validate_definition(data)
    except JourneyError as exc:
        assert exc.problems and all(isinstance(p.path, str) and p.reason for p in exc.problems)


def test_a_loop_around_the_wait_is_still_a_cycle_without_a_wait():
    """Found by the oracle test: s0 and s1 form one component that holds a wait (s1), but the branch
    s0 also loops to itself, a loop that never waits."""
    d = {
        "key": "g",
        "name": "g",
        "triggers": [{"type": "api"}],
        "steps": [
            {
                "id": "s0",
                "type": "branch",
                "condition": {"tag": "t", "op": "exists"},
                "then": "s0",
                "else": "s1",
            },
            {"id": "s1", "type": "wait", "duration": "1h", "next": "s0"},
        ],
    }
    with pytest.raises(JourneyError, match=r"steps\[s0\].*cycle without a wait"):
        validate_definition(d)
    d["steps"][0]["then"] = "s1"  # both ways through the wait: valid
    validate_definition(d)
