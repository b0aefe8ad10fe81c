"""The console's queries on PostgreSQL: every page for an admin and a rep, search, segment preview and a
profile, over a demo-like tenant on the shared test server (isolated by tenant)."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm import access
from medscrm.db.schema import persons
from medscrm.web.devserver import add_journey_and_content, build_tenant
from web.conftest import csrf_of

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_demo(pg_engine, tmp_path_factory):
    from medscrm.app import create_app

    tmp = tmp_path_factory.mktemp("pgweb")
    demo = build_tenant(
        pg_engine, slug=f"web-{uuid.uuid4().hex[:8]}", data_dir=tmp / "data", hcps=200, seed=11
    )
    add_journey_and_content(pg_engine, demo.tenant_id)
    return demo, create_app(pg_engine, spool_dir=tmp / "spool", fsync=False)


def _login(app, demo, username):
    c = TestClient(app)
    token = csrf_of(c.get("/login").text)
    r = c.post(
        "/login",
        data={
            "csrf_token": token,
            "tenant": demo.slug,
            "username": username,
            "password": demo.passwords[username],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    return c


def test_every_page_on_postgresql(pg_demo):
    demo, app = pg_demo
    c = _login(app, demo, "admin")
    for url in ("/", "/hcps", "/hcps?q=王&hospital=医院", "/identity", "/segments", "/segments/new",
                "/segments/senior_cardiology", "/imports", "/audit", "/journeys", "/journeys/senior_followup",
                "/content", "/journeys/new", "/journeys/senior_followup/edit",
                "/journeys/senior_followup/versions", "/content/new", "/content/hf-guideline-2026",
                "/content/glp1-survey", "/content/ckd-screening"):  # fmt: skip
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[:500])
    with demo.engine.connect() as conn:
        pid = conn.execute(
            sa.select(persons.c.id)
            .where(persons.c.tenant_id == demo.tenant_id, persons.c.status == "active")
            .limit(1)
        ).scalar_one()
    assert c.get(f"/hcps/{pid}").status_code == 200
    token = csrf_of(c.get("/segments/new").text)
    r = c.post(
        "/segments/preview",
        data={"rule": '{"and": [{"attr": "title", "op": "in", "value": ["主任医师"]}]}'},
        headers={"X-CSRF-Token": token},
    )
    count = int(re.search(r'data-count="(\d+)"', r.text).group(1))
    with demo.engine.connect() as conn:
        from medscrm.segments import service as segments

        assert (
            count
            == segments.preview(
                conn,
                tenant_id=demo.tenant_id,
                rule={"and": [{"attr": "title", "op": "in", "value": ["主任医师"]}]},
            )["count"]
        )


def test_rep_scope_on_postgresql(pg_demo):
    demo, app = pg_demo
    with demo.engine.connect() as conn:
        owned = set(
            conn.execute(
                access.owned_person_ids(demo.tenant_id, {"username": demo.rep_username, "display_name": None})
            ).scalars()
        )
    c = _login(app, demo, demo.rep_username)
    assert c.get("/").status_code == 200
    shown = set(re.findall(r'data-person="([^"]+)"', c.get("/hcps").text))
    assert shown and shown <= owned


def test_webhooks_pages_on_postgresql(pg_demo, monkeypatch):
    """Create a subscription through the console form, deliver an event to a real loopback receiver
    (it refuses once), read the log and replay the delivery."""
    from medscrm.config import get_settings
    from medscrm.outreach import consent
    from medscrm.webhooks import dispatch
    from webhooks.receiver import Receiver

    demo, app = pg_demo
    monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    c = _login(app, demo, "admin")
    token = csrf_of(c.get("/webhooks").text)
    try:
        with Receiver(statuses=[503, 200]) as rx:
            r = c.post("/webhooks", data={"csrf_token": token, "url": rx.url, "events": ["consent.changed"]})
            assert r.status_code == 200 and 'id="new-secret"' in r.text
            sid = re.search(r'id="new-secret" data-subscription="([^"]+)"', r.text).group(1)
            with demo.engine.begin() as conn:
                pid = conn.execute(
                    sa.select(persons.c.id)
                    .where(persons.c.tenant_id == demo.tenant_id, persons.c.status == "active")
                    .limit(1)
                ).scalar_one()
                consent.set_consent(
                    conn,
                    tenant_id=demo.tenant_id,
                    person_id=pid,
                    channel="email",
                    purpose="marketing",
                    status="withdrawn",
                    source="console-test",
                    actor="test",
                )
            assert dispatch.dispatch_once(demo.engine, tenant_id=demo.tenant_id, max_attempts=1)["dead"] == 1
            assert 'data-last-status="dead"' in c.get("/webhooks").text
            log = c.get(f"/webhooks/{sid}").text
            did = re.search(r'data-delivery="([^"]+)"', log).group(1)
            assert 'data-status="dead"' in log and "HTTP 503" in log
            r = c.post(
                f"/webhooks/{sid}/deliveries/{did}/replay", data={"csrf_token": token}, follow_redirects=False
            )
            assert r.status_code == 303 and r.headers["location"] == f"/webhooks/{sid}?replayed={did}"
            assert dispatch.dispatch_once(demo.engine, tenant_id=demo.tenant_id)["delivered"] == 1
            assert 'data-status="delivered"' in c.get(f"/webhooks/{sid}").text
        assert len(rx.requests) == 2
        r = c.post(f"/webhooks/{sid}/delete", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and f'data-subscription="{sid}"' not in c.get("/webhooks").text
    finally:
        get_settings.cache_clear()


def test_the_journey_editor_checks_and_saves_a_version_on_postgresql(pg_demo):
    import json

    from medscrm.journeys import service as journeys

    demo, app = pg_demo
    c = _login(app, demo, "marketer")
    token = csrf_of(c.get("/journeys/senior_followup/edit").text)
    with demo.engine.connect() as conn:
        definition = journeys.get_journey(conn, tenant_id=demo.tenant_id, key="senior_followup")["definition"]
    bad = json.loads(json.dumps(definition))
    bad["steps"][1]["duration"] = "soon"
    r = c.post(
        "/journeys/editor/check",
        json={"definition": bad, "original_key": "senior_followup"},
        headers={"X-CSRF-Token": token},
    )
    assert [(p["node"], p["field"]) for p in r.json()["problems"]] == [("wait_2d", "duration")]
    good = json.loads(json.dumps(definition))
    good["steps"][1]["duration"] = "3d"
    r = c.post(
        "/journeys/editor/save",
        data={"csrf_token": token, "definition": json.dumps(good), "original_key": "senior_followup"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("/edit?saved=2"), r.text[:500]
    with demo.engine.connect() as conn:
        j = journeys.get_journey(conn, tenant_id=demo.tenant_id, key="senior_followup")
    assert j["current_version"] == 2 and j["definition"]["steps"][1]["duration"] == "3d"
    assert j["versions"][-1]["created_by"] == "user:marketer"


def test_content_is_written_and_approved_on_postgresql(pg_demo):
    """The console's authoring and review round trip on PostgreSQL: create, edit, submit, approve."""
    from medscrm.content import service as content

    demo, app = pg_demo
    c = _login(app, demo, "marketer")
    token = csrf_of(c.get("/content/new").text)
    form = {"csrf_token": token, "key": "pg-mail", "title": "心衰邮件", "kind": "email_template",
            "audience": "hcp_only", "subject": "{{ name }}", "body": "", "url": ""}  # fmt: skip
    bad = c.post("/content/new", data=form)
    assert bad.status_code == 400 and 'data-error-for="body"' in bad.text
    r = c.post("/content/new", data={**form, "body": "{{ name }}您好"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    item_url = r.headers["location"].split("?")[0]
    r = c.post(item_url + "/edit", data={**form, "body": "{{ name }}您好", "therapy_area": "心衰"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert c.post(item_url + "/submit", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    page = c.get(item_url).text
    assert "content.update" in page and 'data-status="in_review"' in page
    rev = _login(app, demo, "compliance")
    token = csrf_of(rev.get(item_url).text)
    r = rev.post(item_url + "/approve", data={"csrf_token": token, "approval_code": "MLR-PG-1",
                 "expires_at": "2099-12-31"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text[:500]
    with demo.engine.connect() as conn:
        item = content.get_item(conn, tenant_id=demo.tenant_id, item_id="pg-mail")
    assert (item["status"], item["therapy_area"], item["approval_code"]) == ("approved", "心衰", "MLR-PG-1")
    assert content.sendable_reason(item, None, "verified_hcp") is None
