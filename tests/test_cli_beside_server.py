"""The command line beside a running `medscrm serve` on the embedded DuckDB file: serve announces
itself in a server file (pid, url, tokens) and removes it on exit; read commands go through its API;
other commands say in one line what holds the database and what to do (no "Could not set lock"
traceback); and records sent by /v1/identify are resolved into persons inside the server, so a new
doctor is found by phone within seconds."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import api_tokens
from medscrm.identity.model import model_path
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import load_mapping
from medscrm.persons.engine import resolve_with_engine
from medscrm.persons.run import run_identity
from medscrm.synth import generate
from medscrm.workspace import CLI_TOKEN_NAME
from tests_support import cli_env

MEDSCRM = [sys.executable, "-m", "medscrm"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workspace(tmp_path) -> tuple[str, str]:
    """A DuckDB workspace with tenant acme, a CRM import resolved by a full identity run, and an
    event source; returns (database url, write key)."""
    data = tmp_path / "data"
    generate(data, hcps=120, seed=5, progress=False)
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    crm = next(s for s in manifest["sources"] if s["name"] == "crm")
    url = f"duckdb:///{tmp_path / 'medscrm.duckdb'}"
    engine = make_engine(url)
    try:
        upgrade_to_head(engine)
        with engine.begin() as conn:
            t = accounts.create_tenant(conn=conn, slug="acme")
            key = accounts.create_source(conn=conn, tenant_id=t["id"], name="app", kind="segment").write_key
        import_file(
            engine=engine,
            tenant_id=t["id"],
            source="crm",
            path=data / crm["file"],
            mapping=load_mapping(data / crm["mapping"]),
        )
        mf = model_path(engine, "acme")
        with engine.begin() as conn:
            run_identity(conn, tenant_id=t["id"], resolve=lambda r: resolve_with_engine(r, model_file=mf))
    finally:
        engine.dispose()
    return url, key


def test_cli_beside_a_running_server(tmp_path):
    url, key = _workspace(tmp_path)
    env = cli_env(MEDSCRM_DATABASE_URL=url, MEDSCRM_TENANT="acme", MEDSCRM_ACCESS_LOG="off")
    port = free_port()
    server_file = tmp_path / "medscrm.duckdb.server.json"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*MEDSCRM, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    proc = subprocess.Popen(
        [*MEDSCRM, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200 and server_file.exists():
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.3)
        info = json.loads(server_file.read_text(encoding="utf-8"))
        assert info["pid"] == proc.pid and info["url"] == base
        assert oct(server_file.stat().st_mode & 0o777) == "0o600"  # it holds API tokens
        auth = {"Authorization": f"Bearer {info['tokens']['acme']}"}

        # a new doctor through the event API is found by phone within seconds
        basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        t0 = time.monotonic()
        r = httpx.post(
            f"{base}/v1/identify",
            json={
                "userId": "new-doc-1",
                "messageId": "idf-1",
                "traits": {"name": "欧阳明远", "phone": "19900001234", "hospital": "北京协和医院"},
            },
            headers={"Authorization": basic},
        )
        assert r.status_code == 200, r.text
        while True:
            found = httpx.get(
                f"{base}/api/v1/persons/lookup",
                params={"type": "phone", "value": "19900001234"},
                headers=auth,
            )
            if found.status_code == 200:
                break
            assert time.monotonic() - t0 < 15, found.text
            time.sleep(0.25)
        person = found.json()["person_id"]
        print(f"identify → findable by phone in {time.monotonic() - t0:.2f}s")

        # read commands go through the API
        q = cli("quarantine", "list", "--json")
        assert q.returncode == 0, q.stderr
        assert isinstance(json.loads(q.stdout), list)
        shown = cli("persons", "show", person, "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["source_records"][0]["record_key"] == "new-doc-1"
        found_cli = cli("persons", "search", "欧阳明远", "--json")
        assert found_cli.returncode == 0 and person in found_cli.stdout, found_cli.stderr
        assert cli("segments", "list").returncode == 0

        # writing commands (and reads without an API route) say in one line what to do
        for args in (("sources", "create", "--name", "x"), ("tenants", "list"), ("imports", "list")):
            p = cli(*args)
            assert p.returncode == 2, (args, p.stdout, p.stderr)
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1, (args, p.stderr)
            assert f"held by `medscrm serve` (pid {proc.pid}, {base})" in lines[0], lines[0]
            assert "Traceback" not in p.stderr and "Could not set lock" not in p.stderr
        typo = cli("quarantine", "list", "--tenant", "acmee")
        assert typo.returncode == 2 and "'acmee'" in typo.stderr and "acme" in typo.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not server_file.exists()  # removed on exit
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            live = conn.execute(
                sa.select(sa.func.count()).where(
                    api_tokens.c.name == CLI_TOKEN_NAME, api_tokens.c.revoked_at.is_(None)
                )
            ).scalar()
        assert live == 0  # the command line's tokens die with the server
    finally:
        engine.dispose()
    # and without a server the same commands read the file directly
    assert cli("imports", "list").returncode == 0
    assert os.environ.get("MEDSCRM_API_TOKEN") is None
