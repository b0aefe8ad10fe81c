"""Score (``person_scores``) and consent (``consents``) leaves: validation with node paths,
semantics on both engines, random rules (hypothesis) including restricted evaluation
(``person_ids``) being exactly the full result intersected with the persons."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import consents, person_scores
from medscrm.rules import RuleContext, RuleError, compile_rule, parse
from rules.dataset import NOW, load
from rules.test_rule_compile import make_ctx as base_ctx
from rules.test_rule_compile import valid_rule as base_rule


def make_ctx() -> RuleContext:
    c = base_ctx()
    c.scores |= {"kol_index"}
    return c


def add_scores_and_consents(conn: sa.Connection, tenant_id: str, ids: dict[str, str]) -> None:
    conn.execute(
        sa.insert(person_scores),
        [
            {"tenant_id": tenant_id, "person_id": ids[p], "score_key": k, "value": v, "computed_at": NOW}
            for p, k, v in [
                ("p1", "lead_score", 82.0),
                ("p2", "lead_score", 60.0),
                ("p3", "lead_score", 12.5),
                ("p1", "engagement", 40.0),
                ("p4", "kol_index", 3.0),
            ]
        ],
    )
    rows = [
        ("p1", "sms", "marketing", "granted"),
        ("p1", "email", "marketing", "withdrawn"),
        ("p2", "any", "marketing", "granted"),  # blanket consent for marketing
        ("p2", "email", "marketing", "withdrawn"),  # … but e-mail explicitly withdrawn
        ("p3", "sms", "medical_info", "granted"),
        ("p5", "sms", "marketing", "withdrawn"),
    ]
    conn.execute(
        sa.insert(consents),
        [
            {
                "tenant_id": tenant_id,
                "person_id": ids[p],
                "channel": ch,
                "purpose": pu,
                "status": st_,
                "source": "test",
                "updated_at": NOW,
            }
            for p, ch, pu, st_ in rows
        ],
    )


@pytest.fixture
def data(tenant):
    with tenant.engine.begin() as conn:
        ids = load(conn, tenant.id)
        add_scores_and_consents(conn, tenant.id, ids)
    names = {v: k for k, v in ids.items()}

    def run(rule, person_ids=None) -> set[str]:
        sub = None if person_ids is None else [ids[p] for p in person_ids]
        q = compile_rule(rule, tenant_id=tenant.id, now=NOW, ctx=make_ctx(), person_ids=sub)
        with tenant.engine.connect() as conn:
            return {names[i] for i in conn.execute(q).scalars()}

    return run


CASES = [
    ({"score": "lead_score", "op": "gte", "value": 60}, {"p1", "p2"}),
    ({"score": "lead_score", "op": "lt", "value": 60}, {"p3"}),  # no score: not compared
    ({"score": "lead_score", "op": "between", "value": [10, 61]}, {"p2", "p3"}),
    ({"score": "lead_score", "op": "ne", "value": 60}, {"p1", "p3", "p4", "p5"}),
    ({"score": "lead_score", "op": "not_exists"}, {"p4", "p5"}),
    ({"score": "engagement", "op": "exists"}, {"p1"}),
    ({"score": "kol_index", "op": "eq", "value": 3}, {"p4"}),
    ({"consent": "sms", "purpose": "marketing"}, {"p1", "p2"}),  # p2 through its "any" consent
    ({"consent": "email", "purpose": "marketing"}, set()),  # p1, p2 withdrew e-mail explicitly
    ({"consent": "wecom", "purpose": "marketing"}, {"p2"}),
    ({"consent": "any", "purpose": "marketing"}, {"p2"}),
    ({"consent": "sms", "purpose": "medical_info"}, {"p3"}),
    ({"consent": "sms", "purpose": "marketing", "status": "withdrawn"}, {"p5"}),
    ({"not": {"consent": "sms", "purpose": "marketing"}}, {"p3", "p4", "p5"}),
    (
        {
            "and": [
                {"score": "lead_score", "op": "gte", "value": 50},
                {"consent": "sms", "purpose": "marketing"},
                {"event": "Article Viewed", "op": "gte", "value": 3, "window": {"last": 90}},
            ]
        },
        {"p1"},
    ),
]


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_score_and_consent_semantics(data, rule, expected):
    assert data(rule) == expected
    # restricted to a few persons: exactly the full answer among them
    for subset in (["p1"], ["p2", "p3"], ["p4", "p5", "p1"]):
        assert data(rule, subset) == expected & set(subset)


def test_validation_names_the_bad_node():
    ctx = make_ctx()
    bad = {
        "and": [
            {"score": "lead_scor", "op": "gte", "value": 60},
            {"score": "engagement", "op": "contains", "value": "x"},
            {"score": "engagement", "op": "gte", "value": "high"},
            {"consent": "fax", "purpose": "marketing"},
            {"consent": "sms"},
            {"consent": "sms", "purpose": "spam", "status": "maybe", "extra": 1},
        ]
    }
    with pytest.raises(RuleError) as exc:
        parse(bad, ctx)
    got = {p.path: p.reason for p in exc.value.problems}
    assert got["and[0].score"] == "unknown score 'lead_scor'; did you mean 'lead_score'?"
    assert "not valid for number" in got["and[1].op"]
    assert got["and[2].value"] == "must be a finite number"
    assert "consent channel 'fax' is not valid" in got["and[3].consent"]
    assert "consent purpose missing" in got["and[4].purpose"]
    assert "'spam' is not valid" in got["and[5].purpose"] and "'maybe'" in got["and[5].status"]
    assert "unknown field 'extra'" in got["and[5].extra"]
    # a score key a tenant does not have is unknown without the context's extra keys
    with pytest.raises(RuleError) as exc:
        parse({"score": "kol_index", "op": "exists"}, RuleContext())
    assert exc.value.problems[0].path == "score"


def test_score_and_consent_values_are_bound_parameters():
    from sqlalchemy.dialects import postgresql

    q = compile_rule(
        {
            "and": [
                {"score": "lead_score", "op": "gte", "value": 98765},
                {"consent": "wechat", "purpose": "survey"},
            ]
        },
        tenant_id="t",
        now=NOW,
        ctx=make_ctx(),
        person_ids=["SECRET_PERSON"],
    )
    sql = str(q.compile(dialect=postgresql.dialect()))
    assert "98765" not in sql and "wechat" not in sql and "survey" not in sql and "SECRET" not in sql


# --- hypothesis ----------------------------------------------------------------------------------
score_leaf = st.one_of(
    st.builds(
        lambda k, o, v: {"score": k, "op": o, "value": v},
        st.sampled_from(["lead_score", "engagement", "kol_index"]),
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.integers(0, 100) | st.floats(0, 100),
    ),
    st.builds(
        lambda k, o: {"score": k, "op": o},
        st.sampled_from(["lead_score", "engagement"]),
        st.sampled_from(["exists", "not_exists"]),
    ),
)
consent_leaf = st.builds(
    lambda c, p, s: {"consent": c, "purpose": p, **s},
    st.sampled_from(["email", "sms", "wecom", "wechat", "phone", "any"]),
    st.sampled_from(["marketing", "medical_info", "survey", "service"]),
    st.sampled_from([{}, {"status": "granted"}, {"status": "withdrawn"}]),
)
mixed_rule = st.recursive(
    st.one_of(score_leaf, consent_leaf, base_rule),
    lambda ch: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(ch, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(ch, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, ch),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    eng = make_engine(f"duckdb:///{tmp_path_factory.mktemp('rules_sc') / 'h.duckdb'}")
    upgrade_to_head(eng)
    with eng.begin() as conn:
        ids = load(conn, "ten_hyp_sc")
        add_scores_and_consents(conn, "ten_hyp_sc", ids)
    yield eng, sorted(ids.values())
    eng.dispose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rule=mixed_rule, pick=st.lists(st.integers(0, 4), max_size=5, unique=True))
def test_random_rules_restricted_and_per_leaf_evaluation_equal_full(duck, rule, pick):
    eng, ids = duck
    subset = [ids[i] for i in pick]
    with eng.connect() as conn:
        full = set(
            conn.execute(compile_rule(rule, tenant_id="ten_hyp_sc", now=NOW, ctx=make_ctx())).scalars()
        )
        part = set(
            conn.execute(
                compile_rule(rule, tenant_id="ten_hyp_sc", now=NOW, ctx=make_ctx(), person_ids=subset)
            ).scalars()
        )
        neg = set(
            conn.execute(
                compile_rule({"not": rule}, tenant_id="ten_hyp_sc", now=NOW, ctx=make_ctx())
            ).scalars()
        )
        # one shared events pass for all aggregate leaves = one semi-join per leaf
        per_leaf = set(
            conn.execute(
                compile_rule(rule, tenant_id="ten_hyp_sc", now=NOW, ctx=make_ctx(), share_aggregates=False)
            ).scalars()
        )
    assert per_leaf == full
    assert part == full & set(subset)
    assert not (full & neg) and len(full | neg) == 5


junk_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3)
)


@given(
    st.dictionaries(
        st.sampled_from(["score", "consent", "purpose", "status", "op", "value", "zzz"]),
        junk_value,
        max_size=5,
    )
)
@settings(max_examples=200, deadline=None)
def test_junk_score_and_consent_leaves_only_raise_rule_errors(obj):
    try:
        parse(obj, make_ctx())
    except RuleError as exc:
        assert all(p.reason for p in exc.problems)


def test_consent_leaf_agrees_with_the_outreach_check(tenant):
    """The consent leaf and outreach's ``has_consent`` (used by the send guardrails) agree for every person,
    channel and purpose."""
    from medscrm.outreach.consent import has_consent
    from medscrm.rules.validate import CONSENT_CHANNELS, CONSENT_PURPOSES

    with tenant.engine.begin() as conn:
        ids = load(conn, tenant.id)
        add_scores_and_consents(conn, tenant.id, ids)
    active = [v for k, v in ids.items() if k != "old"]
    with tenant.engine.connect() as conn:
        for ch in CONSENT_CHANNELS:
            for pu in CONSENT_PURPOSES:
                q = compile_rule({"consent": ch, "purpose": pu}, tenant_id=tenant.id, now=NOW, ctx=make_ctx())
                got = set(conn.execute(q).scalars())
                want = {
                    p
                    for p in active
                    if has_consent(conn, tenant_id=tenant.id, person_id=p, channel=ch, purpose=pu)
                }
                assert got == want, (ch, pu)
