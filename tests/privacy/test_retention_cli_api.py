"""``medscrm retention`` as a DPO runs it, and ``/api/v1/retention`` on DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db import make_engine, upgrade_to_head
from medscrm.db import schema as s
from privacy.retention_helpers import row, seed


def test_retention_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env["COLUMNS"] = "200"

    def cli(*args, code=0):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", "retention", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == code, p.stdout + p.stderr
        return p.stdout + p.stderr

    eng = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    upgrade_to_head(eng)
    with eng.begin() as conn:
        t = accounts.ensure_tenant(conn=conn, slug="default")
        old = seed(conn, t["id"], age_days=200)
        young = seed(conn, t["id"], age_days=3)
    eng.dispose()

    assert "webhook_deliveries" in cli("policies")
    out = cli("set", "audit", "--keep-days", "30", code=2)
    assert "audit: 30 days is below the legal minimum of 1095 days" in out
    assert "keep 60 days, then delete" in cli("set", "quarantine", "--keep-days", "60", "--actor", "dpo")
    report = cli("run", "--dry-run")
    assert "quarantine" in report and "dry run" in report
    assert "Aborted" in cli("run", code=1)  # a real run asks; no answer on stdin: aborted
    assert "done" in cli("run", "--yes", "--batch", "1")
    assert "quarantine 1" in cli("runs")
    eng = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    with eng.connect() as c:
        assert row(c, s.quarantine, old["quarantine"]) is None
        assert row(c, s.quarantine, young["quarantine"]) is not None
    eng.dispose()


def _client(tenant, tmp_path, role="compliance"):
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
    with tenant.engine.begin() as conn:
        tok = accounts.create_token(conn=conn, tenant_id=tenant.id, role=role).token
    return TestClient(app), {"Authorization": f"Bearer {tok}"}


def test_retention_through_the_api(tenant, tmp_path):
    with tenant.engine.begin() as c:
        old = seed(c, tenant.id, age_days=200)
        young = seed(c, tenant.id, age_days=3)
    c, h = _client(tenant, tmp_path)
    pols = {p["category"]: p for p in c.get("/api/v1/retention/policies", headers=h).json()["policies"]}
    assert pols["audit"]["floor_days"] == 1095 and pols["quarantine"]["source"] == "default"
    r = c.put("/api/v1/retention/policies/audit", json={"keep_days": 100}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "keep_days"
    assert "audit: 100 days is below the legal minimum of 1095 days" in r.text
    r = c.put(
        "/api/v1/retention/policies/quarantine", json={"keep_days": 60, "action": "anonymise"}, headers=h
    )
    assert r.status_code == 200 and r.json()["source"] == "tenant" and r.json()["action"] == "anonymise"
    r = c.put("/api/v1/retention/policies/nothing", json={"keep_days": 60}, headers=h)
    assert r.status_code == 422
    r = c.post("/api/v1/retention/runs", json={"dry_run": True}, headers=h)
    assert r.status_code == 200 and r.json()["result"]["quarantine"]["rows"] == 1
    r = c.post("/api/v1/retention/runs", json={"dry_run": False}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "confirm"
    r = c.post("/api/v1/retention/runs", json={"dry_run": False, "confirm": True}, headers=h)
    assert r.status_code == 200 and r.json()["result"]["quarantine"]["done"] == 1
    runs = c.get("/api/v1/retention/runs", headers=h).json()["runs"]
    assert [x["dry_run"] for x in runs[:2]] == [False, True]
    with tenant.engine.connect() as conn:
        assert row(conn, s.quarantine, old["quarantine"])["payload"] == {}
        assert row(conn, s.quarantine, young["quarantine"])["payload"] != {}
        actions = conn.execute(
            sa.select(s.audit_log.c.action).where(
                s.audit_log.c.tenant_id == tenant.id, s.audit_log.c.action.like("retention.%")
            )
        ).scalars()
        assert sorted(actions) == ["retention.policy", "retention.run", "retention.run"]


def test_other_roles_may_not(tenant, tmp_path):
    c, h = _client(tenant, tmp_path, role="marketer")
    assert c.get("/api/v1/retention/policies", headers=h).status_code == 403
    assert c.post("/api/v1/retention/runs", json={"dry_run": True}, headers=h).status_code == 403
