"""The segment builder builds what the rule DSL expresses (Chromium, a scored demo-like tenant with
behaviour): the marketer's "心内科 A-tier doctors in 上海 who viewed 心衰 content in the last 90 days",
property aggregates and consents, and the rule JSON edited beside the builder (checked by the server;
a mistake names the field and leaves the builder as it was)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import events, persons, segment_members
from medscrm.outreach import consent as consents
from medscrm.rules import compile_rule
from medscrm.segments import service as segs
from medscrm.web.devserver import DemoTenant, build_tenant, serve_in_thread
from web.conftest import login

HF_EVENT = {
    "event": "Article Viewed",
    "agg": "count",
    "op": "gte",
    "value": 1,
    "window": {"last": 90, "unit": "days"},
    "where": [{"property": "therapy_area", "op": "eq", "value": "心衰"}],
}
SCENARIO = {
    "and": [
        {"attr": "department", "op": "eq", "value": "心内科"},
        {"tag": "potential_tier", "op": "eq", "value": "A"},
        {"attr": "city", "op": "eq", "value": "上海"},
        HF_EVENT,
    ]
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[DemoTenant]:
    """Sources, OneID, tags, behaviour (synthetic events) and scores, as `medscrm demo` builds them; and
    e-mail marketing consent granted for every third HCP (through the outreach module)."""
    tmp = tmp_path_factory.mktemp("sbdsl")
    engine = make_engine(f"duckdb:///{tmp / 'sb.duckdb'}")
    upgrade_to_head(engine)
    tenant = build_tenant(engine, slug="sbtest", data_dir=tmp / "data", hcps=1500, seed=7, scores=True)
    with engine.begin() as conn:
        ids = (
            conn.execute(
                sa.select(persons.c.id)
                .where(persons.c.tenant_id == tenant.tenant_id, persons.c.status == "active")
                .order_by(persons.c.id)
            )
            .scalars()
            .all()
        )
        for i, pid in enumerate(ids):
            if i % 3 == 0:
                consents.set_consent(
                    conn,
                    tenant_id=tenant.tenant_id,
                    person_id=pid,
                    channel="email",
                    purpose="marketing",
                    status="granted",
                    source="test_form",
                    actor="test",
                )
    # The synthetic behaviour is drawn per person id (new ids each build), so a handful of 上海
    # cardiologists of tier A may have read nothing on heart failure lately: three of them read a 心衰
    # article yesterday, as the demo's own events record it, so the scenario's count is never 0 by luck.
    target = {"and": SCENARIO["and"][:3]}
    chosen = sorted(evaluate_engine(engine, tenant.tenant_id, target))[:3]
    assert chosen, "the demo data has no tier-A cardiologists in 上海"
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(events),
            [
                {
                    "id": f"evt_sbdsl_{i}",
                    "tenant_id": tenant.tenant_id,
                    "source_id": "synth-behaviour",
                    "message_id": f"sbdsl-{i}",
                    "type": "track",
                    "event": "Article Viewed",
                    "person_id": pid,
                    "timestamp": now - dt.timedelta(days=1),
                    "received_at": now,
                    "properties": {"therapy_area": "心衰", "minutes": 6.5, "channel": "wechat"},
                }
                for i, pid in enumerate(chosen)
            ],
        )
    yield tenant
    engine.dispose()


@pytest.fixture(scope="module")
def base_url(demo: DemoTenant, tmp_path_factory) -> Iterator[str]:
    from medscrm.app import create_app

    app = create_app(demo.engine, spool_dir=tmp_path_factory.mktemp("spool"), fsync=False)
    with serve_in_thread(app) as url:
        yield url


def evaluate_engine(engine: sa.Engine, tenant_id: str, rule) -> set[str]:
    """The segments service's own evaluation of ``rule`` (its context: synonyms, tags, scores)."""
    with engine.connect() as conn:
        ctx = segs.context(conn, tenant_id=tenant_id)
        return set(conn.execute(compile_rule(rule, tenant_id=tenant_id, ctx=ctx)).scalars())


def evaluate(demo: DemoTenant, rule) -> set[str]:
    return evaluate_engine(demo.engine, demo.tenant_id, rule)


def wait_count(page, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('#live-count')?.dataset.count === n", arg=str(n), timeout=20_000
    )


def builder_rule(page):
    return page.evaluate("() => window.medscrmBuilder.rule()")


def json_text(page):
    return json.loads(page.eval_on_selector("#rule-json", "e => e.value"))


def add(page, kind: str):
    """A new condition of ``kind`` at the end of the top group; returns its row."""
    page.click("#builder > .group > .group-head .add-cond")
    row = page.locator("#builder > .group > .cond").last
    if kind != "attr":
        row.locator(".cond-kind").select_option(kind)
        row = page.locator("#builder > .group > .cond").last
    return row


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_marketer_builds_the_heart_failure_segment(browser, base_url, demo, lang):
    expected = evaluate(demo, SCENARIO)
    assert len(expected) > 0  # the demo data holds such doctors: the count below is not trivially 0
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.goto(base_url + "/segments/new")
    page.wait_for_selector("#preview-empty")

    dept = add(page, "attr")
    dept.locator(".cond-name").select_option("department")
    dept = page.locator("#builder > .group > .cond").nth(0)
    dept.locator(".cond-op").select_option("eq")
    dept.locator(".cond-value").fill("心内科")  # a synonym: read as 心血管内科, as imports store it
    page.wait_for_selector("#normalised")

    tier = add(page, "tag")
    tier.locator(".cond-name").select_option("potential_tier")
    tier = page.locator("#builder > .group > .cond").nth(1)
    tier.locator(".cond-op").select_option("eq")
    tier = page.locator("#builder > .group > .cond").nth(1)
    value = tier.locator(".cond-value")
    value.focus()  # the tag's values come from the data
    page.wait_for_function("document.querySelectorAll('#tagvalues-potential_tier option').length > 0")
    offered = page.eval_on_selector_all("#tagvalues-potential_tier option", "os => os.map(o => o.value)")
    assert "A" in offered and set(offered) <= {"A", "B", "C"}
    value.fill("A")

    city = add(page, "attr")
    city.locator(".cond-name").select_option("city")
    city = page.locator("#builder > .group > .cond").nth(2)
    city.locator(".cond-op").select_option("eq")
    city.locator(".cond-value").fill("上海")

    ev = add(page, "event")
    ev.locator(".cond-name").fill("Article Viewed")
    ev.locator(".cond-agg").select_option("count")
    ev = page.locator("#builder > .group > .cond").nth(3)
    ev.locator(".cond-op").select_option("gte")
    ev.locator(".cond-value").fill("1")
    ev.locator(".cond-window").select_option("last")
    ev = page.locator("#builder > .group > .cond").nth(3)
    ev.locator(".cond-days").fill("90")
    ev.locator(".cond-unit").select_option("days")
    ev.locator(".add-where").click()
    ev = page.locator("#builder > .group > .cond").nth(3)
    prop = ev.locator(".where-property")
    prop.focus()  # the event's property names come from its data; identifying ones never
    page.wait_for_function("document.querySelectorAll('#props-Article_20Viewed option').length > 0")
    names = page.eval_on_selector_all("#props-Article_20Viewed option", "os => os.map(o => o.value)")
    assert "therapy_area" in names and "minutes" in names
    prop.fill("therapy_area")
    ev.locator(".where-op").select_option("eq")
    where_value = ev.locator(".where-value")
    where_value.focus()
    page.wait_for_function(
        "document.querySelectorAll('#evalues-Article_20Viewed-therapy_area option').length > 0"
    )
    areas = page.eval_on_selector_all(
        "#evalues-Article_20Viewed-therapy_area option", "os => os.map(o => o.value)"
    )
    assert "心衰" in areas
    where_value.fill("心衰")

    wait_count(page, len(expected))
    assert builder_rule(page) == SCENARIO
    assert json_text(page) == SCENARIO  # the JSON beside the builder follows it
    assert page.locator("#preview-invalid").count() == 0

    key = f"hf_shanghai_{lang}"
    page.fill("#seg-key", key)
    page.fill("#seg-name", f"心衰 上海 A {lang}")
    page.click("#save-segment")
    page.wait_for_url(re.compile(rf".*/segments/{key}\?saved=1$"))
    with demo.engine.connect() as conn:
        seg = segs.get(conn, tenant_id=demo.tenant_id, key=key)
        members = set(
            conn.execute(
                sa.select(segment_members.c.person_id).where(
                    segment_members.c.tenant_id == demo.tenant_id, segment_members.c.segment_id == seg["id"]
                )
            ).scalars()
        )
    assert seg["rule"] == SCENARIO
    assert members == expected == evaluate(demo, seg["rule"])
    # the saved segment opens in the builder as it was built
    page.wait_for_selector("#live-count")
    assert builder_rule(page) == SCENARIO
    assert page.locator("#builder .where-value").input_value() == "心衰"
    page.context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_aggregates_consents_and_the_json_editor(browser, base_url, demo, lang):
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.goto(base_url + "/segments/new")
    page.wait_for_selector("#preview-empty")

    # the minutes read in the last 90 days add up to at least 10
    agg = add(page, "event")
    agg.locator(".cond-name").fill("Article Viewed")
    agg.locator(".cond-agg").select_option("sum")
    agg = page.locator("#builder > .group > .cond").nth(0)
    agg.locator(".cond-property").fill("minutes")
    agg.locator(".cond-op").select_option("gte")
    agg.locator(".cond-value").fill("10")
    total = {
        "event": "Article Viewed",
        "agg": "sum",
        "op": "gte",
        "value": 10,
        "window": {"last": 90, "unit": "days"},
        "property": "minutes",
    }
    n_sum = len(evaluate(demo, {"and": [total]}))
    assert n_sum > 0
    wait_count(page, n_sum)

    # and they may be e-mailed for marketing
    c = add(page, "consent")
    c.locator(".cond-channel").select_option("email")
    c.locator(".cond-purpose").select_option("marketing")
    c.locator(".cond-status").select_option("granted")
    consent = {"consent": "email", "purpose": "marketing", "status": "granted"}
    rule = {"and": [total, consent]}
    both = evaluate(demo, rule)
    assert 0 < len(both) < n_sum
    wait_count(page, len(both))
    assert builder_rule(page) == rule and json_text(page) == rule

    # a mistake in the JSON: the server names the field, the builder stays as it was
    bad = {"and": [total, {**consent, "consent": "fax"}]}
    page.fill("#rule-json", json.dumps(bad, ensure_ascii=False))
    page.wait_for_selector("#json-errors li")
    err = page.locator("#json-errors li").first
    assert err.get_attribute("data-path") == "and[1].consent"
    assert "fax" in err.inner_text()
    assert ("渠道" if lang == "zh" else "channel") in err.inner_text()
    assert page.locator("#rule-json.has-err").count() == 1
    assert builder_rule(page) == rule
    assert page.locator("#builder .cond-channel").input_value() == "email"
    assert page.locator("#live-count").get_attribute("data-count") == str(len(both))

    page.fill("#rule-json", '{"and": [')  # not JSON at all
    page.wait_for_function("document.querySelector('#json-errors li')?.dataset.path === ''")
    assert ("JSON" in page.locator("#json-errors").inner_text()) and builder_rule(page) == rule

    # a valid edit replaces the builder's conditions and the preview follows
    edited = {
        "or": [
            {**total, "agg": "avg", "value": 5},
            {"not": consent},
            {"score": "lead_score", "op": "gte", "value": 50},
        ]
    }
    page.fill("#rule-json", json.dumps(edited, ensure_ascii=False))
    page.wait_for_selector("#builder > .group > .cond[data-kind=score]")
    assert page.locator("#json-errors li").count() == 0
    assert builder_rule(page) == edited
    assert page.locator("#builder > .group > .group-head .group-op").input_value() == "or"
    assert page.locator("#builder .cond[data-kind=event] .cond-agg").input_value() == "avg"
    assert page.locator("#builder .cond[data-kind=score] .cond-value").input_value() == "50"
    assert page.locator("#builder .group.negated .cond[data-kind=consent]").count() == 1
    n_edited = len(evaluate(demo, edited))
    assert n_edited > 0
    wait_count(page, n_edited)
    page.context.close()


def test_suggestion_endpoints_read_the_data_and_refuse_identifying_properties(browser, base_url, demo):
    with demo.engine.begin() as conn:  # an event carrying a phone number in its properties
        conn.execute(
            sa.insert(events).values(
                id="evt_pii_1",
                tenant_id=demo.tenant_id,
                source_id="src",
                message_id="pii-1",
                type="track",
                event="Form Submitted",
                person_id=None,
                timestamp=dt.datetime.now(dt.UTC),
                received_at=dt.datetime.now(dt.UTC),
                properties={"phone": "+8613800138000", "form": "signup"},
            )
        )
        area = sa.cast(events.c.properties["therapy_area"].as_string(), sa.String)
        held = dict(
            conn.execute(
                sa.select(area, sa.func.count())
                .where(events.c.tenant_id == demo.tenant_id, events.c.event == "Article Viewed")
                .where(area.is_not(None))
                .group_by(area)
            ).all()
        )
    page = login(browser, base_url, demo, "analyst", lang="en")
    props = page.request.get(base_url + "/segments/event-properties?event=Form%20Submitted").json()
    assert [p["name"] for p in props["properties"]] == ["form"]
    assert (
        page.request.get(base_url + "/segments/event-values?event=Form%20Submitted&property=phone").json()[
            "values"
        ]
        == []
    )
    vals = page.request.get(
        base_url + "/segments/event-values?event=Article%20Viewed&property=therapy_area"
    ).json()["values"]
    assert {v["value"]: v["count"] for v in vals} == held
    props = page.request.get(base_url + "/segments/event-properties?event=Article%20Viewed").json()
    by_name = {p["name"]: p for p in props["properties"]}
    assert by_name["minutes"]["type"] == "number" and by_name["therapy_area"]["label"] == "Therapy area"
    assert page.request.get(base_url + "/segments/event-values?event=x&property=a;b").status == 400
    page.context.close()
    rep = login(browser, base_url, demo, demo.rep_username)
    assert rep.request.get(base_url + "/segments/event-properties?event=Article%20Viewed").status == 403
    assert rep.request.get(base_url + "/segments/tag-values?tag=potential_tier").status == 403
    rep.context.close()
