"""Console routes without a browser (TestClient on the real app): auth, CSRF, roles, errors, i18n,
server time (Server-Timing header), and the rule-problem placement used by the segment builder."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.config import get_settings
from medscrm.db.schema import audit_log, persons
from medscrm.scores import schedule
from medscrm.web.i18n import MESSAGES
from medscrm.web.routes.segments import node_paths, problems_by_node
from web.conftest import csrf_of

PAGES = (
    "/",
    "/hcps",
    "/identity",
    "/segments",
    "/segments/new",
    "/imports",
    "/audit",
    "/webhooks",
    "/privacy",
)
TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "medscrm" / "web" / "templates"


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


def logged_in(app, demo, username: str, lang: str | None = None) -> TestClient:
    c = TestClient(app)
    if lang:
        c.cookies.set("medscrm_lang", lang)
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
    assert r.status_code == 303, r.text
    return c


def test_catalogue_has_both_languages_for_every_key_used_by_templates():
    assert MESSAGES["zh"].keys() == MESSAGES["en"].keys()
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\(\s*['"]([a-z_]+\.[a-z0-9_]+)['"]""", path.read_text(encoding="utf-8")))
    assert used and used <= MESSAGES["zh"].keys(), sorted(used - MESSAGES["zh"].keys())


def test_pages_need_a_login(client):
    for url in PAGES:
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), url
    r = client.get("/hcps", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.headers["HX-Redirect"].startswith("/login")


def test_login_refuses_wrong_passwords_and_missing_csrf_and_audits(app, demo):
    c = TestClient(app)
    token = csrf_of(c.get("/login").text)
    r = c.post(
        "/login", data={"csrf_token": token, "tenant": demo.slug, "username": "admin", "password": "nope"}
    )
    assert r.status_code == 401 and "用户名或密码不正确" in r.text
    r = c.post("/login", data={"tenant": demo.slug, "username": "admin", "password": demo.passwords["admin"]})
    assert r.status_code == 403 and "CSRF" in r.text
    with demo.engine.connect() as conn:
        actions = set(
            conn.execute(
                sa.select(audit_log.c.action).where(
                    audit_log.c.tenant_id == demo.tenant_id, audit_log.c.actor == "user:admin"
                )
            ).scalars()
        )
    assert "console.login_failed" in actions


def test_every_post_needs_the_session_csrf_token(app, demo):
    c = logged_in(app, demo, "admin")
    token = csrf_of(c.get("/imports").text)
    posts = (
        "/segments/preview",
        "/segments/save",
        "/imports",
        "/quarantine/replay",
        "/logout",
        "/identity/x/decide",
    )
    for url in posts:
        assert c.post(url, data={}).status_code == 403, url
        assert c.post(url, data={"csrf_token": "forged"}).status_code == 403, url
    # the right token in the HTMX header is accepted
    r = c.post("/segments/preview", data={"rule": '{"person_type": "hcp"}'}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and 'id="live-count"' in r.text
    # another session's token is not
    other = logged_in(app, demo, "marketer")
    other_token = csrf_of(other.get("/imports").text)
    assert other_token != token
    r = c.post("/segments/preview", data={"rule": "{}"}, headers={"X-CSRF-Token": other_token})
    assert r.status_code == 403


def test_roles_decide_what_each_page_shows(app, demo):
    expect = {
        "admin": {"/identity": 200, "/audit": 200, "/imports": 200, "/segments": 200},
        "analyst": {"/identity": 403, "/audit": 403, "/imports": 403, "/segments": 200},
        "compliance": {"/identity": 403, "/audit": 200, "/imports": 200, "/segments": 200},
        demo.rep_username: {"/identity": 403, "/audit": 403, "/imports": 403, "/segments": 403},
    }
    for user, pages in expect.items():
        c = logged_in(app, demo, user)
        for url, status in pages.items():
            r = c.get(url)
            assert r.status_code == status, (user, url)
            if status == 403:
                assert "您的角色无权访问此页面" in r.text and "Traceback" not in r.text
    analyst = logged_in(app, demo, "analyst")
    html = analyst.get("/hcps").text
    phones = re.findall(r'<td class="mono phone">([^<]+)</td>', html)
    assert phones and all("****" in p for p in phones)
    assert 'id="save-segment"' not in analyst.get("/segments/new").text  # may preview, not save


def test_friendly_errors_never_show_a_stack_trace(app, demo):
    c = logged_in(app, demo, "admin")
    r = c.get("/hcps/per_does_not_exist")
    assert r.status_code == 404 and "per_does_not_exist" in r.text and "Traceback" not in r.text
    r = c.get("/hcps?page=0")
    assert r.status_code == 400 and "page" in r.text
    r = c.get("/segments/no_such_segment")
    assert r.status_code == 404
    token = csrf_of(c.get("/imports").text)
    r = c.post("/identity/rv_missing/decide", data={"csrf_token": token, "decision": "merge"})
    assert r.status_code == 404 and "rv_missing" in r.text
    r = c.get("/static/../routes.py")
    assert r.status_code == 404
    # an HTMX request gets a fragment to swap in place, not a whole page
    from medscrm.db.schema import identity_review

    with demo.engine.connect() as conn:
        rid = conn.execute(
            sa.select(identity_review.c.id)
            .where(identity_review.c.tenant_id == demo.tenant_id, identity_review.c.status == "open")
            .limit(1)
        ).scalar_one()
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    assert c.post(f"/identity/{rid}/decide", data={"decision": "reject"}, headers=hx).status_code == 200
    r = c.post(f"/identity/{rid}/decide", data={"decision": "reject"}, headers=hx)
    assert r.status_code == 400 and r.text.startswith('<div class="card err htmx-error"')
    assert "already decided" in r.text and "<html" not in r.text


def test_language_switch_and_english_pages(app, demo):
    c = logged_in(app, demo, "admin")
    assert "总览" in c.get("/").text
    r = c.get("/lang/en?next=/hcps", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/hcps"
    c.cookies.set("medscrm_lang", "en")
    html = c.get("/").text
    assert "Dashboard" in html and "Reachable" in html and "总览" not in html

    # the tags/scores batch line: this tenant was never scored, then one batch recorded (audit log)
    def batch_line() -> str:
        return c.get("/").text.split('id="scores-batch">', 1)[1].split("</p>", 1)[0]

    assert batch_line().startswith("The tags and scores batch has not run yet")
    at = dt.datetime(2026, 11, 24, 18, 0, tzinfo=dt.UTC)  # 02:00 China time
    with demo.engine.begin() as conn:
        schedule.record(
            conn, tenant_id=demo.tenant_id, now=at, actor="scheduler", res={"persons": 1234, "changed": 56}
        )
    try:
        line = batch_line()
        assert line == (
            'Tags and scores batch: last run 2026-11-25 02:00 (China time, <span translate="no">scheduler</span>), '
            "1,234 persons, "
            "56 changed; the server runs it daily"
        )
    finally:
        with demo.engine.begin() as conn:
            conn.execute(
                sa.delete(audit_log).where(
                    audit_log.c.tenant_id == demo.tenant_id, audit_log.c.action == "scores.batch"
                )
            )
    assert c.get("/lang/xx", follow_redirects=False).headers["location"] == "/"
    for evil in ("//evil.example", "/\\evil.example", "https://evil.example", "/%0d%0aSet-Cookie:x"):
        loc = c.get("/lang/zh", params={"next": evil}, follow_redirects=False).headers["location"]
        assert loc in ("/", evil) and not loc.startswith("//") and "\\" not in loc, loc


def test_login_never_redirects_to_another_site(app, demo):
    c = TestClient(app)
    token = csrf_of(c.get("/login").text)
    for evil in ("//evil.example/x", "/\\evil.example", "https://evil.example"):
        r = c.post(
            "/login",
            data={"csrf_token": token, "tenant": demo.slug, "username": "admin",
                  "password": demo.passwords["admin"], "next": evil},
            follow_redirects=False,
        )  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/", evil
        token = csrf_of(c.get("/login").text)


def test_segment_save_reports_problems_beside_nodes_and_fields(app, demo):
    c = logged_in(app, demo, "marketer")
    token = csrf_of(c.get("/segments/new").text)
    rule = '{"and": [{"attr": "city", "op": "eq", "value": "北京"}, {"attr": "no_such_field", "op": "eq", "value": 1}]}'
    r = c.post("/segments/save", data={"csrf_token": token, "key": "bad key!", "name": "x", "rule": rule})
    assert r.status_code == 422
    problems = re.search(r'id="rule-problems-initial">(.*?)</script>', r.text, re.S).group(1)
    assert '"and[1]"' in problems and "no_such_field" in problems and '"and[0]"' not in problems
    assert 'data-field="key"' in r.text
    r = c.post("/segments/save", data={"csrf_token": token, "key": "x1", "rule": "{not json"})
    assert r.status_code == 422 and "不是有效的 JSON" in r.text  # the problem in the reader's language


def test_upload_refuses_wrong_type_and_oversize_files(app, demo, monkeypatch):
    c = logged_in(app, demo, "admin")
    token = csrf_of(c.get("/imports").text)
    r = c.post(
        "/imports",
        data={"csrf_token": token, "source": "x"},
        files={"file": ("notes.txt", b"hello", "text/plain")},
    )
    assert r.status_code == 400 and "不支持的文件类型 .txt" in r.text
    monkeypatch.setattr(get_settings(), "max_import_bytes", 64)
    r = c.post(
        "/imports",
        data={"csrf_token": token, "source": "x"},
        files={"file": ("big.csv", b"name,phone\n" + b"a,13800138000\n" * 20, "text/csv")},
    )
    assert r.status_code == 400 and "文件过大" in r.text
    r = c.post(
        "/imports", data={"csrf_token": token, "source": ""}, files={"file": ("a.csv", b"name\n", "text/csv")}
    )
    assert r.status_code == 400 and 'data-field="source"' in r.text


def test_search_by_phone_finds_the_person(app, demo):
    c = logged_in(app, demo, "admin")
    with demo.engine.connect() as conn:
        rows = conn.execute(
            sa.select(persons.c.id, persons.c.attributes)
            .where(persons.c.tenant_id == demo.tenant_id, persons.c.status == "active")
            .order_by(persons.c.id)
        ).all()
    pid, attrs = next((p, a) for p, a in rows if a.get("phone"))
    html = c.get("/hcps", params={"q": attrs["phone"]}).text
    assert re.findall(r'data-person="([^"]+)"', html) == [pid]
    assert c.get("/hcps", params={"q": "+8613000000000"}).text.count("data-person=") == 0


# --- where the builder shows a problem: the deepest node that prefixes the problem's path -------------
leaf = st.fixed_dictionaries(
    {"attr": st.sampled_from(["city", "title"]), "op": st.just("eq"), "value": st.text(max_size=3)}
)
rules = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.fixed_dictionaries({"and": st.lists(children, max_size=3)}),
        st.fixed_dictionaries({"or": st.lists(children, max_size=3)}),
        st.fixed_dictionaries({"not": children}),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(rules, st.data())
def test_problems_land_on_the_node_they_name(rule, data):
    paths = node_paths(rule)
    target = data.draw(st.sampled_from(paths))
    suffix = data.draw(st.sampled_from(["", "value", "op", "window.last"]))
    problem_path = f"{target}.{suffix}" if target and suffix else (target or suffix)
    placed = problems_by_node(rule, [{"path": problem_path, "reason": "bad"}])
    assert list(placed) == [target]
    assert placed[target] == [f"{suffix}: bad" if suffix else "bad"]


def test_unmerge_from_the_profile_splits_the_person(app, demo):
    from medscrm.db.schema import person_records

    c = logged_in(app, demo, "admin")
    with demo.engine.connect() as conn:
        pid = conn.execute(
            sa.select(person_records.c.person_id)
            .where(person_records.c.tenant_id == demo.tenant_id)
            .group_by(person_records.c.person_id)
            .having(sa.func.count() >= 2)
            .order_by(person_records.c.person_id)
            .limit(1)
        ).scalar_one()
        recs = sorted(
            conn.execute(
                sa.select(person_records.c.source_record_id).where(
                    person_records.c.tenant_id == demo.tenant_id, person_records.c.person_id == pid
                )
            ).scalars()
        )
    html = c.get(f"/hcps/{pid}").text
    assert 'id="unmerge"' in html
    token = csrf_of(html)
    r = c.post(f"/hcps/{pid}/unmerge", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 400 and "record_ids" in r.text  # nothing selected: a message, no split
    r = c.post(
        f"/hcps/{pid}/unmerge", data={"csrf_token": token, "record_ids": recs[-1]}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/hcps/{pid}?split=1"
    with demo.engine.connect() as conn:
        moved_to = conn.execute(
            sa.select(person_records.c.person_id).where(
                person_records.c.tenant_id == demo.tenant_id, person_records.c.source_record_id == recs[-1]
            )
        ).scalar_one()
    assert moved_to != pid
    analyst = logged_in(app, demo, "analyst")
    assert 'id="unmerge"' not in analyst.get(f"/hcps/{pid}").text
    r = analyst.post(f"/hcps/{pid}/unmerge", data={"csrf_token": csrf_of(analyst.get("/hcps").text)})
    assert r.status_code == 403


def test_webhooks_page_is_for_admins_only_and_needs_csrf(app, demo):
    from medscrm.webhooks.outbox import EVENT_TYPES
    from medscrm.webhooks.service import STATUSES

    # the keys the pages build from data: every topic and every delivery status has a label
    assert {"wh_event.all"} | {"wh_event." + e.replace(".", "_") for e in EVENT_TYPES} <= MESSAGES[
        "en"
    ].keys()
    assert {"wh_status." + s for s in STATUSES} <= MESSAGES["en"].keys()
    for user in ("marketer", "analyst", "compliance", demo.rep_username):
        c = logged_in(app, demo, user)
        assert 'data-nav="webhooks"' not in c.get("/").text, user
        r = c.get("/webhooks")
        assert r.status_code == 403 and "您的角色无权访问此页面" in r.text, user
        assert c.get("/webhooks/whs_x").status_code == 403, user
        token = csrf_of(c.get("/").text)
        r = c.post("/webhooks", data={"csrf_token": token, "url": "https://93.184.215.14/h", "events": "*"})
        assert r.status_code == 403, user
        assert c.post("/webhooks/whs_x/pause", data={"csrf_token": token}).status_code == 403, user
    admin = logged_in(app, demo, "admin", lang="en")
    html = admin.get("/").text
    assert 'data-nav="webhooks"' in html and ">Webhooks<" in html
    assert admin.get("/webhooks").status_code == 200
    for url in ("/webhooks", "/webhooks/whs_x/pause", "/webhooks/whs_x/deliveries/whd_x/replay"):
        assert admin.post(url, data={"url": "https://93.184.215.14/h", "events": "*"}).status_code == 403, url
    token = csrf_of(admin.get("/webhooks").text)
    # bad input answers on the form, naming the field; a private address is refused by default
    r = admin.post("/webhooks", data={"csrf_token": token, "url": "http://10.0.0.1/h", "events": "*"})
    assert r.status_code == 400 and 'id="webhook-error"' in r.text and "url: 10.0.0.1" in r.text
    r = admin.post("/webhooks", data={"csrf_token": token, "url": "https://93.184.215.14/h"})
    assert r.status_code == 400 and "events: choose at least one event type" in r.text
    r = admin.post("/webhooks/whs_missing/pause", data={"csrf_token": token})
    assert r.status_code == 404 and "whs_missing" in r.text


def test_the_journey_page_links_auditors_to_the_proof_of_its_sends(app, demo):
    from medscrm.web.devserver import add_journey_and_content

    add_journey_and_content(demo.engine, demo.tenant_id)  # the last test of the module: adds a journey
    c = logged_in(app, demo, "compliance")
    page = c.get("/journeys/senior_followup").text
    assert 'href="/compliance?journey=senior_followup" data-proof-link' in page
    proof = c.get("/compliance?journey=senior_followup")
    assert proof.status_code == 200 and "发送合规凭证" in proof.text
    marketer = logged_in(app, demo, "marketer")
    assert "data-proof-link" not in marketer.get("/journeys/senior_followup").text
    assert marketer.get("/compliance").status_code == 403
