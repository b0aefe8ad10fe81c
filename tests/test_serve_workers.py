"""`medscrm serve --workers N` (PostgreSQL): slots, per-worker spools, orphan spools stored, and a real
two-process server that stores every acknowledged event and serves profiles."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from medscrm.app import drain_orphan_spools
from medscrm.common import MedscrmError
from medscrm.db.schema import audit_log, events
from medscrm.ingest.events import Ingestor
from medscrm.workers import orphan_spools, spool_of, take_slot
from tests_support import cli_env, last_line

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "ingest"))
from test_server_process import free_port  # noqa: E402
from test_store_lines import lines_of, track  # noqa: E402


def test_slots_are_exclusive_and_taken_back_when_released(tmp_path):
    a = take_slot(tmp_path, 2)
    b = take_slot(tmp_path, 2)
    assert (a.index, b.index) == (0, 1) and a.leader and not b.leader
    assert a.spool_dir == tmp_path and b.spool_dir == tmp_path / "worker-1" and b.spool_dir.is_dir()
    with pytest.raises(MedscrmError, match="all 2 worker slots"):
        take_slot(tmp_path, 2, wait_s=0.3)
    a.release()  # a worker died: its replacement gets its slot (and its spool) back
    c = take_slot(tmp_path, 2)
    assert c.index == 0
    b.release()
    c.release()


def test_orphan_spools_are_those_beyond_the_worker_count(tmp_path):
    for k in (1, 2, 5):
        spool_of(tmp_path, k).mkdir()
    (tmp_path / "worker-x").mkdir()
    assert [p.name for p in orphan_spools(tmp_path, 2)] == ["worker-2", "worker-5"]
    assert orphan_spools(tmp_path, 8) == []


def test_the_leader_stores_what_a_run_with_more_workers_left(tenant, tmp_path):
    t0 = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    left = Ingestor(tenant.engine, spool_of(tmp_path, 3))  # slot 3 of an earlier 4-worker run
    left.submit([], lines_of(tenant, [track("o-1"), track("o-2")], t0)[1:]).result(5)
    left.spool.close()
    held = take_slot(tmp_path, 4)  # nobody holds slot 3 now ...
    drain_orphan_spools(tenant.engine, tmp_path, 2)  # ... and this run has 2 workers
    held.release()
    with tenant.engine.connect() as c:
        got = c.execute(sa.select(events.c.message_id).where(events.c.tenant_id == tenant.id)).scalars()
        assert sorted(got) == ["o-1", "o-2"]


def test_workers_need_postgresql(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "medscrm", "serve", "--workers", "2", "--port", str(free_port())],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert "--workers" in p.stderr and "PostgreSQL" in p.stderr


@pytest.fixture
def pg_database():
    from conftest import PG_ADMIN_URL

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"medscrm_workers_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_two_worker_server_stores_every_acknowledged_event(pg_database, tmp_path):
    env = cli_env(MEDSCRM_DATABASE_URL=pg_database, MEDSCRM_SPOOL_DIR=str(tmp_path / "spool"))

    def cli(*args: str) -> str:
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert p.returncode == 0, p.stderr
        return last_line(p.stdout)

    key = cli("sources", "create", "--name", "site")
    token = cli("tokens", "create", "--role", "admin")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "medscrm", "serve", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.2)
        acked: set[str] = set()
        # a new connection per batch: the kernel spreads them over both processes
        for b in range(40):
            ids = [f"w{b}-{i}" for i in range(25)]
            body = {
                "batch": [
                    {"type": "track", "userId": "u1", "event": "Article Viewed", "messageId": m} for m in ids
                ]
            }
            r = httpx.post(url + "/v1/batch", json=body, auth=(key, ""), timeout=10)
            assert r.status_code == 200, r.text
            acked.update(ids)
        me = httpx.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["role"] == "admin"
        missing = httpx.get(
            url + "/api/v1/persons/lookup",
            params={"type": "user_id", "value": "nobody"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert missing.status_code == 404 and missing.json()["detail"]["field"] == "value"
        # the leader's refresher runs the daily scores batch at once for a tenant never scored
        # (MEDSCRM_SCORES_BATCH_AT defaults to 02:00 China time; the audit log is its memory)
        deadline = time.time() + 60
        while True:
            st = httpx.get(
                url + "/api/v1/segments/refresher", headers={"Authorization": f"Bearer {token}"}, timeout=10
            ).json()
            if st.get("scores_batches", 0) >= 1:  # the leader answered (the other worker has none)
                break
            assert time.time() < deadline, st
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    assert proc.returncode == 0
    eng = sa.create_engine(pg_database)
    with eng.connect() as c:
        stored = set(c.execute(sa.select(events.c.message_id)).scalars())
        total = c.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        runs = (
            c.execute(sa.select(audit_log.c.actor).where(audit_log.c.action == "scores.batch"))
            .scalars()
            .all()
        )
    eng.dispose()
    assert runs == ["scheduler"]  # once, not once per worker or per look
    assert acked <= stored and total == len(acked)
    assert (tmp_path / "spool" / ".slot-0.lock").exists() and (tmp_path / "spool" / ".slot-1.lock").exists()
