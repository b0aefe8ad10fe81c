"""`medscrm db backup` / `medscrm db restore` of the embedded DuckDB database, on a real workspace
(`medscrm demo`: persons, events, consents, journeys) with events waiting in its spool."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest

from ingest.test_server_process import Server
from ingest.test_store_lines import lines_of, track
from medscrm.db import make_engine
from medscrm.ingest.events import Ingestor
from tests_support import cli_env, last_line

pytestmark = pytest.mark.slow


def medscrm(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medscrm", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        con.close()


class _Tenant:  # what lines_of needs: the tenant's id
    def __init__(self, id: str):
        self.id = id


def spool_events(ws: Path, message_ids: list[str]) -> None:
    """Events acknowledged by the event API but not stored yet: in the spool only, as after a stop
    while the database was unavailable."""
    db = ws / "medscrm.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    tenant_id, source_id = con.execute(
        "SELECT t.id, s.id FROM tenants t JOIN sources s ON s.tenant_id = t.id WHERE t.slug = 'demo' LIMIT 1"
    ).fetchone()
    con.close()
    engine = make_engine(f"duckdb:///{db}")
    ing = Ingestor(engine, ws / "medscrm.duckdb.spool")  # the default spool beside the file
    lines = lines_of(_Tenant(tenant_id), [track(m) for m in message_ids], dt.datetime.now(dt.UTC), source_id)
    ing.submit([], lines[1:]).result(5)
    ing.spool.close()  # not stop(): that would store them
    engine.dispose()


def test_backup_and_restore_a_demo_workspace_with_its_spool(tmp_path):
    ws, bk, ws2 = tmp_path / "ws", tmp_path / "bk", tmp_path / "ws2"
    ws.mkdir()
    ws2.mkdir()
    demo = medscrm(ws, "demo", "--hcps", "120")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

    # while `medscrm serve` holds the file, a backup is refused and names the process
    server = Server(ws)
    server.start()
    try:
        busy = medscrm(ws, "db", "backup", str(bk))
    finally:
        server.stop()
    assert busy.returncode == 2
    assert f"in use by process {server.proc.pid}" in busy.stderr and "stop it" in busy.stderr
    assert not bk.exists()

    spooled = ["spooled-1", "spooled-2", "spooled-3"]
    spool_events(ws, spooled)
    before = counts(ws / "medscrm.duckdb")
    assert before["persons"] > 100 and before["events"] > 1000 and before["consents"] > 0

    made = medscrm(ws, "db", "backup", str(bk))
    assert made.returncode == 0, made.stderr
    manifest = json.loads((bk / "manifest.json").read_text())
    assert manifest["tables"] == before and manifest["spool_files"] >= 1
    assert not (ws / "medscrm.duckdb.wal").exists() or (ws / "medscrm.duckdb.wal").stat().st_size == 0
    assert medscrm(ws, "db", "backup", str(bk)).returncode == 2  # never over an existing backup

    # restore into an empty directory (another machine): identical row counts, the spool restored
    restored = medscrm(ws2, "db", "restore", str(bk))
    assert restored.returncode == 0, restored.stderr
    assert "(as in the backup)" in restored.stdout
    assert counts(ws2 / "medscrm.duckdb") == before
    assert any((ws2 / "medscrm.duckdb.spool").glob("spool-*.log"))

    # a working medscrm afterwards: the CLI writes, the server starts and stores the spooled events
    assert medscrm(ws2, "db", "current", "--check").returncode == 0
    token = medscrm(ws2, "tokens", "create", "--role", "admin", "--tenant", "demo")
    assert token.returncode == 0, token.stderr
    server = Server(ws2)
    server.start()
    try:
        r = httpx.get(
            server.url + "/api/v1/events",
            params={"limit": 10},
            headers={"Authorization": f"Bearer {last_line(token.stdout)}"},
        )
        assert r.status_code == 200, r.text
        persons = httpx.get(
            server.url + "/api/v1/persons",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {last_line(token.stdout)}"},
        )
        assert persons.status_code == 200 and persons.json()["persons"], persons.text
    finally:
        server.stop()
    con = duckdb.connect(str(ws2 / "medscrm.duckdb"), read_only=True)
    stored = {
        r[0]
        for r in con.execute("SELECT message_id FROM events WHERE message_id LIKE 'spooled-%'").fetchall()
    }
    con.close()
    assert stored == set(spooled)

    # restoring over an existing database needs --force, and moves it aside instead of deleting it
    again = medscrm(ws2, "db", "restore", str(bk))
    assert again.returncode == 2 and "--force" in again.stderr
    forced = medscrm(ws2, "db", "restore", str(bk), "--force")
    assert forced.returncode == 0, forced.stderr
    aside = [p for p in ws2.glob("medscrm.duckdb.before-restore-*") if p.suffix != ".wal"]
    # the database moved aside opens with its write-ahead log: nothing the server stored is lost
    assert len(aside) == 1 and counts(aside[0])["events"] >= before["events"] + len(spooled)
    assert counts(ws2 / "medscrm.duckdb") == before

    # a damaged copy is refused before anything is replaced
    damaged = tmp_path / "damaged"
    shutil.copytree(bk, damaged)
    with (damaged / "medscrm.duckdb").open("r+b") as f:
        f.seek(9000)
        byte = f.read(1)
        f.seek(9000)
        f.write(bytes([byte[0] ^ 0xFF]))
    bad = medscrm(ws2, "db", "restore", str(damaged), "--force")
    assert bad.returncode == 2 and "SHA-256" in bad.stderr
    assert counts(ws2 / "medscrm.duckdb") == before


def test_restore_refuses_a_directory_without_a_manifest(tmp_path):
    p = medscrm(tmp_path, "db", "restore", str(tmp_path / "nothing"))
    assert p.returncode == 2 and "manifest.json is missing" in p.stderr
    assert not (tmp_path / "medscrm.duckdb").exists()
