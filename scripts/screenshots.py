"""Screenshots of each main console page → docs/screenshots/*.png (linked from README and docs/console.md).

Builds a demo-like tenant in a temporary DuckDB workspace (synthetic data, the same pipeline as
`medscrm demo`), serves the real app with uvicorn and drives headless Chromium with Playwright.

    uv run python scripts/screenshots.py [--hcps 1000] [--out docs/screenshots] [--lang zh|en]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
HF_SEGMENT = {
    "and": [
        {"attr": "department", "op": "eq", "value": "心内科"},
        {"tag": "potential_tier", "op": "eq", "value": "A"},
        {"attr": "city", "op": "eq", "value": "上海"},
        {
            "event": "Article Viewed",
            "where": [{"property": "therapy_area", "op": "eq", "value": "心衰"}],
            "op": "gte",
            "value": 1,
            "window": {"last": 90, "unit": "days"},
        },
    ]
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hcps", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--lang", choices=("zh", "en"), default="zh")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from medscrm import access as scope
    from medscrm.app import create_app
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.db.schema import person_records, persons
    from medscrm.web.data import optional_module
    from medscrm.web.devserver import add_journey_and_content, build_tenant, serve_in_thread

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="medscrm-shots-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        engine = make_engine(f"duckdb:///{tmp / 'shots.duckdb'}")
        upgrade_to_head(engine)
        demo = build_tenant(engine, slug="demo", data_dir=tmp / "data", hcps=args.hcps, seed=42, scores=True)
        print(f"tenant ready in {time.perf_counter() - t0:.1f}s")
        with engine.connect() as conn:
            person = conn.execute(
                sa.select(person_records.c.person_id)
                .join(persons, persons.c.id == person_records.c.person_id)
                .where(person_records.c.tenant_id == demo.tenant_id, persons.c.person_type == "hcp")
                .group_by(person_records.c.person_id)
                .order_by(sa.func.count().desc(), person_records.c.person_id)
                .limit(1)
            ).scalar_one()
            rep_user = {"username": demo.rep_username, "display_name": demo.rep_username}
            rep_person = conn.execute(
                sa.select(persons.c.id)
                .where(
                    persons.c.id.in_(scope.owned_person_ids(demo.tenant_id, rep_user)),
                    persons.c.status == "active",
                )
                .order_by(persons.c.id)
                .limit(1)
            ).scalar_one()
        add_journey_and_content(engine, demo.tenant_id)
        from rich.console import Console

        from medscrm.demo.journeys import journey_step
        from medscrm.workspace import Workspace

        ws = Workspace(engine=engine, tenant_id=demo.tenant_id, tenant_slug=demo.slug)
        journey_step(ws, console=Console(quiet=True))  # the demo's webinar journey, with its figures
        bad = tmp / "hcp_upload.csv"
        bad.write_text(
            "姓名,手机,邮箱,医院,科室\n张三,13800138000,zhangsan@example.cn,北京协和医院,心血管内科\n"
            "李四,,not-an-email,北京协和医院,心血管内科\n",
            encoding="utf-8",
        )
        app = create_app(engine, spool_dir=tmp / "spool", fsync=False)
        with serve_in_thread(app) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])

            def session(username: str):
                ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
                ctx.add_cookies([{"name": "medscrm_lang", "value": args.lang, "url": base}])
                page = ctx.new_page()
                page.goto(base + "/login")
                return page, ctx

            def shot(page, name: str, full: bool = True) -> None:
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(300)
                path = args.out / f"{name}.png"
                page.screenshot(path=str(path), full_page=full)
                print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

            page, ctx = session("admin")
            page.fill("input[name=tenant]", "demo")
            page.fill("input[name=username]", "admin")
            shot(page, "01-login", full=False)
            page.fill("input[name=password]", demo.passwords["admin"])
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            shot(page, "02-dashboard")
            page.goto(base + "/hcps?hospital=协和")
            shot(page, "03-hcp-search")
            page.goto(f"{base}/hcps/{person}")
            shot(page, "04-hcp-360")
            page.goto(base + "/identity")
            shot(page, "05-identity-review")
            page.goto(base + "/segments")
            shot(page, "06-segments")
            page.goto(base + "/segments/senior_cardiology")
            page.wait_for_selector("#live-count")
            shot(page, "07-segment-builder")
            # the marketer's segment: 心内科 A-tier doctors in 上海 who viewed 心衰 content in 90 days,
            # typed as rule JSON beside the builder (checked by the server, then drawn as conditions)
            page.goto(base + "/segments/new")
            page.wait_for_selector("#preview-body")
            page.fill("#rule-json", json.dumps(HF_SEGMENT, ensure_ascii=False))
            page.wait_for_selector(".cond[data-kind=event] .where-value")
            page.wait_for_selector("#live-count")
            shot(page, "14-segment-builder-event-filter")
            page.goto(base + "/imports")
            page.set_input_files("#upload-file", str(bad))
            page.fill("#upload-source", "console-upload")
            page.click("#upload-submit")
            page.wait_for_selector("#report")
            shot(page, "08-imports-quarantine")
            page.goto(base + "/audit")
            shot(page, "09-audit-log")
            if optional_module("journeys.service") is not None:
                page.goto(base + "/journeys")
                shot(page, "10-journeys")
                first = page.locator("a[data-journey=webinar_hf]").first
                if first.count():
                    first.click()
                    page.wait_for_load_state("networkidle")
                    shot(page, "11-journey-graph")
            if optional_module("content.service") is not None:
                page.goto(base + "/content")
                shot(page, "12-content-library")
            ctx.close()

            page, ctx = session(demo.rep_username)
            page.fill("input[name=tenant]", "demo")
            page.fill("input[name=username]", demo.rep_username)
            page.fill("input[name=password]", demo.passwords[demo.rep_username])
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            page.goto(f"{base}/hcps/{rep_person}")
            shot(page, "13-rep-view-masked")
            ctx.close()
            browser.close()
        engine.dispose()


if __name__ == "__main__":
    main()
