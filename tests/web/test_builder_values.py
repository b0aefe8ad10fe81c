"""The segment builder suggests the values the data holds and says when a value was read as its
canonical form (Chromium, the demo-like tenant)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from medscrm.db.schema import persons
from web.conftest import login


def _departments(demo) -> dict[str, int]:
    col = sa.cast(persons.c.attributes["department"].as_string(), sa.String)
    with demo.engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(col, sa.func.count())
                .where(persons.c.tenant_id == demo.tenant_id, persons.c.status == "active", col.is_not(None))
                .group_by(col)
            ).all()
        )


def test_the_builder_suggests_canonical_values_and_shows_the_normalisation(browser, base_url, demo):
    held = _departments(demo)
    page = login(browser, base_url, demo, "marketer")
    page.goto(base_url + "/segments/new")
    page.wait_for_selector("#preview-empty")  # no condition yet: a hint, not an error
    page.click(".group .add-cond")
    cond = page.locator(".cond").first
    name = cond.locator(".cond-name")
    assert name.locator("option[value=department]").inner_text() == "科室"  # labels, not field codes
    name.select_option("department")
    cond = page.locator(".cond").first
    assert cond.locator(".cond-op option[value=eq]").inner_text() == "等于"
    cond.locator(".cond-op").select_option("eq")
    value = page.locator(".cond").first.locator(".cond-value")
    value.focus()
    page.wait_for_function("document.querySelectorAll('#values-department option').length > 0")
    suggested = page.eval_on_selector_all("#values-department option", "os => os.map(o => o.value)")
    top = sorted(held.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    assert suggested == [v for v, _ in top]  # the data's values, most frequent first
    assert "心血管内科" in suggested and "心内科" not in suggested  # imports stored the canonical name
    value.fill("心内科")
    page.wait_for_selector("#normalised")
    assert page.locator("#normalised .pill").inner_text() == "心内科 → 心血管内科"
    page.wait_for_function(f"document.querySelector('#live-count')?.dataset.count === '{held['心血管内科']}'")
    page.context.close()


def test_the_values_endpoint_is_json_and_never_suggests_identifying_fields(browser, base_url, demo):
    page = login(browser, base_url, demo, "analyst", lang="en")
    res = page.request.get(base_url + "/segments/values?field=department&q=内科")
    body = res.json()
    assert res.ok and body["label"] == "Department"
    assert body["values"] and all("内科" in v["value"] for v in body["values"])
    assert {v["value"]: v["count"] for v in body["values"]}.items() <= _departments(demo).items()
    for field in ("phone", "name", "email", "license_no"):
        assert page.request.get(base_url + f"/segments/values?field={field}").json()["values"] == []
    bad = page.request.get(base_url + "/segments/values?field=" + json.dumps("x;drop"))
    assert bad.status == 400
    page.context.close()
    rep = login(browser, base_url, demo, demo.rep_username)
    assert rep.request.get(base_url + "/segments/values?field=department").status == 403
    rep.context.close()
