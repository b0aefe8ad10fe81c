"""The console end to end: a real server, headless Chromium, the demo-like tenant."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from medscrm import access
from medscrm.config import get_settings
from medscrm.db.schema import audit_log, identity_review, persons, quarantine
from medscrm.outreach import consent
from medscrm.segments import service as segments
from medscrm.webhooks import dispatch
from medscrm.webhooks import service as webhook_service
from web.conftest import count, login
from webhooks.receiver import Receiver


def test_login_dashboard_and_logout(browser, base_url, demo):
    page = browser.new_page()
    page.goto(base_url + "/hcps")
    assert "/login" in page.url
    page.fill("input[name=tenant]", demo.slug)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "用户名或密码不正确"
    page.fill("input[name=password]", demo.passwords["admin"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/hcps$"))  # back to where the visitor wanted to go
    page.click("[data-nav=dashboard]")
    hcps = count(
        demo.engine,
        sa.select(sa.func.count()).where(
            persons.c.tenant_id == demo.tenant_id,
            persons.c.status == "active",
            persons.c.person_type == "hcp",
        ),
    )
    assert page.locator("#kpi-hcps b").inner_text().replace(",", "") == str(hcps)
    page.wait_for_selector("#chart-reach canvas")  # ECharts rendered from the vendored bundle
    page.click("text=English")
    assert page.locator("h1").first.inner_text() == "Dashboard"
    page.click("text=Log out")
    page.wait_for_url(re.compile(r".*/login$"))
    page.goto(base_url + "/")
    assert "/login" in page.url
    page.context.close()


def test_find_an_hcp_and_open_the_profile(browser, base_url, demo):
    page = login(browser, base_url, demo, "marketer")
    with demo.engine.connect() as conn:
        pid, attrs = conn.execute(
            sa.select(persons.c.id, persons.c.attributes)
            .where(
                persons.c.tenant_id == demo.tenant_id,
                persons.c.status == "active",
                persons.c.person_type == "hcp",
            )
            .order_by(persons.c.id)
            .limit(1)
        ).one()
    page.click("[data-nav=hcps]")
    page.fill("#q", attrs["name"])
    row = page.locator(f"tr[data-person={pid}]")
    row.wait_for()  # HTMX live search replaced the results
    row.locator("a").click()
    page.wait_for_url(re.compile(rf".*/hcps/{pid}$"))
    assert attrs["name"] in page.locator("#person-name").inner_text()
    # golden attributes with their source and rule
    name_row = page.locator("tr[data-attr=name]")
    assert attrs["name"] in name_row.inner_text()
    assert name_row.locator("td").nth(1).inner_text().strip() != ""
    assert page.locator("ol.timeline li").count() >= 1
    if attrs.get("phone"):  # a marketer reads PII in clear
        assert page.locator("tr[data-attr=phone] .val").inner_text() == attrs["phone"]
    page.context.close()


def test_build_a_segment_see_its_count_save_and_export(browser, base_url, demo):
    page = login(browser, base_url, demo, "marketer")
    page.goto(base_url + "/segments/new")
    page.click(".group .add-cond")
    cond = page.locator(".cond").first
    cond.locator(".cond-name").select_option("department")
    cond.locator(".cond-op").select_option("eq")
    cond.locator(".cond-value").fill("心血管内科")
    rule = {"and": [{"attr": "department", "op": "eq", "value": "心血管内科"}]}
    with demo.engine.connect() as conn:
        expected = segments.preview(conn, tenant_id=demo.tenant_id, rule=rule, sample=0)["count"]
    assert expected > 0
    page.wait_for_function(
        "n => document.querySelector('#live-count') && document.querySelector('#live-count').dataset.count == n",
        arg=str(expected),
    )
    # a bad node: the server's message appears beside that condition
    page.click(".group .add-cond")
    bad = page.locator(".cond").nth(1)
    bad.locator(".cond-kind").select_option("event")
    bad = page.locator(".cond").nth(1)
    bad.locator(".cond-name").fill("Webinar Attended")
    bad.locator(".cond-days").fill("99999")
    bad.locator(".node-err").wait_for(state="visible")
    assert "最近天数" in bad.locator(".node-err").inner_text()  # the path and the problem in words
    assert page.locator(".cond").first.locator(".node-err").inner_text() == ""
    bad.locator(".remove").click()
    page.wait_for_function(
        "n => document.querySelector('#live-count') && document.querySelector('#live-count').dataset.count == n",
        arg=str(expected),
    )
    page.fill("#seg-key", "e2e_cardio")
    page.fill("#seg-name", "端到端 心内科")
    page.click("#save-segment")
    page.wait_for_url(re.compile(r".*/segments/e2e_cardio\?saved=1$"))
    assert f"{expected:,}" in page.locator("#saved").inner_text()
    with demo.engine.connect() as conn:
        seg = segments.get(conn, tenant_id=demo.tenant_id, key="e2e_cardio")
    assert seg["rule"] == rule and seg["member_count"] == expected
    csv = page.request.get(base_url + "/segments/e2e_cardio/export.csv")
    assert csv.status == 200
    assert len(csv.text().strip().splitlines()) == expected + 1
    page.context.close()


def test_approve_a_merge_in_identity_review(browser, base_url, demo):
    page = login(browser, base_url, demo, "admin")
    page.click("[data-nav=identity]")
    card = page.locator(".pair").first
    review_id = card.get_attribute("id").removeprefix("pair-")
    assert card.locator(".ev").count() >= 5  # per-field evidence beside the two records
    card.locator("[data-action=merge]").click()
    page.locator(f"#pair-{review_id}[data-decision=merge]").wait_for()
    with demo.engine.connect() as conn:
        status = conn.execute(
            sa.select(identity_review.c.status).where(identity_review.c.id == review_id)
        ).scalar()
        from medscrm.persons.review import current_clusters

        row = (
            conn.execute(sa.select(identity_review).where(identity_review.c.id == review_id)).mappings().one()
        )
        clusters = current_clusters(conn, demo.tenant_id)
    assert status == "merged"
    owner = {r: p for p, recs in clusters.items() for r in recs}
    assert owner[row["record_a"]] == owner[row["record_b"]]
    page.context.close()


def test_upload_a_file_with_a_bad_row_then_fix_and_replay(browser, base_url, demo, tmp_path):
    bad = tmp_path / "web_upload.csv"
    bad.write_text(
        "姓名,手机,邮箱,医院,科室\n"
        "上传甲,13800138111,jia@example.cn,北京协和医院,心血管内科\n"
        "上传乙,,not-an-email,北京协和医院,心血管内科\n",
        encoding="utf-8",
    )
    page = login(browser, base_url, demo, "admin")
    page.click("[data-nav=imports]")
    page.set_input_files("#upload-file", str(bad))
    page.fill("#upload-source", "console-upload")
    page.click("#upload-submit")
    page.wait_for_selector("#rows-rejected")
    assert page.locator("#rows-accepted").inner_text() == "1"
    assert page.locator("#rows-rejected").inner_text() == "1"
    entry = page.locator(".q-entry[data-file='web_upload.csv']")
    assert entry.count() == 1 and entry.get_attribute("data-row") == "3"
    entry.locator("input[name='col:邮箱']").fill("yi@example.cn")
    entry.locator("button.primary").click()
    entry = page.locator(".q-entry[data-file='web_upload.csv']")
    assert entry.locator(".st-fixed").count() == 1
    entry.locator("button", has_text="重新导入").first.click()
    page.wait_for_selector("#replay-result")
    assert page.locator(".q-entry[data-file='web_upload.csv']").count() == 0
    with demo.engine.connect() as conn:
        st = conn.execute(
            sa.select(quarantine.c.status).where(
                quarantine.c.tenant_id == demo.tenant_id, quarantine.c.file_name == "web_upload.csv"
            )
        ).scalar()
    assert st == "replayed"
    # the wrong file type is refused with a message, nothing imported
    exe = tmp_path / "payload.exe"
    exe.write_bytes(b"MZ\x90\x00")
    page.set_input_files("#upload-file", str(exe))
    page.fill("#upload-source", "console-upload")
    page.click("#upload-submit")
    msg = page.locator(".field-err[data-field=file]")
    assert ".exe" in msg.inner_text()
    page.context.close()


def test_rep_sees_masked_phones_and_only_own_hcps(browser, base_url, demo):
    with demo.engine.connect() as conn:
        user = {"username": demo.rep_username, "display_name": demo.rep_username}
        owned = set(conn.execute(access.owned_person_ids(demo.tenant_id, user)).scalars())
        active_owned = set(
            conn.execute(
                sa.select(persons.c.id).where(
                    persons.c.tenant_id == demo.tenant_id,
                    persons.c.status == "active",
                    persons.c.id.in_(owned),
                )
            ).scalars()
        )
        other = conn.execute(
            sa.select(persons.c.id)
            .where(
                persons.c.tenant_id == demo.tenant_id,
                persons.c.status == "active",
                persons.c.id.not_in(owned),
            )
            .limit(1)
        ).scalar_one()
    assert 0 < len(active_owned) < 200
    page = login(browser, base_url, demo, demo.rep_username)
    assert page.locator("[data-nav=segments]").count() == 0 and page.locator("[data-nav=audit]").count() == 0
    assert page.locator("#kpi-hcps b").inner_text().replace(",", "") == str(
        count(
            demo.engine,
            sa.select(sa.func.count()).where(
                persons.c.tenant_id == demo.tenant_id,
                persons.c.id.in_(active_owned),
                persons.c.person_type == "hcp",
            ),
        )
    )
    page.goto(base_url + "/hcps?page=1")
    shown = set(page.locator("tr[data-person]").evaluate_all("rows => rows.map(r => r.dataset.person)"))
    assert shown and shown <= active_owned
    phones = [p for p in page.locator("td.phone").all_inner_texts() if p.strip()]
    assert phones and all("****" in p for p in phones)
    # an owned HCP whose golden record has a phone (not any one: some have none)
    with demo.engine.connect() as conn:
        with_phone = sorted(
            pid
            for pid, attrs in conn.execute(
                sa.select(persons.c.id, persons.c.attributes).where(
                    persons.c.tenant_id == demo.tenant_id, persons.c.id.in_(shown)
                )
            ).all()
            if (attrs or {}).get("phone")
        )
    assert with_phone
    pid = with_phone[0]
    page.goto(f"{base_url}/hcps/{pid}")
    assert "****" in page.locator("tr[data-attr=phone] .val").inner_text()
    assert demo.rep_username in page.locator("body").inner_text()  # the rep owner is shown
    resp = page.goto(f"{base_url}/hcps/{other}")
    assert resp.status == 404
    resp = page.goto(base_url + "/segments")
    assert resp.status == 403
    assert "Traceback" not in page.content()
    page.context.close()


def test_csrf_missing_is_refused(browser, base_url, demo):
    page = login(browser, base_url, demo, "admin")
    before = count(demo.engine, sa.select(sa.func.count()).where(identity_review.c.status != "open"))
    rid = page.evaluate("() => 1") and None
    with demo.engine.connect() as conn:
        rid = conn.execute(
            sa.select(identity_review.c.id)
            .where(identity_review.c.tenant_id == demo.tenant_id, identity_review.c.status == "open")
            .limit(1)
        ).scalar_one()
    # the session cookie is sent, the token is not
    resp = page.request.post(f"{base_url}/identity/{rid}/decide", form={"decision": "reject"})
    assert resp.status == 403
    assert "CSRF" in resp.text()
    resp = page.request.post(
        f"{base_url}/identity/{rid}/decide", form={"decision": "reject"}, headers={"X-CSRF-Token": "forged"}
    )
    assert resp.status == 403
    assert count(demo.engine, sa.select(sa.func.count()).where(identity_review.c.status != "open")) == before
    page.context.close()


def test_start_and_pause_a_journey_and_see_its_graph(browser, base_url, demo):
    from medscrm.journeys import service as journeys

    definition = {
        "key": "e2e_journey",
        "name": "端到端旅程 · e2e journey",
        "triggers": [{"type": "api"}],
        "steps": [
            {"id": "is_senior", "type": "branch", "condition": {"tag": "senior_physician", "op": "exists"},
             "then": "mark", "else": "done"},
            {"id": "mark", "type": "add_tag", "tag": "senior_physician", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip
    with demo.engine.begin() as conn:
        journeys.create(conn, tenant_id=demo.tenant_id, definition=definition, actor="test")
    page = login(browser, base_url, demo, "marketer")
    page.click("[data-nav=journeys]")
    row = page.locator("tr[data-journey-row=e2e_journey]")
    assert row.locator("[data-status]").get_attribute("data-status") == "draft"
    assert row.locator("[data-status]").inner_text() == "草稿"  # the status in the reader's language
    row.locator("[data-action=start]").click()
    dialog = page.locator("dialog[data-start-dialog=e2e_journey]")
    dialog.wait_for(state="visible")
    dialog.locator("[data-confirm-start]").click()
    page.wait_for_url(re.compile(r".*/journeys/e2e_journey$"))
    assert page.locator("#journey-status").get_attribute("data-status") == "running"
    page.wait_for_selector("#chart-journey canvas")
    assert page.locator("tr[data-step]").count() == 3
    with demo.engine.connect() as conn:
        assert journeys.get_journey(conn, tenant_id=demo.tenant_id, key="e2e_journey")["status"] == "running"
    page.click("[data-action=pause]")
    page.wait_for_selector("#journey-status[data-status=paused]")
    page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_start_dialog_offers_to_enrol_the_segments_current_members(browser, base_url, demo, lang):
    from medscrm.db.schema import journey_enrollments
    from medscrm.journeys import service as journeys

    key = f"e2e_entry_{lang}"
    definition = {
        "key": key,
        "name": f"分群进入 · segment entry {lang}",
        "triggers": [{"type": "segment_entry", "segment": "senior_cardiology"}],
        "steps": [{"id": "done", "type": "exit"}],
    }
    with demo.engine.begin() as conn:
        journeys.create(conn, tenant_id=demo.tenant_id, definition=definition, actor="test")
        n = journeys.current_members(conn, tenant_id=demo.tenant_id, key=key)["count"]
    assert n > 0
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.goto(f"{base_url}/journeys")
    row = page.locator(f"tr[data-journey-row={key}]")
    dialog = page.locator(f"dialog[data-start-dialog={key}]")
    assert not dialog.is_visible()
    row.locator("[data-action=start]").click()
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    expected = (
        f"Enrol current members now: {n} persons (segment senior_cardiology)"
        if lang == "en"
        else f"立即纳入分群现有成员：{n} 人（分群 senior_cardiology）"
    )
    assert expected in text, text
    box = dialog.locator("[data-enrol-current]")
    assert box.is_checked()  # on by default
    if lang == "zh":  # cancel closes the dialog and starts nothing; untick: only new entrants
        dialog.locator("[data-close-dialog]").click()
        dialog.wait_for(state="hidden")
        row.locator("[data-action=start]").click()
        dialog.wait_for(state="visible")
        box.uncheck()
    dialog.locator("[data-confirm-start]").click()
    page.wait_for_url(re.compile(rf".*/journeys/{key}$"))
    assert page.locator("#journey-status").get_attribute("data-status") == "running"
    with demo.engine.connect() as conn:
        jid = journeys.get_journey(conn, tenant_id=demo.tenant_id, key=key)["id"]
        enrolled = conn.execute(
            sa.select(sa.func.count()).where(journey_enrollments.c.journey_id == jid)
        ).scalar()
    assert enrolled == (n if lang == "en" else 0)
    page.context.close()


def test_content_library_shows_approval_status_and_expiry(browser, base_url, demo):
    import datetime as dt

    from medscrm.content import service as content

    now = dt.datetime.now(dt.UTC)
    with demo.engine.begin() as conn:
        item = content.create_item(
            conn,
            tenant_id=demo.tenant_id,
            key="e2e-hf-article",
            title="心衰指南解读",
            kind="article",
            audience="hcp_only",
            actor="test",
            body="正文",
            expires_at=now + dt.timedelta(days=10),
        )
        content.submit_for_review(conn, tenant_id=demo.tenant_id, item_id=item["id"], actor="test")
        content.approve(
            conn,
            tenant_id=demo.tenant_id,
            item_id=item["id"],
            approval_code="MED-E2E-001",
            actor="reviewer",
            actor_role="compliance",
        )
        content.create_item(
            conn,
            tenant_id=demo.tenant_id,
            key="e2e-draft",
            title="草稿",
            kind="article",
            audience="hcp_only",
            actor="test",
            body="x",
        )
    page = login(browser, base_url, demo, "compliance")
    page.click("[data-nav=content]")
    approved = page.locator("tr[data-content=e2e-hf-article]")
    assert approved.locator("[data-status]").get_attribute("data-status") == "approved"
    assert approved.locator("[data-status]").inner_text() == "已批准"
    assert "MED-E2E-001" in approved.inner_text()
    assert approved.locator(".expiry-warning").count() == 1
    draft = page.locator("tr[data-content=e2e-draft]")
    assert (
        draft.locator("[data-status]").get_attribute("data-status") == "draft"
        and draft.locator(".expiry-warning").count() == 0
    )
    page.context.close()


WEBHOOK_LABELS = {
    "zh": {
        "title": "Webhook 推送",
        "dead": "已放弃",
        "pending": "待投递",
        "delivered": "已送达",
        "paused": "已暂停",
    },
    "en": {
        "title": "Webhooks",
        "dead": "Gave up",
        "pending": "Pending",
        "delivered": "Delivered",
        "paused": "Paused",
    },
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_admin_subscribes_sees_a_failed_delivery_and_replays_it(
    browser, base_url, demo, monkeypatch, lang
):
    """Create a subscription in the browser against a real receiver on loopback; a consent change
    produces a delivery that the receiver refuses (HTTP 500, one attempt allowed: dead); the log shows it
    and its error; replay queues it again and the receiver gets the same event, signed with the secret
    the page showed once. Then pause, rotate the secret and delete, all audited."""
    monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "1")  # the receiver listens on 127.0.0.1
    get_settings.cache_clear()
    labels = WEBHOOK_LABELS[lang]
    page = login(browser, base_url, demo, "admin", lang=lang)
    page.on("dialog", lambda d: d.accept())  # rotate and delete ask first
    with Receiver(statuses=[500, 200]) as rx:
        page.click("[data-nav=webhooks]")
        page.wait_for_url(re.compile(r".*/webhooks$"))
        assert page.locator("h1").inner_text() == labels["title"]
        page.fill("#wh-url", rx.url)
        page.uncheck("[data-topic='*']")
        page.check("[data-topic='consent.changed']")
        page.click("#wh-submit")
        secret = page.locator("#secret-value").inner_text()
        sid = page.locator("#new-secret").get_attribute("data-subscription")
        assert secret.startswith("whsec_")
        row = page.locator(f"tr[data-subscription={sid}]")
        assert row.locator("[data-state]").get_attribute("data-state") == "active"
        assert "consent.changed" in row.inner_text()
        page.goto(base_url + "/webhooks")  # the secret is not shown again
        assert page.locator("#new-secret").count() == 0 and secret not in page.content()

        # an event: a consent change of one of the tenant's HCPs
        with demo.engine.begin() as conn:
            pid = conn.execute(
                sa.select(persons.c.id)
                .where(persons.c.tenant_id == demo.tenant_id, persons.c.status == "active")
                .order_by(persons.c.id)
                .limit(1)
            ).scalar_one()
            consent.set_consent(
                conn,
                tenant_id=demo.tenant_id,
                person_id=pid,
                channel="sms",
                purpose="marketing",
                status="withdrawn" if lang == "zh" else "granted",
                source="console-test",
                actor="test",
            )
        assert dispatch.dispatch_once(demo.engine, tenant_id=demo.tenant_id, max_attempts=1) == {
            "delivered": 0,
            "retry": 0,
            "dead": 1,
        }
        page.goto(base_url + "/webhooks")
        assert row.locator("[data-last-status]").inner_text() == labels["dead"]

        # the delivery log: status, attempts, the receiver's answer
        row.locator(f"[data-log={sid}]").click()
        page.wait_for_url(re.compile(rf".*/webhooks/{sid}$"))
        delivery = page.locator("tr[data-delivery]")
        assert delivery.count() == 1
        assert delivery.locator("[data-status]").inner_text() == labels["dead"]
        assert delivery.locator("[data-attempts]").get_attribute("data-attempts") == "1"
        assert "HTTP 500" in delivery.inner_text() and "consent.changed" in delivery.inner_text()

        delivery.locator("[data-action=replay]").click()
        page.wait_for_url(re.compile(rf".*/webhooks/{sid}\?replayed=.+"))
        page.locator("#replayed").wait_for()
        assert delivery.locator("[data-status]").inner_text() == labels["pending"]
        assert dispatch.dispatch_once(demo.engine, tenant_id=demo.tenant_id)["delivered"] == 1
        page.reload()
        assert delivery.locator("[data-status]").inner_text() == labels["delivered"]
        assert delivery.locator("[data-attempts]").get_attribute("data-attempts") == "1"
        assert "HTTP 500" not in delivery.locator("td").nth(5).inner_text()

    first, again = rx.requests
    assert first["headers"]["X-Medscrm-Event-Id"] == again["headers"]["X-Medscrm-Event-Id"]
    assert dispatch.verify(secret, again["headers"]["X-Medscrm-Signature"], again["body"])
    assert json.loads(again["body"])["data"]["person_id"] == pid

    # pause, rotate, delete from the list
    page.goto(base_url + "/webhooks")
    row = page.locator(f"tr[data-subscription={sid}]")
    row.locator("[data-action=pause]").click()
    page.wait_for_url(re.compile(r".*/webhooks$"))
    assert row.locator("[data-state]").inner_text() == labels["paused"]
    row.locator("[data-action=rotate]").click()
    rotated = page.locator("#secret-value").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret
    with demo.engine.connect() as conn:
        assert webhook_service.signing_secret(conn, tenant_id=demo.tenant_id, subscription_id=sid) == rotated
    row.locator("[data-action=delete]").click()
    page.wait_for_url(re.compile(r".*/webhooks$"))
    assert page.locator(f"tr[data-subscription={sid}]").count() == 0
    with demo.engine.connect() as conn:
        actions = list(
            conn.execute(
                sa.select(audit_log.c.action)
                .where(
                    audit_log.c.tenant_id == demo.tenant_id,
                    audit_log.c.object_id == sid,
                    audit_log.c.actor == "user:admin",
                )
                .order_by(audit_log.c.occurred_at, audit_log.c.id)
            ).scalars()
        )
    assert actions == [
        "webhook.create",
        "webhook.replay",
        "webhook.update",
        "webhook.update",
        "webhook.delete",
    ]
    page.context.close()
    get_settings.cache_clear()
