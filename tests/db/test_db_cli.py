"""`medscrm db upgrade` / `medscrm db current` on both engines, and migrations started by several
processes at once (a deployment's serve workers, `medscrm worker` and a `medscrm db upgrade` job all
start together against one PostgreSQL database)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from conftest import PG_ADMIN_URL
from medscrm.db import make_engine
from medscrm.db.migrate import current_revision, head_revision
from tests_support import cli_env

# imports everything first, then waits for a common start time so the upgrades really overlap
_STARTER = """
import sys, time
from medscrm.db import make_engine, upgrade_to_head
engine = make_engine(sys.argv[1])
engine.connect().close()
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print("migrated" if upgrade_to_head(engine) else "current")
"""


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema yet), dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"medscrm_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgresql_migrate_once_and_all_succeed(empty_pg_url):
    start = time.time() + 6.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _STARTER, empty_pg_url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stdout.read().strip(), p.stderr.read()) for p in procs]
    for rc, _, stderr in results:
        assert rc == 0, stderr[-2000:]
    assert sorted(out for _, out, _ in results) == ["current", "current", "current", "migrated"]
    engine = make_engine(empty_pg_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def _medscrm(url: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medscrm", *args],
        env=cli_env(MEDSCRM_DATABASE_URL=url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    return request.getfixturevalue("empty_pg_url")


def test_db_current_shows_the_revision_and_db_upgrade_brings_it_to_head(empty_url):
    head = head_revision()
    before = _medscrm(empty_url, "db", "current", "--check")
    assert before.returncode == 1, before.stderr
    assert "revision none (empty database)" in before.stdout and f"head {head}" in before.stdout
    assert "behind: run `medscrm db upgrade`" in before.stdout
    up = _medscrm(empty_url, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"schema at {head} (migrated)" in up.stdout
    again = _medscrm(empty_url, "db", "upgrade")
    assert "(already current)" in again.stdout
    after = _medscrm(empty_url, "db", "current", "--check")
    assert after.returncode == 0, after.stderr
    assert f"revision {head}, head {head} (up to date)" in after.stdout


@pytest.mark.postgres
def test_db_backup_on_postgresql_points_to_pg_dump(empty_pg_url, tmp_path):
    p = _medscrm(empty_pg_url, "db", "backup", str(tmp_path / "bk"))
    assert p.returncode == 2
    assert "MEDSCRM_DATABASE_URL" in p.stderr and "pg_dump" in p.stderr
    assert not (tmp_path / "bk").exists()
