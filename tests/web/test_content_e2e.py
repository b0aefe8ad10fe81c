"""Content authoring and MLR review in a real browser, in Chinese and in English: the marketer writes an
e-mail item (the form names each field at fault, the preview renders it as it will be sent), edits the
draft and submits it; the marketer cannot approve; the compliance user finds it in the review queue and
approves it with a code and an expiry, after which the content service itself says it may be sent; the
four-eyes rule refuses a reviewer's approval of an item they wrote; a reviewer rejects another item with
a reason the author reads; an approved item is withdrawn; the journeys that send an item are listed."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from medscrm.common import as_utc
from medscrm.content import service as content
from medscrm.db.schema import audit_log
from medscrm.web.i18n import MESSAGES
from web.conftest import login

CHINA = dt.timezone(dt.timedelta(hours=8))


def _item(demo, key: str) -> dict:
    with demo.engine.connect() as conn:
        return content.get_item(conn, tenant_id=demo.tenant_id, item_id=key)


def _actions(demo, item_id: str) -> list[tuple[str, str]]:
    with demo.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(audit_log.c.actor, audit_log.c.action)
                .where(audit_log.c.tenant_id == demo.tenant_id, audit_log.c.object_id == item_id)
                .order_by(audit_log.c.occurred_at)
            )
        ]


def _submitted(demo, key: str, *, author: str, submitter: str) -> dict:
    """An item in review, written and submitted through the service (as the API and CLI do)."""
    with demo.engine.begin() as conn:
        item = content.create_item(
            conn,
            tenant_id=demo.tenant_id,
            key=key,
            title=f"心衰随访提醒 {key}",
            kind="wecom_template",
            audience="hcp_only",
            actor=author,
            body="{{ name }}医生您好，心衰随访提醒。",
        )
        return content.submit_for_review(conn, tenant_id=demo.tenant_id, item_id=item["id"], actor=submitter)


def _field_error(page, field: str) -> str:
    loc = page.locator(f"[data-error-for={field}]")
    assert loc.count() == 1, page.locator("main").inner_text()[:2000]
    return loc.inner_text()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_marketer_writes_compliance_approves(browser, base_url, demo, lang):
    m = MESSAGES[lang]
    key = f"hf-mail-{lang}"

    # --- the marketer writes an e-mail item -------------------------------------------------------------
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.click("[data-nav=content]")
    assert page.locator("[data-testid=review-queue]").count() == 0  # reviewing is compliance's
    page.click("[data-testid=content-new]")
    page.wait_for_url("**/content/new")
    page.fill("#ct-key", "Bad Key")
    page.evaluate("document.querySelector('#ct-key').removeAttribute('pattern')")  # the server decides
    page.click("#ct-save")
    # each refusal names the field, in the reader's language, beside it
    assert _field_error(page, "key") == f"{m['ctf.key']}: {m['cterr.key.format']}"
    assert page.locator("#ct-key").get_attribute("class").endswith("has-err")
    page.fill("#ct-key", key)
    page.click("#ct-save")
    assert _field_error(page, "title") == f"{m['ctf.title']}: {m['cterr.title.required']}"
    page.fill("#ct-title", "心衰新指南解读 · HF guideline update")
    page.select_option("#ct-kind", "email_template")
    page.click("#ct-save")
    assert _field_error(page, "body") == f"{m['ctf.body']}: {m['cterr.body.required']}"
    page.fill("#ct-body", "尊敬的{{ name }}：\n请阅读 2026 心衰指南解读。")
    page.fill("#ct-url", "ftp://example.org/hf")
    page.click("#ct-save")
    assert _field_error(page, "url") == f"{m['ctf.url']}: {m['cterr.url.scheme']}"
    # the form kept what was typed
    assert page.input_value("#ct-body").startswith("尊敬的{{ name }}")
    page.fill("#ct-url", "https://example.org/hf")
    page.check("#ct-prescription")
    page.select_option("#ct-audience", "patient")
    page.click("#ct-save")
    assert _field_error(page, "audience") == f"{m['ctf.audience']}: {m['cterr.audience.rx_hcp_only']}"
    page.select_option("#ct-audience", "hcp_only")
    page.uncheck("#ct-prescription")
    # the preview renders the e-mail as the dispatcher will, live as the subject changes
    page.fill("#ct-subject", "{{ name }}，您好：心衰指南更新")
    page.wait_for_function(
        "n => (document.querySelector('[data-channel=email] .pv-subject') || {}).innerText?.includes(n)",
        arg=m["ct.sample_name"],
    )
    assert m["ct.sample_name"] in page.locator("[data-channel=email] .pv-body").inner_text()
    assert page.locator("[data-channel=sms]").count() == 0  # an e-mail template goes out as e-mail
    page.fill("#ct-subject", "{{ nmae }}")  # a typo the send would fail on
    page.wait_for_selector("[data-testid=preview-error]")
    page.fill("#ct-subject", "{{ name }}，您好：心衰指南更新")
    page.wait_for_selector("[data-channel=email] .pv-subject")
    page.click("#ct-save")
    page.wait_for_url("**/content/ct_*?done=created")
    item = _item(demo, key)
    assert (item["status"], item["kind"], item["created_by"], item["url"]) == (
        "draft",
        "email_template",
        "marketer",
        "https://example.org/hf",
    )
    assert page.locator("[data-testid=content-status]").inner_text() == m["status.draft"]
    assert page.locator("[data-testid=approve-form]").count() == 0  # the marketer does not approve

    # edit the draft, then submit it
    page.click("[data-testid=edit]")
    page.fill("#ct-title", "心衰新指南解读 2026 · HF guideline update 2026")
    page.fill("#ct-therapy-area", "心衰")
    page.click("#ct-save")
    page.wait_for_url("**?done=updated")
    assert _item(demo, key)["therapy_area"] == "心衰"
    assert m["ctf.therapy_area"] in page.locator("tr[data-action='content.update']").inner_text()
    page.click("[data-testid=submit]")
    page.wait_for_url("**?done=submit")
    assert page.locator("[data-testid=content-status]").inner_text() == m["status.in_review"]
    assert page.locator("[data-testid=edit]").count() == 0  # in review: not editable
    # a direct POST of an approval by the marketer is refused by the role check
    csrf = page.get_attribute("body", "data-csrf")
    r = page.request.post(
        f"{base_url}/content/{item['id']}/approve",
        form={"csrf_token": csrf, "approval_code": "X-1", "expires_at": "2030-01-01"},
    )
    assert r.status == 403
    assert _item(demo, key)["status"] == "in_review"
    page.context.close()

    # --- compliance approves it from the review queue ------------------------------------------------
    page = login(browser, base_url, demo, "compliance", lang=lang)
    page.click("[data-nav=content]")
    page.click("[data-testid=review-queue]")
    row = page.locator(f"[data-testid=review-list] tr[data-content='{key}']")
    # a title written in both languages shows the reader's half
    assert ("心衰新指南解读 2026" if lang == "zh" else "HF guideline update 2026") in row.inner_text()
    row.locator("a.button").click()
    page.wait_for_selector("[data-testid=approve-form]")
    assert page.locator("[data-testid=four-eyes-note]").count() == 0
    page.fill("#approval-code", "")
    page.click("[data-testid=approve]")
    assert page.locator("[data-testid=content-error]").inner_text() == m["cterr.approval_code.required"]
    assert page.locator("[data-testid=content-error]").get_attribute("data-error-for") == (
        "approve.approval_code"
    )
    assert _item(demo, key)["status"] == "in_review"
    expiry = (dt.datetime.now(CHINA) + dt.timedelta(days=180)).date()
    page.fill("#approval-code", f"MLR-2026-{lang.upper()}-042")
    page.fill("#approval-expires", expiry.isoformat())
    page.click("[data-testid=approve]")
    page.wait_for_url("**?done=approve")
    assert page.locator("[data-testid=content-notice]").inner_text() == m["ct.done_approve"]
    assert page.locator("[data-testid=content-status]").inner_text() == m["status.approved"]
    assert page.locator("[data-testid=approval-code]").inner_text() == f"MLR-2026-{lang.upper()}-042"
    item = _item(demo, key)
    assert (item["approved_by"], item["submitted_by"]) == ("compliance", "marketer")
    assert as_utc(item["expires_at"]).astimezone(CHINA).date() == expiry
    # the content service itself now lets it go out to a verified HCP (and still not to a patient)
    assert content.sendable_reason(item, None, "verified_hcp") is None
    assert content.is_sendable(item, audience="verified_hcp")
    assert content.sendable_reason(item, None, "patient") == "audience_not_allowed"
    assert page.locator("[data-testid=sendable]").get_attribute("data-reason") == ""
    # history: who did what, audited as the API does (the user name is the actor)
    assert _actions(demo, item["id"]) == [
        ("marketer", "content.create"),
        ("marketer", "content.update"),
        ("marketer", "content.submit"),
        ("compliance", "content.approve"),
    ]
    assert page.locator("[data-testid=content-history] tbody tr").count() == 4

    # --- four-eyes: a reviewer cannot approve an item they wrote -------------------------------------
    own = _submitted(demo, f"own-{lang}", author="compliance", submitter="marketer")
    page.goto(f"{base_url}/content/{own['id']}")
    assert page.locator("[data-testid=four-eyes-note]").inner_text() == m["cterr.four_eyes"]
    page.fill("#approval-code", "MLR-SELF-1")
    page.click("[data-testid=approve]")
    assert page.locator("[data-testid=content-error]").inner_text() == m["cterr.four_eyes"]
    assert _item(demo, own["key"])["status"] == "in_review"

    # --- reject another item with a reason; the author reads it ---------------------------------------
    other = _submitted(demo, f"reject-{lang}", author="marketer", submitter="marketer")
    page.goto(f"{base_url}/content/{other['id']}")
    page.click("[data-testid=reject]")
    assert page.locator("[data-testid=content-error]").inner_text() == m["cterr.reason.required"]
    page.fill("#reject-reason", "请注明指南出处")
    page.click("[data-testid=reject]")
    page.wait_for_url("**?done=reject")
    assert page.locator("[data-testid=content-status]").inner_text() == m["status.draft"]
    assert _item(demo, other["key"])["review_note"] == "请注明指南出处"

    # --- where it is used, and withdrawing it ------------------------------------------------------------
    from medscrm.journeys import service as journeys
    from outreach.helpers import setup_email

    with demo.engine.begin() as conn:
        setup_email(conn, demo.tenant_id)  # a journey's send step needs its channel configured
        journeys.create(
            conn,
            tenant_id=demo.tenant_id,
            actor="marketer",
            definition={
                "key": f"hf_mail_{lang}",
                "name": "心衰邮件 · HF mail",
                "triggers": [{"type": "api"}],
                "steps": [
                    {"id": "mail", "type": "send", "channel": "email", "content": key, "next": "done"},
                    {"id": "done", "type": "exit"},
                ],
            },
        )
    page.goto(f"{base_url}/content/{item['id']}")
    assert page.locator(f"[data-testid=content-uses] a[data-journey=hf_mail_{lang}]").count() == 1
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=withdraw]")
    page.wait_for_url("**?done=withdrawn_0")
    assert page.locator("[data-testid=content-notice]").inner_text() == m["ct.done_withdrawn"].format(n=0)
    assert page.locator("[data-testid=content-status]").inner_text() == m["status.withdrawn"]
    assert content.sendable_reason(_item(demo, key), None, "verified_hcp") == "content_withdrawn"
    page.context.close()

    # the author sees the reviewer's reason on the rejected draft
    page = login(browser, base_url, demo, "marketer", lang=lang)
    page.goto(f"{base_url}/content/{other['id']}")
    assert page.locator("[data-testid=review-note]").inner_text() == "请注明指南出处"
    assert page.locator("[data-testid=edit]").count() == 1
    page.context.close()


def test_other_roles_get_no_authoring(browser, base_url, demo):
    page = login(browser, base_url, demo, "analyst")
    page.click("[data-nav=content]")
    assert page.locator("[data-testid=content-new]").count() == 0
    assert page.goto(base_url + "/content/new").status == 403
    assert page.goto(base_url + "/content/review").status == 403
    page.context.close()
