"""Console fixtures: one demo-like DuckDB tenant (300 HCPs) and a real uvicorn server for the module,
headless Chromium through Playwright (``/usr/bin/chromium``; ``scripts/ensure_chromium.sh``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from medscrm.db import make_engine, upgrade_to_head
from medscrm.web.devserver import DemoTenant, build_tenant, serve_in_thread

CHROMIUM = os.environ.get("MEDSCRM_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[DemoTenant]:
    tmp = tmp_path_factory.mktemp("web")
    engine = make_engine(f"duckdb:///{tmp / 'web.duckdb'}")
    upgrade_to_head(engine)
    yield build_tenant(engine, slug="webtest", data_dir=tmp / "data", hcps=300, seed=7)
    engine.dispose()


@pytest.fixture(scope="module")
def app(demo: DemoTenant, tmp_path_factory):
    from medscrm.app import create_app

    return create_app(demo.engine, spool_dir=tmp_path_factory.mktemp("spool"), fsync=False)


@pytest.fixture(scope="module")
def base_url(app) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():  # pragma: no cover - environment problem
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/ensure_chromium.sh")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def login(browser, base_url: str, demo: DemoTenant, username: str, lang: str | None = None):
    """A fresh browser context logged in as ``username``; returns the page (on the dashboard)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    if lang:
        ctx.add_cookies([{"name": "medscrm_lang", "value": lang, "url": base_url}])
    page = ctx.new_page()
    page.goto(base_url + "/")
    assert "/login" in page.url
    page.fill("input[name=tenant]", demo.slug)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", demo.passwords[username])
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    return page


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def count(engine: sa.Engine, stmt) -> int:
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()
