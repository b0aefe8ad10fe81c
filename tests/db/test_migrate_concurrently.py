"""Migrations started by several processes at once (a deployment's serve workers, `medscrm worker`
and a `medscrm db upgrade` job all start together against one PostgreSQL database)."""

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
