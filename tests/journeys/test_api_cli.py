"""The journeys API (422 naming nodes, lifecycle, stats, enrol) and the CLI end to end."""

from __future__ import annotations

import subprocess
import sys

import yaml
from fastapi.testclient import TestClient

from journeys.support import define_tags, linear, make_persons
from medscrm.accounts import service as accounts
from medscrm.app import create_app
from tests_support import cli_env


def test_api_validate_create_lifecycle_stats_enroll(tenant, tmp_path):
    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, 3)
        define_tags(c, tenant.id, "t1")
        h = {
            r: {"Authorization": "Bearer " + accounts.create_token(conn=c, tenant_id=tenant.id, role=r).token}
            for r in ("admin", "analyst")
        }
    good = linear(
        "api_j",
        [
            {"id": "tag", "type": "add_tag", "tag": "t1", "value": "x"},
            {"id": "w", "type": "wait", "duration": "1d"},
        ],
    )
    bad = linear(
        "api_bad",
        [{"id": "w", "type": "wait", "duration": "forever"}, {"id": "t", "type": "add_tag", "tag": "nope"}],
    )
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool")) as tc:
        r = tc.post("/api/v1/journeys/validate", json={"definition": bad}, headers=h["analyst"])
        assert r.status_code == 422
        paths = {e["path"] for e in r.json()["errors"]}
        assert paths == {"steps[w].duration"}  # structure first; references once it is well-formed
        bad["steps"][0]["duration"] = "1d"
        r = tc.post("/api/v1/journeys", json={"definition": bad}, headers=h["admin"])
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "steps[t].tag"
        assert tc.post("/api/v1/journeys", json={"definition": good}, headers=h["analyst"]).status_code == 403
        r = tc.post("/api/v1/journeys", json={"definition": good}, headers=h["admin"])
        assert r.status_code == 201 and r.json()["status"] == "draft"
        assert (
            tc.post(
                "/api/v1/journeys/api_j/enroll", json={"person_ids": pids}, headers=h["admin"]
            ).status_code
            == 409
        )
        assert tc.post("/api/v1/journeys/api_j/start", headers=h["admin"]).json()["status"] == "running"
        assert tc.post("/api/v1/journeys/api_j/start", headers=h["admin"]).status_code == 409
        r = tc.post(
            "/api/v1/journeys/api_j/enroll", json={"person_ids": pids, "ref": "r1"}, headers=h["admin"]
        )
        assert r.json() == {"enrolled": 3, "skipped": {}}
        r = tc.post(
            "/api/v1/journeys/api_j/enroll", json={"person_ids": pids, "ref": "r1"}, headers=h["admin"]
        )
        assert r.json()["enrolled"] == 0
        from medscrm.journeys import engine as je

        je.tick(tenant.engine, worker_id="t", tenant_id=tenant.id, dispatch_sends=False)
        st = tc.get("/api/v1/journeys/api_j/stats", headers=h["analyst"]).json()
        assert [(s["step_id"], s["entered"], s["waiting"]) for s in st["steps"]] == [
            ("tag", 3, 0),
            ("w", 3, 3),
        ]
        assert st["enrollments"] == {"active": 3}
        assert tc.post("/api/v1/journeys/api_j/pause", headers=h["admin"]).json()["status"] == "paused"
        lst = tc.get("/api/v1/journeys", headers=h["analyst"]).json()
        assert lst["count"] == 1 and lst["journeys"][0]["active"] == 3
        assert tc.get("/api/v1/journeys/nope", headers=h["analyst"]).status_code == 404
        spec = tc.get("/openapi.json").json()
        assert "/api/v1/journeys/{key}/stats" in spec["paths"]


def test_cli_validate_create_start_stats_worker(tmp_path):
    db = tmp_path / "cli.duckdb"
    env = cli_env(MEDSCRM_DATABASE_URL=f"duckdb:///{db}", MEDSCRM_TENANT="clit")

    def run(*args, code=0):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert p.returncode == code, p.stdout + p.stderr
        return p.stdout + p.stderr

    run("tenants", "create", "clit")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(linear("cli_j", [{"id": "a", "type": "wait", "duration": "1d", "next": "ghost"}]))
    )
    out = run("journeys", "validate", str(bad), "--offline", code=2)
    assert "steps[a].next: unknown step 'ghost'" in out
    out = run("journeys", "validate", "src/medscrm/journeys/examples/webinar.yaml", "--offline")
    assert "valid" in out and "webinar_hf" in out
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            linear("cli_j", [{"id": "a", "type": "wait", "duration": "1h"}, {"id": "b", "type": "exit"}])
        )
    )
    assert "running" in run("journeys", "create", str(good), "--start")
    assert "cli_j" in run("journeys", "list")
    assert "cli_j" in run("journeys", "show", "cli_j")
    assert "paused" in run("journeys", "pause", "cli_j")
    assert "running" in run("journeys", "resume", "cli_j")
    out = run("journeys", "stats", "cli_j")
    assert "entered" in out and "进入" in out
    out = run("worker", "--once", "--id", "w-cli")
    assert "worker w-cli: 1 round(s)" in out
    assert "stopped" in run("journeys", "stop", "cli_j")
