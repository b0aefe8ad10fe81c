"""The DPO's console page /retention in a real browser, in Chinese and in English: a policy below
the audit floor is refused with the floor named, a policy is edited, a dry run reports and changes
nothing, a confirmed run deletes what expired and keeps what did not."""

from __future__ import annotations

import pytest

from medscrm.db import schema as s
from privacy.retention_helpers import row, seed
from web.conftest import login

TEXT = {
    "zh": {"title": "数据保存期限", "floor": "法定最短 1095 天", "saved": "已保存", "dry": "试运行报告", "real": "执行结果"},
    "en": {"title": "Retention", "floor": "legal minimum of 1095 days", "saved": "Saved", "dry": "Dry-run report", "real": "Run result"},
}  # fmt: skip


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_retention_page(browser, base_url, demo, lang):
    tx = TEXT[lang]
    with demo.engine.begin() as conn:
        old = seed(conn, demo.tenant_id, age_days=400)
        young = seed(conn, demo.tenant_id, age_days=5)
    page = login(browser, base_url, demo, "compliance", lang=lang)
    page.click("[data-nav=retention]")
    assert tx["title"] in page.locator("h1").inner_text()
    # the audit log may not be kept shorter than the legal floor
    page.fill("[data-testid=keep-audit]", "100")
    page.click("[data-testid=save-audit]")
    assert tx["floor"] in page.locator("[data-testid=retention-error]").inner_text()
    # quarantine payloads: 60 days, deleted
    page.fill("[data-testid=keep-quarantine]", "60")
    page.select_option("[data-testid=action-quarantine]", "delete")
    page.click("[data-testid=save-quarantine]")
    page.wait_for_url("**/retention?saved=quarantine")
    assert tx["saved"] in page.locator("[data-testid=retention-notice]").inner_text()
    assert page.locator("[data-testid=keep-quarantine]").input_value() == "60"
    # dry run: the report, nothing changed
    page.click("[data-testid=dry-run]")
    page.wait_for_url("**/retention?run=*")
    report = page.locator("[data-testid=retention-report]")
    assert tx["dry"] in report.inner_text()
    assert int(report.locator("tr[data-category=quarantine] td[data-col=rows]").inner_text()) >= 1
    assert int(report.locator("tr[data-category=quarantine] td[data-col=done]").inner_text()) == 0
    with demo.engine.connect() as conn:
        assert row(conn, s.quarantine, old["quarantine"]) is not None
    # the real run needs the confirmation ticked
    page.click("[data-testid=run]")
    assert "run=" in page.url and tx["dry"] in page.locator("[data-testid=retention-report]").inner_text()
    page.check("[data-testid=run-confirm]")
    page.click("[data-testid=run]")
    page.wait_for_selector(f"[data-testid=retention-report] h2:has-text('{tx['real']}')")
    report = page.locator("[data-testid=retention-report]")
    assert tx["real"] in report.inner_text()
    assert int(report.locator("tr[data-category=quarantine] td[data-col=done]").inner_text()) >= 1
    with demo.engine.connect() as conn:
        assert row(conn, s.quarantine, old["quarantine"]) is None
        assert row(conn, s.quarantine, young["quarantine"]) is not None
    assert page.locator("[data-testid=retention-runs] tbody tr").count() >= 2
