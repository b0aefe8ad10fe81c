"""The DPO's console page /privacy in a real browser, in Chinese and in English: look a person up by
phone, see what is held, download the export, restrict and lift, hold (erasure refused), release,
erase with confirmation and download the certificate."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from medscrm.db.schema import audit_log, identities, persons
from web.conftest import login

TEXT = {
    "zh": {
        "title": "个人信息主体请求",
        "restricted": "已限制处理",
        "refused": "已拒绝删除",
        "erased": "已删除",
    },
    "en": {
        "title": "Data-subject requests",
        "restricted": "Processing restricted",
        "refused": "Erasure refused",
        "erased": "Erased",
    },
}


def _person_with_phone(demo, skip: int) -> tuple[str, str]:
    with demo.engine.connect() as conn:
        return tuple(
            conn.execute(
                sa.select(identities.c.person_id, identities.c.value)
                .join(persons, persons.c.id == identities.c.person_id)
                .where(
                    identities.c.tenant_id == demo.tenant_id,
                    identities.c.type == "phone",
                    persons.c.status == "active",
                )
                .order_by(identities.c.person_id)
                .offset(skip)
                .limit(1)
            ).one()
        )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_dpo_page(browser, base_url, demo, lang):
    pid, phone = _person_with_phone(demo, skip=0 if lang == "zh" else 5)
    tx = TEXT[lang]
    page = login(browser, base_url, demo, "compliance", lang=lang)
    page.click("[data-nav=privacy]")
    assert tx["title"] in page.locator("h1").inner_text()
    # unknown identifier: said clearly, nothing changes
    page.fill("input[name=identifier]", "13700000000")
    page.click("form.search button[type=submit]")
    assert "13700000000" in page.locator("[data-testid=privacy-error]").inner_text()
    page.fill("input[name=identifier]", phone[3:] if phone.startswith("+86") else phone)
    page.click("form.search button[type=submit]")
    page.wait_for_url(f"**/privacy?person={pid}")
    held = page.locator("[data-testid=privacy-held]")
    assert pid in held.inner_text()
    assert int(page.locator("td[data-table=persons]").inner_text()) == 1
    with page.expect_download() as dl:
        page.click("[data-testid=export]")
    manifest = json.loads(
        zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())).read("manifest.json")
    )
    assert manifest["person_id"] == pid and manifest["tables"]["persons"] == 1
    # restrict, then lift
    page.locator("form[action='/privacy/restrict'] input[name=reason]").fill("Art. 44")
    page.click("[data-testid=restrict]")
    page.wait_for_selector("[data-testid=badge-restricted]")
    assert tx["restricted"] in page.locator("[data-testid=privacy-notice]").inner_text()
    page.click("[data-testid=lift]")
    page.wait_for_selector("[data-testid=restrict]")
    # legal hold refuses erasure, with the reason
    page.locator("form[action='/privacy/hold'] input[name=reason]").fill("case-42")
    page.click("[data-testid=hold]")
    page.wait_for_selector("[data-testid=badge-hold]")
    page.fill("[data-testid=erase-confirm]", pid)
    page.click("[data-testid=erase]")
    err = page.locator("[data-testid=privacy-error]").inner_text()
    assert tx["refused"] in err and "case-42" in err
    page.click("[data-testid=release]")
    page.wait_for_selector("[data-testid=hold]")
    # a wrong confirmation erases nothing; the right one erases
    page.fill("[data-testid=erase-confirm]", "per_wrong")
    page.click("[data-testid=erase]")
    assert page.locator("[data-testid=privacy-held]").count() == 1
    page.fill("[data-testid=erase-confirm]", pid)
    page.click("[data-testid=erase]")
    page.wait_for_url("**/privacy?erased=*")
    assert tx["erased"] in page.locator("[data-testid=privacy-notice]").inner_text()
    with page.expect_download() as dl:
        page.click("[data-testid=erased-certificate]")
    cert = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert cert["certificate"]["person_id"] == pid and len(cert["sha256"]) == 64
    assert pid in page.locator("[data-testid=privacy-log]").inner_text()
    with demo.engine.connect() as conn:
        assert conn.execute(sa.select(persons.c.id).where(persons.c.id == pid)).first() is None
        # opening what is held about the person was audited (the row outlives the erasure)
        assert conn.execute(
            sa.select(audit_log.c.actor).where(
                audit_log.c.tenant_id == demo.tenant_id,
                audit_log.c.action == "dsr.lookup",
                audit_log.c.object_id == pid,
            )
        ).first() == ("user:compliance",)
    page.context.close()


def test_marketer_has_no_privacy_page(browser, base_url, demo):
    page = login(browser, base_url, demo, "marketer")
    assert page.locator("[data-nav=privacy]").count() == 0
    assert page.goto(base_url + "/privacy").status == 403
    page.context.close()
