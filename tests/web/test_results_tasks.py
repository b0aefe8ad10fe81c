"""Journey results and tasks in Chromium, in zh and en: a journey with an A/B split has run through the
runner; the page's per-variant figures equal ``journeys.results``' output (default and a picked
conversion), a variant's figure drills down to its persons (CSV export included), and the rep
completes a task in /tasks, which leaves an audit row."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from medscrm import access
from medscrm.common import new_id, utcnow
from medscrm.db.schema import audit_log, events, persons, tasks
from medscrm.journeys import engine as je
from medscrm.journeys import results as jr
from medscrm.journeys import service as js
from medscrm.journeys.steps import rep_of
from web.conftest import login

KEY = "ab_followup"


@pytest.fixture(scope="module")
def ab(demo):
    """60 persons (the rep's first) through a 50/50 split: A gets a rep task, B only waits; 12 of A
    and 4 of B attend a webinar within a day."""
    tid = demo.tenant_id
    now = utcnow()
    with demo.engine.begin() as c:
        owned = set(c.execute(access.owned_person_ids(tid, {"username": demo.rep_username})).scalars())
        mine = sorted(p for p in owned if rep_of(c, tenant_id=tid, person_id=p) == demo.rep_username)
        others = list(
            c.execute(
                sa.select(persons.c.id)
                .where(persons.c.tenant_id == tid, persons.c.status == "active", persons.c.id.not_in(owned))
                .order_by(persons.c.id)
                .limit(60)
            ).scalars()
        )
        pids = (mine + others)[:60]
        assert len(mine) >= 4 and len(pids) == 60
        definition = {
            "key": KEY,
            "name": "回访 A/B · follow-up A/B",
            "triggers": [{"type": "api"}],
            "steps": [
                {
                    "id": "ab",
                    "type": "split",
                    "branches": [
                        {"weight": 1, "next": "call", "label": "A"},
                        {"weight": 1, "next": "w", "label": "B"},
                    ],
                },
                {
                    "id": "call",
                    "type": "task",
                    "title": "电话回访 · call back",
                    "note": "A 组 · group A",
                    "due": "2d",
                    "next": "w",
                },
                {"id": "w", "type": "wait", "duration": "7d", "next": "end"},
                {"id": "end", "type": "exit"},
            ],
        }
        js.create(c, tenant_id=tid, definition=definition, actor="test")
        js.start(c, tenant_id=tid, key=KEY, actor="test")
        js.enroll(c, tenant_id=tid, key=KEY, person_ids=pids, actor="test")
    je.tick(
        demo.engine,
        worker_id="web",
        now=utcnow() + dt.timedelta(seconds=5),
        tenant_id=tid,
        dispatch_sends=False,
    )
    with demo.engine.begin() as c:
        rows, _ = jr.persons_behind(
            c, tenant_id=tid, key=KEY, drill=jr.Drill(split="ab", variant=0), role="admin", limit=100
        )
        a = sorted(r["person_id"] for r in rows)
        b = sorted(set(pids) - set(a))
        attended = a[:12] + b[:4]
        c.execute(
            sa.insert(events),
            [
                {
                    "id": new_id("ev"),
                    "tenant_id": tid,
                    "source_id": "src",
                    "message_id": new_id("m"),
                    "type": "track",
                    "event": "Webinar Attended",
                    "person_id": p,
                    "timestamp": now + dt.timedelta(hours=3),
                    "received_at": now + dt.timedelta(hours=3),
                    "properties": {"topic": "心衰"},
                }
                for p in attended
            ],
        )
    return {"pids": pids, "a": a, "b": b}


def _figures(page) -> list[dict[str, int]]:
    return page.eval_on_selector_all(
        "section[data-split=ab] tr[data-variant]",
        "els => els.map(e => ({entered: +e.dataset.entered, sends: +e.dataset.sends, converted: +e.dataset.converted}))",
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_results_drilldown_and_rep_task(browser, base_url, demo, ab, lang):
    tid = demo.tenant_id
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.goto(f"{base_url}/journeys/{KEY}")
    with demo.engine.connect() as c:
        expected = jr.split_results(c, tenant_id=tid, key=KEY)
    want = [{k: v[k] for k in ("entered", "sends", "converted")} for v in expected["splits"][0]["variants"]]
    assert _figures(page) == want
    assert want[0]["entered"] == len(ab["a"]) and want[1]["entered"] == len(ab["b"])
    # pick the conversion: the webinar within 7 days
    page.fill("input[name=conv_event]", "Webinar Attended")
    page.fill("input[name=conv_property]", "topic")
    page.fill("input[name=conv_value]", "心衰")
    page.fill("input[name=conv_days]", "7")
    page.click("#conv-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    conv = jr.Conversion(mode="event", event="Webinar Attended", prop="topic", value="心衰", days=7)
    with demo.engine.connect() as c:
        expected = jr.split_results(c, tenant_id=tid, key=KEY, conversion=conv)
    vb = expected["splits"][0]["variants"][1]
    assert (
        [f["converted"] for f in _figures(page)]
        == [12, 4]
        == [v["converted"] for v in expected["splits"][0]["variants"]]
    )
    verdict = page.locator("section[data-split=ab] tr[data-variant='1'] td.verdict span")
    assert verdict.get_attribute("data-test") == vb["vs_control"]["test"]
    assert float(verdict.get_attribute("data-p")) == pytest.approx(vb["vs_control"]["p_value"])
    text = verdict.inner_text()
    assert f"{vb['vs_control']['p_value']:.3f}" in text
    assert ("95% 置信区间" in text) if lang == "zh" else ("95% CI" in text)
    assert page.locator("#chart-ab-ab canvas").count() == 1  # the chart is drawn
    # drill down from variant B's figure to its persons, and export them
    page.click("section[data-split=ab] tr[data-variant='1'] a[data-drill=variant]")
    page.wait_for_selector("#drill-persons")
    shown = set(
        page.eval_on_selector_all("#drill-persons tr[data-person]", "els => els.map(e => e.dataset.person)")
    )
    assert shown == set(ab["b"])
    assert str(len(ab["b"])) in page.inner_text("#drill-what")
    csv = page.request.get(base_url + page.get_attribute("#drill-csv", "href"))
    assert csv.status == 200 and len(csv.text().lstrip("\ufeff").splitlines()) == len(ab["b"]) + 1
    page.context.close()
    # the rep's inbox: their open tasks from this journey; complete one
    rep = login(browser, base_url, demo, demo.rep_username, lang=lang)
    rep.click("nav a[data-nav=tasks]")
    rep.wait_for_selector("#tasks, #tasks-empty")
    with demo.engine.connect() as c:
        mine = (
            c.execute(
                sa.select(tasks.c.id).where(
                    tasks.c.tenant_id == tid, tasks.c.assignee == demo.rep_username, tasks.c.status == "open"
                )
            )
            .scalars()
            .all()
        )
    rows = rep.eval_on_selector_all("#tasks tr[data-task]", "els => els.map(e => e.dataset.task)")
    assert set(rows) == set(mine) and rows
    tid_done = rows[0]
    row = rep.locator(f"tr[data-task='{tid_done}']")
    words = ("电话回访", "A 组") if lang == "zh" else ("call back", "group A")  # one language at a time
    assert all(w in row.inner_text() for w in words)
    row.locator("button[data-dismiss]").click()  # dismissing without a note: refused, saying why
    rep.wait_for_selector("#tasks-error")
    assert (
        ("原因" in rep.inner_text("#tasks-error"))
        if lang == "zh"
        else ("why" in rep.inner_text("#tasks-error"))
    )
    row = rep.locator(f"tr[data-task='{tid_done}']")
    assert row.get_attribute("data-status") == "open"
    row.locator("input[name=note]").fill("已电话沟通 · called")
    row.locator("button[data-done]").click()
    rep.wait_for_load_state("networkidle")
    assert rep.locator(f"tr[data-task='{tid_done}']").count() == 0
    with demo.engine.connect() as c:
        st = c.execute(sa.select(tasks.c.status).where(tasks.c.id == tid_done)).scalar_one()
        audit = c.execute(
            sa.select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.tenant_id == tid,
                audit_log.c.action == "task.done",
                audit_log.c.object_id == tid_done,
            )
        ).one()
    assert st == "done" and audit.actor == f"user:{demo.rep_username}"
    assert audit.detail["note"] == "已电话沟通 · called"
    # a manager sees the counts per assignee
    mgr = login(browser, base_url, demo, "admin", lang=lang)
    mgr.goto(base_url + f"/tasks?journey={KEY}&status=all")
    cells = mgr.locator(f"#task-counts tr[data-assignee='{demo.rep_username}'] td").all_inner_texts()
    assert int(cells[3]) >= 1 and re.fullmatch(r"\d+", cells[1])
    mgr.context.close()
    rep.context.close()
