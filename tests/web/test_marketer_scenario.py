"""The marketer's whole campaign in the browser (Chromium, zh and en), end to end:

"build a segment of 心内科 A-tier doctors in 上海 who viewed 心衰 content in the last 90 days and send
them an approved e-mail": the marketer builds the segment in the builder (an event-property condition)
and saves it, writes the e-mail and submits it; the compliance user approves it (four eyes); the
marketer builds the journey in the graph editor (segment entry → send that e-mail → exit), saves it
and starts it with the segment's current members; the journey runner sends; the local SMTP sink (a
real SMTP server process) receives one message per consenting member. Screenshots of each step go to
``docs/screenshots/scenario-{lang}-*.png`` when ``MEDSCRM_SCREENSHOTS`` names that folder."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from medscrm.common import utcnow
from medscrm.content import service as content
from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import consents as consents_t
from medscrm.db.schema import events, persons, sends
from medscrm.devtools.servers import start_smtp_sink
from medscrm.journeys import engine as je
from medscrm.journeys import service as journeys
from medscrm.outreach import consent as consents
from medscrm.outreach.settings import configure_channel, set_policy
from medscrm.web.devserver import DemoTenant, build_tenant, serve_in_thread
from web.conftest import login
from web.test_segment_builder_dsl import SCENARIO, add, builder_rule, evaluate_engine, wait_count

CHINA = dt.timezone(dt.timedelta(hours=8))
SHOTS = os.environ.get("MEDSCRM_SCREENSHOTS")


def _shot(page, lang: str, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"scenario-{lang}-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    with start_smtp_sink(tmp_path_factory.mktemp("smtp") / "mail.jsonl") as server:
        yield server


@pytest.fixture(scope="module")
def demo(tmp_path_factory, smtp) -> Iterator[DemoTenant]:
    """A demo-like tenant with behaviour and scores; the e-mail channel points at the SMTP sink; no
    caps or quiet hours (the test counts every message); a few 上海 tier-A cardiologists read a 心衰
    article yesterday and two thirds of them agreed to marketing e-mail."""
    tmp = tmp_path_factory.mktemp("scenario")
    engine = make_engine(f"duckdb:///{tmp / 'scenario.duckdb'}")
    upgrade_to_head(engine)
    tenant = build_tenant(engine, slug="scenario", data_dir=tmp / "data", hcps=2000, seed=11, scores=True)
    target = {"and": SCENARIO["and"][:3]}
    chosen = sorted(evaluate_engine(engine, tenant.tenant_id, target))[:6]
    assert len(chosen) >= 2, "the demo data has too few tier-A cardiologists in 上海"
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        configure_channel(
            conn,
            tenant_id=tenant.tenant_id,
            channel="email",
            provider="smtp",
            settings={"host": smtp.host, "port": smtp.port, "from_addr": "medical@pharma.example"},
            actor="test",
        )
        set_policy(
            conn,
            tenant_id=tenant.tenant_id,
            changes={
                "frequency_caps": {"email": [], "sms": [], "wecom": [], "wechat_template": []},
                "quiet_hours": {"start": "00:00", "end": "00:00"},
            },
            actor="test",
        )
        conn.execute(
            sa.insert(events),
            [
                {
                    "id": f"evt_scn_{i}",
                    "tenant_id": tenant.tenant_id,
                    "source_id": "synth-behaviour",
                    "message_id": f"scn-{i}",
                    "type": "track",
                    "event": "Article Viewed",
                    "person_id": pid,
                    "timestamp": now - dt.timedelta(days=1),
                    "received_at": now,
                    "properties": {"therapy_area": "心衰", "minutes": 4.0, "channel": "wechat"},
                }
                for i, pid in enumerate(chosen)
            ],
        )
        for i, pid in enumerate(chosen):
            attrs = conn.execute(sa.select(persons.c.attributes).where(persons.c.id == pid)).scalar() or {}
            if not attrs.get("email"):  # a reachable address for every chosen doctor
                conn.execute(
                    sa.update(persons)
                    .where(persons.c.id == pid)
                    .values(attributes={**attrs, "email": f"hf.doctor{i}@hospital.example"})
                )
            for channel in ("email",):
                consents.set_consent(
                    conn,
                    tenant_id=tenant.tenant_id,
                    person_id=pid,
                    channel=channel,
                    purpose="marketing",
                    status="granted" if i % 3 else "withdrawn",
                    source="webinar_form",
                    actor="test",
                )
    yield tenant
    engine.dispose()


@pytest.fixture(scope="module")
def base_url(demo: DemoTenant, tmp_path_factory) -> Iterator[str]:
    from medscrm.app import create_app

    app = create_app(demo.engine, spool_dir=tmp_path_factory.mktemp("spool"), fsync=False)
    with serve_in_thread(app) as url:
        yield url


def _build_segment(page, base_url: str, key: str, name: str, expected: int) -> None:
    page.goto(base_url + "/segments/new")
    page.wait_for_selector("#preview-empty")
    for i, (kind, field, value) in enumerate(
        (("attr", "department", "心内科"), ("tag", "potential_tier", "A"), ("attr", "city", "上海"))
    ):
        row = add(page, kind)
        row.locator(".cond-name").select_option(field)
        row = page.locator("#builder > .group > .cond").nth(i)
        row.locator(".cond-op").select_option("eq")
        row = page.locator("#builder > .group > .cond").nth(i)
        row.locator(".cond-value").fill(value)
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
    ev.locator(".where-property").fill("therapy_area")
    ev.locator(".where-op").select_option("eq")
    ev.locator(".where-value").fill("心衰")
    wait_count(page, expected)
    assert builder_rule(page) == SCENARIO
    page.fill("#seg-key", key)
    page.fill("#seg-name", name)
    page.click("#save-segment")
    page.wait_for_url(re.compile(rf".*/segments/{key}\?saved=1$"))


def _write_content(page, base_url: str, key: str) -> None:
    page.goto(base_url + "/content")
    page.click("[data-testid=content-new]")
    page.wait_for_url("**/content/new")
    page.fill("#ct-key", key)
    page.fill("#ct-title", "心衰新指南解读 · HF guideline update")
    page.select_option("#ct-kind", "email_template")
    page.select_option("#ct-audience", "hcp_only")
    page.fill("#ct-subject", "{{ name }}，您好：心衰指南更新")
    page.fill("#ct-body", "尊敬的{{ name }}：\n请阅读 2026 心衰指南解读。")
    page.fill("#ct-therapy-area", "心衰")
    page.click("#ct-save")
    page.wait_for_url("**/content/ct_*?done=created")
    page.click("[data-testid=submit]")
    page.wait_for_url("**?done=submit")


def _approve(page, base_url: str, key: str, lang: str) -> None:
    page.goto(base_url + "/content")
    page.click("[data-testid=review-queue]")
    page.locator(f"[data-testid=review-list] tr[data-content='{key}'] a.button").click()
    page.wait_for_selector("[data-testid=approve-form]")
    page.fill("#approval-code", f"MLR-2026-HF-{lang.upper()}")
    page.fill("#approval-expires", (dt.datetime.now(CHINA) + dt.timedelta(days=180)).date().isoformat())
    page.click("[data-testid=approve]")
    page.wait_for_url("**?done=approve")


def _idle(page) -> None:
    page.wait_for_function(
        "() => { const r = document.getElementById('journey-editor'); return r && !r.dataset.checking; }"
    )


def _build_journey(page, base_url: str, key: str, segment: str, content_key: str, lang: str) -> None:
    page.goto(base_url + "/journeys")
    page.click("[data-new-journey]")
    page.wait_for_url(re.compile(r".*/journeys/new$"))
    page.wait_for_selector("#editor-graph canvas")
    page.fill("input[name=journey-key]", key)
    page.fill("input[name=journey-name]", f"心衰指南邮件 · HF guideline mail {lang}")
    page.click("[data-select-trigger='0']")
    page.select_option("#editor-panel [data-trigger-type]", "segment_entry")
    page.select_option("#editor-panel label[data-field=segment] select", segment)
    page.click("[data-add-step=send]")
    _idle(page)
    page.locator("#editor-problems li[data-problem-path='steps[send1].content']").wait_for()
    page.select_option("#editor-panel [data-content-select]", content_key)
    _idle(page)
    page.wait_for_selector("#editor-status[data-valid='1']")
    _shot(page, lang, "3-journey-editor")
    page.click("[data-save]")
    page.wait_for_url(re.compile(rf".*/journeys/{key}/edit\?saved=1$"))
    page.click("[data-action=start]")
    dialog = page.locator(f"dialog[data-start-dialog={key}]")
    dialog.wait_for(state="visible")
    assert dialog.locator("[data-enrol-current]").is_checked()
    dialog.locator("[data-confirm-start]").click()
    page.wait_for_url(re.compile(rf".*/journeys/{key}$"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_marketer_runs_a_whole_campaign_in_the_browser(browser, base_url, demo, smtp, lang):
    expected = evaluate_engine(demo.engine, demo.tenant_id, SCENARIO)
    assert len(expected) >= 2
    seg_key, content_key, journey_key = f"hf_sh_a_{lang}", f"hf-guide-{lang}", f"hf_mail_{lang}"

    page = login(browser, base_url, demo, "marketer", lang=lang)
    _build_segment(page, base_url, seg_key, f"心衰 上海 A · HF Shanghai A {lang}", len(expected))
    _shot(page, lang, "1-segment")
    _write_content(page, base_url, content_key)
    _shot(page, lang, "2-content-submitted")
    page.context.close()

    page = login(browser, base_url, demo, "compliance", lang=lang)
    _approve(page, base_url, content_key, lang)
    page.context.close()
    with demo.engine.connect() as conn:
        item = content.get_item(conn, tenant_id=demo.tenant_id, item_id=content_key)
    assert item["status"] == "approved" and content.is_sendable(item, audience="verified_hcp")
    assert (item["created_by"], item["approved_by"]) == ("marketer", "compliance")  # four eyes

    page = login(browser, base_url, demo, "marketer", lang=lang)
    _build_journey(page, base_url, journey_key, seg_key, content_key, lang)
    with demo.engine.connect() as conn:
        j = journeys.get_journey(conn, tenant_id=demo.tenant_id, key=journey_key)
    assert j["status"] == "running" and sum(j["active_by_version"].values()) == len(expected)

    before = len(smtp.records())
    for _ in range(5):  # the runner takes each enrolment through its steps and dispatches the sends
        je.tick(demo.engine, worker_id="scenario", now=utcnow(), tenant_id=demo.tenant_id)
    with demo.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sends.c.id, sends.c.person_id, sends.c.status, sends.c.reason).where(
                sends.c.tenant_id == demo.tenant_id, sends.c.origin == f"journey:{j['id']}:send1"
            )
        ).all()
        granted = set(
            conn.execute(
                sa.select(consents_t.c.person_id).where(
                    consents_t.c.tenant_id == demo.tenant_id,
                    consents_t.c.channel == "email",
                    consents_t.c.purpose == "marketing",
                    consents_t.c.status == "granted",
                )
            ).scalars()
        )
    mine = [r for r in rows if r.person_id in expected]
    sent = [r for r in mine if r.status in ("sent", "delivered")]
    blocked = [r for r in mine if r.status == "blocked"]
    assert len(mine) == len(expected), rows
    assert sent and blocked, rows
    assert {r.person_id for r in sent} <= granted  # consent holds in the campaign too
    assert all(r.person_id not in granted or r.reason != "no_consent" for r in blocked)
    got = smtp.records()[before:]
    assert {m["send_id"] for m in got} == {r.id for r in sent}  # one message per send, each arrived
    assert all("心衰" in (m["subject"] or "") + (m["body"] or "") for m in got)

    page.goto(f"{base_url}/journeys/{journey_key}")
    page.wait_for_selector("#journey-status")
    _shot(page, lang, "4-journey-running")
    page.context.close()
