"""The CLI as a user runs it (a subprocess in an empty directory) and the API behind tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medscrm.app import create_app
from medscrm.db import make_engine

MEDSCRM = [sys.executable, "-m", "medscrm"]


def cli(
    cwd: Path, *args: str, env: dict | None = None, ok: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    e.update({"COLUMNS": "200", **(env or {})})
    p = subprocess.run([*MEDSCRM, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def last_line(p: subprocess.CompletedProcess) -> str:
    return p.stdout.strip().splitlines()[-1]


def test_help_explains_every_command(tmp_path):
    out = cli(tmp_path, "--help").stdout
    for cmd in ("import", "sources", "tokens", "users", "quarantine", "synth", "demo", "serve"):
        assert cmd in out
    assert "MEDSCRM_DATABASE_URL" in out
    imp = cli(tmp_path, "import", "--help").stdout
    assert "--mapping" in imp and "quarantined" in imp


def test_keys_and_tokens_print_the_secret_last_and_the_api_checks_them(tmp_path):
    key = last_line(cli(tmp_path, "sources", "create", "--name", "mini-program"))
    assert key.startswith("wk_") and len(key) > 20
    token = last_line(cli(tmp_path, "tokens", "create", "--role", "analyst"))
    assert token.startswith("msk_")
    assert (tmp_path / "medscrm.duckdb").exists()  # the embedded default, in the working directory
    dup = cli(tmp_path, "sources", "create", "--name", "mini-program", ok=False)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    bad = cli(tmp_path, "tokens", "create", "--role", "boss", ok=False)
    assert bad.returncode == 2 and "unknown role" in bad.stderr

    engine = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    try:
        client = TestClient(create_app(engine))
        assert client.get("/api/v1/health").json()["status"] == "ok"
        assert client.get("/api/v1/me").status_code == 401
        assert client.get("/api/v1/me", headers={"Authorization": "Bearer msk_nope"}).status_code == 401
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["role"] == "analyst" and me["tenant"] == "default"
        # analysts may read sources but not the audit log
        h = {"Authorization": f"Bearer {token}"}
        names = [s["name"] for s in client.get("/api/v1/sources", headers=h).json()]
        assert names == ["mini-program"]
        forbidden = client.get("/api/v1/audit", headers=h)
        assert forbidden.status_code == 403 and "analyst" in forbidden.json()["detail"]["reason"]
        assert "/api/v1/health" in client.get("/openapi.json").json()["paths"]
    finally:
        engine.dispose()


def test_import_exit_codes_and_quarantine_cli(tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text("编号,姓名,手机\n1,张伟,13800138000\n2,李娜,138\n", encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text("record_key: 编号\ncolumns: {姓名: name, 手机: phone}\n", encoding="utf-8")
    p = cli(tmp_path, "import", str(f), "--source", "crm", "--mapping", str(m), ok=False)
    assert p.returncode == 1 and "quarantined" in p.stdout and "phone" in p.stdout
    listed = cli(tmp_path, "quarantine", "list").stdout
    qid = next(w for w in listed.split() if w.startswith("q_"))
    still = cli(tmp_path, "quarantine", "replay", qid, ok=False)
    assert still.returncode == 1
    cli(tmp_path, "quarantine", "fix", qid, "--set", "手机=13900139000")
    cli(tmp_path, "quarantine", "replay", "--all")
    assert "replayed" in cli(tmp_path, "quarantine", "list", "--status", "all").stdout
    refused = cli(tmp_path, "import", str(tmp_path / "missing.csv"), "--source", "crm", ok=False)
    assert refused.returncode == 2 and "no such file" in refused.stderr


@pytest.mark.postgres
def test_cli_runs_on_postgresql(tmp_path, pg_url):
    env = {"MEDSCRM_DATABASE_URL": pg_url, "MEDSCRM_TENANT": f"pg-{tmp_path.name[-8:]}"}
    cli(tmp_path, "tenants", "create", env["MEDSCRM_TENANT"], env=env)
    key = last_line(cli(tmp_path, "sources", "create", "--name", "crm", env=env))
    assert key.startswith("wk_")
    assert not (tmp_path / "medscrm.duckdb").exists()


def test_demo_runs_end_to_end_in_an_empty_directory(tmp_path):
    p = cli(tmp_path, "demo", "--hcps", "300", timeout=600)
    out = p.stdout
    assert "What was loaded" in out and "Quarantined, and why" in out and "OneID" in out
    assert "Segments on the golden records" in out and "senior_cardiology" in out
    assert "crm_export.csv" in out and "gb18030" in out and "event_signups.xlsx" in out
    assert "Admin API token (Bearer): msk_" in out
    assert (tmp_path / "medscrm.duckdb").exists() and (tmp_path / "demo-data" / "ground_truth.csv").exists()
    again = cli(tmp_path, "demo", "--hcps", "300", timeout=600).stdout  # idempotent: nothing imported twice
    assert "duplicates" in again
    p2 = cli(tmp_path, "identity", "review", "list", "--tenant", "demo", "--limit", "1")
    assert p2.returncode == 0
