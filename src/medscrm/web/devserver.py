"""A demo-like tenant and a real uvicorn server in a thread: used by the console's end-to-end tests
(``tests/web``) and by ``scripts/screenshots.py``. Not used by ``medscrm serve``."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import uvicorn

from medscrm.accounts import service as accounts
from medscrm.common import utcnow
from medscrm.db.schema import source_records
from medscrm.demo import _tags_and_segments
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import load_mapping
from medscrm.persons.engine import resolve_with_engine
from medscrm.persons.run import run_identity
from medscrm.synth import generate
from medscrm.synth.events import generate_events
from medscrm.web.data import optional_module
from medscrm.workspace import Workspace

log = logging.getLogger("medscrm.web")

USERS = (("admin", "admin"), ("marketer", "marketer"), ("analyst", "analyst"), ("compliance", "compliance"))


@dataclass
class DemoTenant:
    engine: sa.Engine
    tenant_id: str
    slug: str
    rep_username: str
    passwords: dict[str, str] = field(default_factory=dict)


def build_tenant(
    engine: sa.Engine, *, slug: str, data_dir: Path, hcps: int = 300, seed: int = 7, scores: bool = False
) -> DemoTenant:
    """Synthetic sources → imports → OneID → demo tags/segments → users (one rep who owns HCPs)."""

    with engine.begin() as conn:
        tenant_id = accounts.ensure_tenant(conn=conn, slug=slug)["id"]
    manifest = generate(data_dir, hcps=hcps, seed=seed, progress=False)
    for src in manifest.sources:
        mapping = load_mapping(data_dir / src["mapping"]) if src["mapping"] else None
        import_file(
            engine=engine,
            tenant_id=tenant_id,
            source=src["name"],
            path=data_dir / src["file"],
            mapping=mapping,
            actor="setup",
        )
    with engine.begin() as conn:
        run_identity(conn, tenant_id=tenant_id, resolve=resolve_with_engine, actor="setup")
    _tags_and_segments(Workspace(engine=engine, tenant_id=tenant_id, tenant_slug=slug))
    if scores:
        _try_scores(engine, tenant_id)
    with engine.begin() as conn:
        rep_col = sa.cast(source_records.c.attributes["rep_userid"].as_string(), sa.String)
        rep = conn.execute(
            sa.select(rep_col, sa.func.count())
            .where(source_records.c.tenant_id == tenant_id, rep_col.is_not(None))
            .group_by(rep_col)
            .order_by(sa.func.count().desc(), rep_col)
            .limit(1)
        ).first()[0]
        passwords = {}
        for username, role in (*USERS, (rep, "rep")):
            passwords[username] = f"{username}-pw-1"
            accounts.create_user(
                conn=conn,
                tenant_id=tenant_id,
                username=username,
                role=role,
                password=passwords[username],
                actor="setup",
            )
    return DemoTenant(engine=engine, tenant_id=tenant_id, slug=slug, rep_username=rep, passwords=passwords)


def _try_scores(engine: sa.Engine, tenant_id: str) -> None:
    """Behaviour-model tags and scores (``medscrm.scores``) where that module is installed."""
    svc = optional_module("scores.service")
    if svc is None or not hasattr(svc, "refresh_all"):
        return

    with engine.begin() as conn:  # behaviour first, as `medscrm demo` does, so the charts have data
        generate_events(conn, tenant_id=tenant_id, seed=7)
    with engine.begin() as conn:
        res = svc.refresh_all(conn, tenant_id=tenant_id)
        schedule = optional_module("scores.schedule")
        if schedule is not None:  # as `medscrm demo` records it (the dashboard shows the last run)
            schedule.record(conn, tenant_id=tenant_id, now=utcnow(), actor="demo", res=res)


def add_journey_and_content(engine, tenant_id: str) -> None:
    """A small running journey and a few content items, where those modules are installed."""

    content = optional_module("content.service")
    if content is not None:
        now = dt.datetime.now(dt.UTC)
        items = (
            (
                "hf-guideline-2026",
                "心衰指南 2026 解读 · HF guideline 2026",
                "approved",
                now + dt.timedelta(days=12),
            ),
            (
                "dm-webinar-invite",
                "糖尿病学术会议邀请 · diabetes webinar invitation",
                "approved",
                now + dt.timedelta(days=200),
            ),
            ("glp1-survey", "GLP-1RA 处方习惯问卷 · GLP-1RA survey", "in_review", None),
            ("ckd-screening", "糖尿病肾病早期筛查 · early CKD screening", "draft", None),
        )
        with engine.begin() as conn:
            for i, (key, title, status, expires) in enumerate(items):
                item = content.create_item(
                    conn,
                    tenant_id=tenant_id,
                    key=key,
                    title=title,
                    kind="article",
                    audience="hcp_only",
                    therapy_area="心血管" if i == 0 else "内分泌",
                    actor="demo",
                    body="……",
                    expires_at=expires,
                )
                if status in ("in_review", "approved"):
                    content.submit_for_review(conn, tenant_id=tenant_id, item_id=item["id"], actor="demo")
                if status == "approved":
                    content.approve(
                        conn,
                        tenant_id=tenant_id,
                        item_id=item["id"],
                        approval_code=f"MED-2026-{100 + i}",
                        actor="compliance",
                        actor_role="compliance",
                    )
    journeys = optional_module("journeys.service")
    if journeys is not None:
        definition = {
            "key": "senior_followup",
            "name": "高年资医生跟进 · senior physician follow-up",
            "description": "Tag senior physicians, wait two days, then hand high-tier ones to their rep.",
            "triggers": [{"type": "api"}],
            "steps": [
                {"id": "is_senior", "name": "高年资? · senior?", "type": "branch",
                 "condition": {"tag": "senior_physician", "op": "exists"}, "then": "wait_2d", "else": "done"},
                {"id": "wait_2d", "name": "等待两天 · wait 2 days", "type": "wait", "duration": "2d", "next": "tier_a"},
                {"id": "tier_a", "name": "三甲医院? · tier-3A?", "type": "branch",
                 "condition": {"tag": "tier3a_hospital", "op": "exists"}, "then": "rep_task", "else": "done"},
                {"id": "rep_task", "name": "代表拜访任务 · rep visit task", "type": "task", "title": "拜访 · visit",
                 "next": "done"},
                {"id": "done", "name": "结束 · exit", "type": "exit"},
            ],
        }  # fmt: skip
        with engine.begin() as conn:
            journeys.create(conn, tenant_id=tenant_id, definition=definition, actor="demo")
            journeys.start(conn, tenant_id=tenant_id, key="senior_followup", actor="demo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_in_thread(app, *, port: int | None = None) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a daemon thread; yields the base URL."""

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True, name="medscrm-web-test")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
