"""Journey results on DuckDB and PostgreSQL: a journey with an A/B split runs through the runner, then
conversion events are seeded; the per-variant counts and the test statistic are checked against
figures computed here from the same numbers (scipy, and the interval by its textbook formula)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from journeys.support import NOW, approved_content, email_channel, grant, make_persons, open_policy
from medscrm.common import InvalidInput, new_id
from medscrm.db.schema import events, journey_step_runs, sends
from medscrm.exports import FORMULA_LEADS
from medscrm.journeys import engine as je
from medscrm.journeys import results as jr
from medscrm.journeys import service as js

N = 120


def _definition(key="ab_mail", goal=None):
    d = {
        "key": key,
        "name": key,
        "triggers": [{"type": "api"}],
        "steps": [
            {
                "id": "split",
                "type": "split",
                "branches": [
                    {"weight": 1, "next": "mail_a", "label": "A"},
                    {"weight": 1, "next": "mail_b", "label": "B"},
                ],
            },
            {"id": "mail_a", "type": "send", "channel": "email", "content": "hf_invite", "next": "w"},
            {"id": "mail_b", "type": "send", "channel": "email", "content": "hf_invite", "next": "w"},
            {"id": "w", "type": "wait", "duration": "1d", "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    }
    if goal:
        d["goal"] = goal
    return d


def _event(tenant_id, pid, name, at, props=None):
    return {
        "id": new_id("ev"),
        "tenant_id": tenant_id,
        "source_id": "src",
        "message_id": new_id("m"),
        "type": "track",
        "event": name,
        "person_id": pid,
        "timestamp": at,
        "received_at": at,
        "properties": props or {},
    }


def _run_split(tenant, n=N, goal=None, key="ab_mail"):
    """n persons through the split (the first 10 without consent: blocked); returns person -> variant."""
    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, n, lambda i: {"email": f"d{i}@h.example", "name": f"=医生{i}"})
        approved_content(c, tenant.id, "hf_invite")
        email_channel(c, tenant.id)
        open_policy(c, tenant.id)
        grant(c, tenant.id, pids[10:])
        js.create(c, tenant_id=tenant.id, definition=_definition(key, goal), actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key=key, actor="test", now=NOW)
        js.enroll(c, tenant_id=tenant.id, key=key, person_ids=pids, actor="test", now=NOW)
    je.tick(tenant.engine, worker_id="w", now=NOW, tenant_id=tenant.id, dispatch_sends=False)
    r = journey_step_runs
    with tenant.engine.connect() as c:
        variant = {
            pid: int(reason.removeprefix("branch_"))
            for pid, reason in c.execute(
                sa.select(r.c.person_id, r.c.reason).where(r.c.tenant_id == tenant.id, r.c.step_id == "split")
            )
        }
    assert len(variant) == n and set(variant.values()) == {0, 1}
    return pids, variant


def test_split_counts_and_statistic_match_scipy(tenant):
    pids, variant = _run_split(tenant)
    a = [p for p in pids if variant[p] == 0]
    b = [p for p in pids if variant[p] == 1]
    # conversions: 40 % of A and 15 % of B attend within 7 days of the split; plus events that must
    # not count: too late, another topic, another event name
    conv_a, conv_b = a[: round(len(a) * 0.40)], b[: round(len(b) * 0.15)]
    day = dt.timedelta(days=1)
    rows = [
        _event(tenant.id, p, "Webinar Attended", NOW + 2 * day, {"topic": "心衰"}) for p in conv_a + conv_b
    ]
    rows += [_event(tenant.id, p, "Webinar Attended", NOW + 9 * day, {"topic": "心衰"}) for p in b[-5:]]
    rows += [_event(tenant.id, p, "Webinar Attended", NOW + day, {"topic": "糖尿病"}) for p in b[-10:-5]]
    rows += [_event(tenant.id, p, "Webinar Registered", NOW + day, {"topic": "心衰"}) for p in b[-15:-10]]
    # feedback of the sends: opens and clicks by send id (a second click of one send counts once)
    with tenant.engine.begin() as c:
        send_of = dict(
            c.execute(
                sa.select(sends.c.person_id, sends.c.id).where(
                    sends.c.tenant_id == tenant.id, sends.c.status == "queued"
                )
            ).all()
        )
        sent_a = [p for p in a if p in send_of]
        for p in sent_a[:7]:
            rows.append(_event(tenant.id, p, "Content Viewed", NOW + day, {"send_id": send_of[p]}))
        for p in sent_a[:3] * 2:
            rows.append(_event(tenant.id, p, "Content Clicked", NOW + day, {"send_id": send_of[p]}))
        c.execute(sa.insert(events), rows)
    conv = jr.Conversion(mode="event", event="Webinar Attended", prop="topic", value="心衰", days=7)
    with tenant.engine.connect() as c:
        res = jr.split_results(c, tenant_id=tenant.id, key="ab_mail", conversion=conv)
    (split,) = res["splits"]
    va, vb = split["variants"]
    blocked_a = sum(1 for p in pids[:10] if variant[p] == 0)
    assert (va["entered"], vb["entered"]) == (len(a), len(b))
    assert (va["persons"], vb["persons"]) == (len(a), len(b))
    assert (va["sends"], va["blocked"]) == (len(a) - blocked_a, blocked_a)
    assert vb["sends"] + vb["blocked"] == len(b) and vb["blocked"] == 10 - blocked_a
    assert (va["opened"], va["clicked"], vb["opened"], vb["clicked"]) == (7, 3, 0, 0)
    assert (va["converted"], vb["converted"]) == (len(conv_a), len(conv_b))
    # the statistic, computed here from the same numbers
    x1, n1, x0, n0 = len(conv_b), len(b), len(conv_a), len(a)
    cmp = vb["vs_control"]
    chi2, p_chi2, _, expected = stats.chi2_contingency([[x1, n1 - x1], [x0, n0 - x0]], correction=False)
    assert expected.min() >= 5 and cmp["test"] == "z"
    assert cmp["p_value"] == pytest.approx(p_chi2, rel=1e-9)  # z² is the uncorrected chi-square
    assert cmp["statistic"] ** 2 == pytest.approx(chi2, rel=1e-9)
    assert cmp["diff"] == pytest.approx(x1 / n1 - x0 / n0)
    lo, hi = _newcombe_textbook(x1, n1, x0, n0)
    assert cmp["ci"] == pytest.approx((lo, hi), abs=1e-12)
    assert cmp["ci"][0] < cmp["diff"] < cmp["ci"][1]
    # the default conversion of a goal-less journey: a click on its content
    with tenant.engine.connect() as c:
        default = jr.split_results(c, tenant_id=tenant.id, key="ab_mail")
    assert default["conversion"]["event"] == "Content Clicked"
    assert [v["converted"] for v in default["splits"][0]["variants"]] == [3, 0]
    assert default["splits"][0]["variants"][1]["vs_control"]["test"] == "fisher"  # 3 vs 0: small counts


def _newcombe_textbook(x1, n1, x0, n0, z=1.959963984540054):
    """Newcombe (1998) method 10, from the Wilson interval's closed form (independent of the module)."""

    def wilson(x, n):
        p = x / n
        a = 2 * n * p + z * z
        b = z * math.sqrt(z * z + 4 * n * p * (1 - p))
        return (a - b) / (2 * (n + z * z)), (a + b) / (2 * (n + z * z))

    p1, p0 = x1 / n1, x0 / n0
    (l1, u1), (l0, u0) = wilson(x1, n1), wilson(x0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def test_goal_conversion_small_counts_use_fisher_and_drill_down(tenant):
    goal = {"event": "Webinar Attended", "window": {"last": 30, "unit": "days"}}
    pids, variant = _run_split(tenant, n=40, goal=goal, key="ab_goal")
    a = [p for p in pids if variant[p] == 0]
    b = [p for p in pids if variant[p] == 1]
    with tenant.engine.connect() as c:
        res = jr.split_results(c, tenant_id=tenant.id, key="ab_goal")
    assert res["conversion"]["mode"] == "goal" and res["has_goal"]
    va, vb = res["splits"][0]["variants"]
    assert (va["converted"], vb["converted"]) == (0, 0)
    assert vb["vs_control"] == {**vb["vs_control"], "enough": False, "why": "no_variation", "p_value": None}
    # two of A attend; the engine sees the goal when their wait ends and they leave converted
    with tenant.engine.begin() as c:
        c.execute(
            sa.insert(events),
            [_event(tenant.id, p, "Webinar Attended", NOW + dt.timedelta(hours=1)) for p in a[:2]],
        )
    je.tick(
        tenant.engine,
        worker_id="w",
        now=NOW + dt.timedelta(days=2),
        tenant_id=tenant.id,
        dispatch_sends=False,
    )
    with tenant.engine.connect() as c:
        res = jr.split_results(c, tenant_id=tenant.id, key="ab_goal")
    va, vb = res["splits"][0]["variants"]
    assert (va["converted"], vb["converted"]) == (2, 0)
    cmp = vb["vs_control"]
    assert cmp["test"] == "fisher"
    _, p = stats.fisher_exact([[0, len(b)], [2, len(a) - 2]])
    assert cmp["p_value"] == pytest.approx(p)
    # drill-down: the persons of variant B, masked for an analyst, with a formula-safe CSV
    with tenant.engine.connect() as c:
        rows, total = jr.persons_behind(
            c,
            tenant_id=tenant.id,
            key="ab_goal",
            drill=jr.Drill(split="split", variant=1),
            role="analyst",
            limit=5,
        )
        assert total == len(b) and len(rows) == 5
        assert {r["person_id"] for r in rows} <= set(b)
        assert all("***" in r["email"] for r in rows)
        blocked, nb = jr.persons_behind(
            c,
            tenant_id=tenant.id,
            key="ab_goal",
            drill=jr.Drill(step="mail_a", outcome="blocked", reason="no_consent"),
            role="marketer",
        )
        assert nb == sum(1 for p in pids[:10] if variant[p] == 0) == len(blocked)
        assert {r["reason"] for r in blocked} == {"no_consent"}
        assert all(r["email"].startswith("d") and "***" not in r["email"] for r in blocked)
        text = jr.persons_csv(
            c, tenant_id=tenant.id, key="ab_goal", drill=jr.Drill(split="split", variant=1), role="analyst"
        )
        scoped, n_scoped = jr.persons_behind(
            c,
            tenant_id=tenant.id,
            key="ab_goal",
            drill=jr.Drill(split="split", variant=1),
            role="rep",
            scope=sa.select(sa.literal(b[0])),
        )
        assert n_scoped == 1 and scoped[0]["person_id"] == b[0]
        with pytest.raises(InvalidInput, match="variant"):
            jr.persons_behind(
                c, tenant_id=tenant.id, key="ab_goal", drill=jr.Drill(split="split", variant=5), role="admin"
            )
        with pytest.raises(InvalidInput, match="outcome"):
            jr.persons_behind(
                c,
                tenant_id=tenant.id,
                key="ab_goal",
                drill=jr.Drill(step="mail_a", outcome="x"),
                role="admin",
            )
    lines = text.lstrip("\ufeff").splitlines()
    assert len(lines) == len(b) + 1
    # names begin with "=": never a formula in the file
    assert not any(cell.startswith(FORMULA_LEADS) for line in lines[1:] for cell in line.split(","))
    assert all("'=医生" in line for line in lines[1:])


def test_conversion_input_errors_name_the_field():
    with pytest.raises(InvalidInput, match="conversion.event"):
        jr.Conversion(mode="event", event=" ").check()
    with pytest.raises(InvalidInput, match="conversion.days"):
        jr.Conversion(mode="event", event="x", days=0).check()
    with pytest.raises(InvalidInput, match="conversion.property"):
        jr.Conversion(mode="event", event="x", value="心衰").check()


counts = st.integers(min_value=0, max_value=400)


@settings(max_examples=300, deadline=None)
@given(n1=counts, n0=counts, data=st.data())
def test_compare_edge_cases(n1, n0, data):
    """Zero counts, all converted, tiny and large samples: never an error, never a misleading figure."""
    x1 = data.draw(st.integers(0, n1))
    x0 = data.draw(st.integers(0, n0))
    out = jr.compare(x1, n1, x0, n0)
    if min(n1, n0) < jr.MIN_PER_VARIANT or x1 + x0 in (0, n1 + n0):
        assert out["enough"] is False and out["p_value"] is None and out["ci"] is None
        return
    assert out["enough"] is True and 0.0 <= out["p_value"] <= 1.0
    lo, hi = out["ci"]
    assert -1.0 - 1e-12 <= lo <= out["diff"] <= hi <= 1.0 + 1e-12
    table = [[x1, n1 - x1], [x0, n0 - x0]]
    if out["test"] == "fisher":
        assert out["p_value"] == pytest.approx(stats.fisher_exact(table)[1])
    else:
        assert out["p_value"] == pytest.approx(
            stats.chi2_contingency(table, correction=False)[1], rel=1e-6, abs=1e-300
        )


def test_chi_square_over_three_variants():
    counts3 = [(10, 50), (20, 50), (30, 50)]
    out = jr.chi_square(counts3)
    ref = stats.chi2_contingency([[x, n - x] for x, n in counts3], correction=False)
    assert out["p_value"] == pytest.approx(ref.pvalue) and out["dof"] == 2
    assert jr.chi_square([(0, 50), (0, 50), (0, 50)]) is None
    assert jr.chi_square([(1, 5), (2, 50), (3, 50)]) is None


def test_cli_results_match_the_module(tmp_path):
    import json
    import subprocess
    import sys
    from types import SimpleNamespace

    from medscrm.db import make_engine
    from tests_support import cli_env

    db = tmp_path / "cli.duckdb"
    env = cli_env(MEDSCRM_DATABASE_URL=f"duckdb:///{db}", MEDSCRM_TENANT="clir")

    def run(*args, code=0):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert p.returncode == code, p.stdout + p.stderr
        return p.stdout

    run("tenants", "create", "clir")
    engine = make_engine(f"duckdb:///{db}")
    with engine.connect() as c:
        tid = c.execute(sa.text("select id from tenants where slug = 'clir'")).scalar_one()
    pids, variant = _run_split(SimpleNamespace(engine=engine, id=tid), n=40)
    with engine.begin() as c:
        c.execute(
            sa.insert(events),
            [_event(tid, p, "Webinar Attended", NOW + dt.timedelta(days=1)) for p in pids[::3]],
        )
    conv = jr.Conversion(mode="event", event="Webinar Attended", days=7)
    with engine.connect() as c:
        want = jr.split_results(c, tenant_id=tid, key="ab_mail", conversion=conv)
    engine.dispose()
    got = json.loads(
        run("journeys", "results", "ab_mail", "--event", "Webinar Attended", "--days", "7", "--json")
    )
    assert [v["converted"] for v in got["splits"][0]["variants"]] == [
        v["converted"] for v in want["splits"][0]["variants"]
    ]
    assert got["splits"][0]["variants"][1]["vs_control"]["p_value"] == pytest.approx(
        want["splits"][0]["variants"][1]["vs_control"]["p_value"]
    )
    out = run("journeys", "results", "ab_mail", "--event", "Webinar Attended", "--days", "7")
    assert "Webinar Attended within 7 days" in out and "95% CI" in out
    p = subprocess.run(
        [sys.executable, "-m", "medscrm", "journeys", "results", "ab_mail", "--event", "x", "--days", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "--days" in p.stderr  # the option named, with its range
