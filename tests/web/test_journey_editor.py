"""The journey editor: a marketer builds a segment-entry journey in Chromium (zh and en), sees the
validator's problem at the send node, fixes it, saves v1, edits and saves v2, starts it; the console's
live-validation endpoint gives the API's problems, each at its node, in the reader's language; roles
and CSRF as elsewhere."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.journeys import service as journeys
from medscrm.journeys.model import JourneyError
from medscrm.web import journey_text
from medscrm.web.i18n import translator
from web.conftest import csrf_of, login
from web.test_routes import logged_in

CONTENT_KEY = "hf-editor-mail"
CONTENT_TITLE = ("心衰随访邮件", "HF follow-up mail")


@pytest.fixture(scope="module")
def ready(demo):
    """An approved e-mail content item (written by a marketer, approved by compliance: four eyes), a
    draft one, and the tenant's e-mail channel."""
    from medscrm.content import service as content
    from medscrm.outreach.settings import configure_channel

    with demo.engine.begin() as conn:
        configure_channel(
            conn,
            tenant_id=demo.tenant_id,
            channel="email",
            provider="smtp",
            settings={"host": "127.0.0.1", "port": 2525, "from_addr": "medical@pharma.example"},
            actor="test",
        )
        for key, status in ((CONTENT_KEY, "approved"), ("hf-editor-draft", "draft")):
            item = content.create_item(
                conn,
                tenant_id=demo.tenant_id,
                key=key,
                title=f"{CONTENT_TITLE[0]} · {CONTENT_TITLE[1]}" + (" 2" if status == "draft" else ""),
                kind="email_template",
                audience="hcp_only",
                actor="user:marketer",
                subject="随访 · follow-up",
                body="您好",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=300),
            )
            if status == "approved":
                content.submit_for_review(
                    conn, tenant_id=demo.tenant_id, item_id=item["id"], actor="user:marketer"
                )
                content.approve(
                    conn,
                    tenant_id=demo.tenant_id,
                    item_id=item["id"],
                    approval_code="MED-2026-900",
                    actor="user:compliance",
                    actor_role="compliance",
                )
    return demo


def _words(message: str) -> str:
    """A problem sentence without the marks around identifiers."""
    return message.replace("\x01", "").replace("\x02", "")


def _idle(page):
    """Wait until the editor's last live check has answered."""
    page.wait_for_function(
        "() => { const r = document.getElementById('journey-editor'); return r && !r.dataset.checking; }"
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_marketer_builds_saves_edits_and_starts_a_journey_in_the_editor(browser, base_url, ready, lang):
    demo = ready
    key = f"editor_{lang}"
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.goto(base_url + "/journeys")
    page.click("[data-new-journey]")
    page.wait_for_url(re.compile(r".*/journeys/new$"))
    page.wait_for_selector("#editor-graph canvas")

    # journey settings: key and name; the entry trigger is "segment entry" on senior_cardiology
    page.fill("input[name=journey-key]", key)
    page.fill("input[name=journey-name]", f"编辑器旅程 · editor journey {lang}")
    page.click("[data-select-trigger='0']")
    page.select_option("#editor-panel [data-trigger-type]", "segment_entry")
    page.select_option("#editor-panel label[data-field=segment] select", "senior_cardiology")

    # a send step from the palette: e-mail by default, no content chosen yet → the problem names the node
    page.click("[data-add-step=send]")
    _idle(page)
    problem = page.locator("#editor-problems li[data-problem-path='steps[send1].content']")
    problem.wait_for()
    assert problem.get_attribute("data-problem-node") == "send1"
    text = problem.inner_text()
    if lang == "zh":
        assert "步骤 send1 · 内容: 必填" in text, text
    else:
        assert "Step send1 · Content: is required" in text, text
    assert page.locator("#editor-panel [data-field-error=content]").inner_text() == (
        "必填" if lang == "zh" else "is required"
    )
    graph = json.loads(page.locator("#editor-graph").get_attribute("data-chart"))
    bad = [n for n in graph["series"][0]["data"] if n["id"] == "send1"][0]
    assert bad["itemStyle"]["borderColor"] == "#c0392b"  # outlined in red on the graph
    assert page.locator("#editor-status").get_attribute("data-valid") == "0"

    # content is chosen by title, with its approval status
    options = page.locator("#editor-panel [data-content-select] option").all_inner_texts()
    approved = "已批准" if lang == "zh" else "Approved"
    wanted = (CONTENT_TITLE[0] if lang == "zh" else CONTENT_TITLE[1]) + f" ({approved})"
    assert wanted in options, options
    page.select_option("#editor-panel [data-content-select]", CONTENT_KEY)
    # wait one day, then the journey ends (the new step goes before the exit step)
    page.click("[data-add-step=wait]")
    _idle(page)
    page.wait_for_selector("#editor-status[data-valid='1']")
    assert page.locator("#editor-problems li").count() == 0
    # the advanced view holds the same definition
    source = json.loads(page.locator("#editor-source").input_value())
    assert [s["id"] for s in source["steps"]] == ["send1", "wait1", "done"]

    page.click("[data-save]")
    page.wait_for_url(re.compile(rf".*/journeys/{key}/edit\?saved=1$"))
    assert page.locator("#journey-saved").get_attribute("data-saved-version") == "1"
    with demo.engine.connect() as conn:
        j = journeys.get_journey(conn, tenant_id=demo.tenant_id, key=key)
    assert j["status"] == "draft" and j["current_version"] == 1
    assert j["versions"][0]["created_by"] == "user:marketer"
    d1 = j["definition"]
    assert d1["triggers"] == [{"type": "segment_entry", "segment": "senior_cardiology"}]
    steps = {s["id"]: s for s in d1["steps"]}
    assert [s["id"] for s in d1["steps"]] == ["send1", "wait1", "done"]
    assert steps["send1"]["type"] == "send" and steps["send1"]["channel"] == "email"
    assert steps["send1"]["content"] == CONTENT_KEY and steps["send1"]["next"] == "wait1"
    assert steps["wait1"] == {"id": "wait1", "type": "wait", "duration": "1d", "next": "done"}
    assert steps["done"] == {"id": "done", "type": "exit"}

    # a click on a node of the graph opens it in the side panel
    _idle(page)
    box = page.locator("#editor-graph").bounding_box()
    xy = page.evaluate(
        """() => { const c = echarts.getInstanceByDom(document.getElementById('editor-graph'));
                   const n = c.getOption().series[0].data.find((d) => d.id === 'send1');
                   return c.convertToPixel({seriesIndex: 0}, [n.x, n.y]); }"""
    )
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.wait_for_selector("#editor-graph[data-selected=send1]")
    assert page.locator("#editor-panel input[name=step-id]").input_value() == "send1"

    # edit: the wait becomes two days and gets a name → version 2
    page.click("#editor-panel [data-select-journey]")
    page.click("[data-select-step=wait1]")
    page.fill("#editor-panel label[data-field=duration] input", "2d")
    page.fill("#editor-panel input[name=step-name]", "等两天 · wait two days")
    _idle(page)
    page.wait_for_selector("#editor-status[data-valid='1']")
    page.click("[data-save]")
    page.wait_for_url(re.compile(rf".*/journeys/{key}/edit\?saved=2$"))
    with demo.engine.connect() as conn:
        j = journeys.get_journey(conn, tenant_id=demo.tenant_id, key=key)
        v1 = journeys.definition_of(conn, journey_id=j["id"], version=1)
        n = journeys.current_members(conn, tenant_id=demo.tenant_id, key=key)["count"]
    assert j["current_version"] == 2 and [v["version"] for v in j["versions"]] == [1, 2]
    wait2 = [s for s in j["definition"]["steps"] if s["id"] == "wait1"][0]
    assert wait2["duration"] == "2d" and wait2["name"] == "等两天 · wait two days"
    assert [s for s in v1["steps"] if s["id"] == "wait1"][0]["duration"] == "1d"  # v1 unchanged

    # the versions page: who and when, and what changed
    page.click("[data-versions-link]")
    page.wait_for_selector("#versions tr[data-version='2']")
    assert page.locator("#versions tr[data-version]").count() == 2
    diff = page.locator("#version-diff").inner_text()
    assert "-  duration: 1d" in diff and "+  duration: 2d" in diff, diff
    page.goto(f"{base_url}/journeys/{key}/versions?v=1")
    page.wait_for_selector("#chart-version canvas")

    # start from the editor, with the current members of the segment
    page.goto(f"{base_url}/journeys/{key}/edit")
    page.click("[data-action=start]")
    dialog = page.locator(f"dialog[data-start-dialog={key}]")
    dialog.wait_for(state="visible")
    assert dialog.locator("[data-enrol-current]").is_checked()
    dialog.locator("[data-confirm-start]").click()
    page.wait_for_url(re.compile(rf".*/journeys/{key}$"))
    assert page.locator("#journey-status").get_attribute("data-status") == "running"
    with demo.engine.connect() as conn:
        j = journeys.get_journey(conn, tenant_id=demo.tenant_id, key=key)
    assert j["status"] == "running" and sum(j["active_by_version"].values()) == n > 0
    assert set(j["active_by_version"]) == {2}
    page.context.close()


# --- the live-validation endpoint -------------------------------------------------------------------
BAD = {
    "key": "bad_one",
    "name": "坏 · bad",
    "triggers": [{"type": "segment_entry", "segment": "senior_cardiology"}],
    "steps": [
        {"id": "mail", "type": "send", "channel": "email", "next": "pause"},
        {"id": "pause", "type": "wait", "duration": "soon", "next": "gone"},
    ],
}


@pytest.mark.parametrize(
    "lang,expected",
    [
        ("zh", {"steps[mail].content": ("mail", "内容", "必填"),
                "steps[pause].duration": ("pause", "等待时长", "soon 不是有效的时长（如 2d、3h、30m）"),
                "steps[pause].next": ("pause", "下一步", "不存在的步骤 gone")}),
        ("en", {"steps[mail].content": ("mail", "Content", "is required"),
                "steps[pause].duration": ("pause", "Wait for", "soon is not a duration (use 2d, 3h, 30m)"),
                "steps[pause].next": ("pause", "Next step", "unknown step gone")}),
    ],
)  # fmt: skip
def test_the_check_endpoint_names_each_bad_node_in_the_readers_language(app, ready, lang, expected):
    demo = ready
    c = logged_in(app, demo, "marketer", lang=lang)
    token = csrf_of(c.get("/journeys/new").text)
    r = c.post("/journeys/editor/check", json={"definition": BAD}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["valid"] is False
    # the same problems, in the same words, as the service (and so the API's 422) gives
    with demo.engine.connect() as conn, pytest.raises(JourneyError) as exc:
        journeys.validate(conn, tenant_id=demo.tenant_id, definition=BAD)
    assert [(p["path"], p["raw"]) for p in out["problems"]] == [
        (p["path"], p["reason"]) for p in exc.value.as_list()
    ]
    got = {p["path"]: (p["node"], p["field_label"], _words(p["message"])) for p in out["problems"]}
    assert got == expected
    # identifiers in a sentence are marked, so the page shows them as data, not as words to translate
    unknown = [p["message"] for p in out["problems"] if p["path"] == "steps[pause].next"][0]
    assert unknown == ("不存在的步骤 \x01gone\x02" if lang == "zh" else "unknown step \x01gone\x02")
    assert all(p["kind"] == "step" for p in out["problems"])
    # nodes with problems are outlined on the graph
    nodes = {n["id"]: n for n in out["graph"]["series"][0]["data"]}
    assert nodes["mail"]["itemStyle"]["borderColor"] == "#c0392b" and "itemStyle" not in nodes["__triggers"]

    # a reference problem (after the structure is right) and the YAML view read back
    fixed = json.loads(json.dumps(BAD))
    fixed["steps"][0]["content"] = "no-such-content"
    fixed["steps"][1] = {"id": "pause", "type": "wait", "duration": "1d"}
    fixed["triggers"][0]["segment"] = "no_such_segment"
    r = c.post(
        "/journeys/editor/check",
        json={"text": out["yaml"].replace("soon", "1d")},
        headers={"X-CSRF-Token": token},
    )
    assert r.json()["definition"]["steps"][1]["duration"] == "1d"
    r = c.post("/journeys/editor/check", json={"definition": fixed}, headers={"X-CSRF-Token": token})
    probs = {p["path"]: p for p in r.json()["problems"]}
    assert set(probs) == {"triggers[0].segment", "steps[mail].content"}
    assert probs["triggers[0].segment"]["kind"] == "trigger" and probs["triggers[0].segment"]["node"] == "0"
    assert _words(probs["steps[mail].content"]["message"]) == (
        "内容库中没有 no-such-content" if lang == "zh" else "unknown content no-such-content"
    )
    # YAML that does not parse: said so, nothing else
    r = c.post("/journeys/editor/check", json={"text": "key: [open"}, headers={"X-CSRF-Token": token})
    assert r.json()["syntax"] is True and _words(r.json()["problems"][0]["message"]).startswith(
        "不是有效的 JSON 或 YAML" if lang == "zh" else "not valid JSON or YAML"
    )


def test_the_editor_needs_authoring_rights_and_csrf(app, ready):
    demo = ready
    with demo.engine.begin() as conn:
        if not conn.execute(sa.text("select 1 from journeys where key = 'perm_check'")).first():
            journeys.create(
                conn,
                tenant_id=demo.tenant_id,
                definition={
                    "key": "perm_check",
                    "name": "权限 · perms",
                    "steps": [{"id": "done", "type": "exit"}],
                },
                actor="test",
            )
    marketer = logged_in(app, demo, "marketer")
    token = csrf_of(marketer.get("/journeys/new").text)
    r = marketer.post("/journeys/editor/check", json={"definition": BAD})
    assert r.status_code == 403  # no CSRF token
    r = marketer.post("/journeys/editor/save", data={"definition": json.dumps(BAD)})
    assert r.status_code == 403
    # a refused save comes back to the editor with the problems and stores nothing
    r = marketer.post("/journeys/editor/save", data={"csrf_token": token, "definition": json.dumps(BAD)})
    assert r.status_code == 422 and 'id="journey-error"' in r.text
    with demo.engine.connect() as conn:
        assert not conn.execute(sa.text("select 1 from journeys where key = 'bad_one'")).first()
    for role in ("analyst", demo.rep_username):
        c = logged_in(app, demo, role)
        assert c.get("/journeys/new").status_code == 403, role
        assert c.get("/journeys/perm_check/edit").status_code == 403, role
        page = c.get("/journeys/perm_check/versions")
        assert page.status_code == (200 if role == "analyst" else 403), role
        tok = csrf_of(page.text if page.status_code == 200 else c.get("/").text)
        r = c.post("/journeys/editor/check", json={"definition": BAD}, headers={"X-CSRF-Token": tok})
        assert r.status_code == 403, role
    analyst = logged_in(app, demo, "analyst")
    assert "data-edit-link" not in analyst.get("/journeys/perm_check").text
    assert "data-new-journey" not in analyst.get("/journeys").text


# --- the problem wording (pure) --------------------------------------------------------------------
_ID = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,20}", fullmatch=True)


@given(
    sid=_ID, field=st.sampled_from(["content", "duration", "next", "branches[1].weight", "condition.attr"])
)
@settings(max_examples=60, deadline=None)
def test_a_step_path_names_its_node_and_field_in_both_languages(sid, field):
    for lang in ("zh", "en"):
        t = translator(lang)
        d = journey_text.describe({"path": f"steps[{sid}].{field}", "reason": "is required"}, t)
        assert (d["kind"], d["node"], d["field"]) == ("step", sid, field.split(".")[0].split("[")[0])
        assert d["message"] == ("必填" if lang == "zh" else "is required")
        assert d["field_label"] and "jfield." not in d["field_label"]


@given(path=st.text(max_size=40), reason=st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_any_problem_is_worded_without_failing(path, reason):
    for lang in ("zh", "en"):
        d = journey_text.describe({"path": path, "reason": reason}, translator(lang))
        assert d["kind"] in ("step", "trigger", "journey") and isinstance(d["message"], str)
        assert d["path"] == path and d["raw"] == reason


def test_every_validator_sentence_of_an_invalid_definition_is_translated():
    """Problems the model really produces for a definition wrong in many ways: each one matches a
    known sentence (zh differs from the English original)."""
    bad = {
        "key": "bad key!",
        "name": "",
        "reentry": {"mode": "after"},
        "triggers": [{"type": "nope"}, {"type": "schedule", "at": "tomorrow", "segment": "s"}],
        "steps": [
            {"id": "a", "type": "wait", "duration": "-1d", "next": "b"},
            {"id": "b", "type": "split", "branches": [{"weight": 0}]},
            {"id": "c", "type": "exit", "next": "a"},
            {"id": "a", "type": "exit"},
            {"id": "d", "type": "send", "channel": "fax", "content": "x", "bogus": 1},
            {"id": "e", "type": "branch"},
            {"id": "f", "type": "warp"},
        ],
    }
    with pytest.raises(JourneyError) as exc:
        from medscrm.journeys.model import validate_definition

        validate_definition(bad)
    zh, en = translator("zh"), translator("en")
    for p in exc.value.as_list():
        marked = journey_text.describe(p, zh)["message"]
        worded = _words(marked)
        assert worded != p["reason"] and re.search(r"[\u4e00-\u9fff]", worded), p
        # outside the marked identifiers, no code shows (step and trigger types are named)
        assert not re.search(r"[a-z]+_[a-z]+", re.sub("\x01.*?\x02", "", marked)), (p, marked)
        assert _words(journey_text.describe(p, en)["message"]), p
