"""Shared fixtures. Storage tests run on both engines: an embedded DuckDB file and a real
PostgreSQL server (``MEDSCRM_TEST_PG_URL``, default the local server on 127.0.0.1:5432)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.db import make_engine, upgrade_to_head

# the audit guard keeps every request that must be audited and was not; each test fails on its own
os.environ.setdefault("MEDSCRM_AUDIT_STRICT", "1")

PG_ADMIN_URL = os.environ.get("MEDSCRM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"medscrm_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: start it (see .ci/run): {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from medscrm.db import reset_engines

    reset_engines()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(pg_url)
    upgrade_to_head(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    """The storage engine under test: each test runs once on DuckDB and once on PostgreSQL."""
    if request.param == "duckdb":
        eng = make_engine(f"duckdb:///{tmp_path / 'test.duckdb'}")
        upgrade_to_head(eng)
        yield eng
        eng.dispose()
    else:
        yield request.getfixturevalue("pg_engine")


@dataclass
class Tenant:
    engine: sa.Engine
    id: str
    slug: str


@pytest.fixture
def tenant(engine: sa.Engine) -> Tenant:
    """A fresh tenant: tests on the shared PostgreSQL database stay apart by tenant."""
    slug = f"t-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        t = accounts.create_tenant(conn=conn, slug=slug, actor="test")
    return Tenant(engine=engine, id=t["id"], slug=slug)


@pytest.fixture(autouse=True)
def every_write_and_personal_read_is_audited(request):
    """A request this test made to a route that must be audited (a write, a read of personal data)
    succeeded without a complete audit row: the test fails and names it (medscrm.api.audit_guard)."""
    from medscrm.api.audit_guard import GAPS

    GAPS.clear()
    yield
    gaps = sorted(set(GAPS))
    GAPS.clear()
    report = os.environ.get("MEDSCRM_AUDIT_GAPS_FILE")
    if report and gaps:  # survey mode: collect instead of failing
        with open(report, "a", encoding="utf-8") as f:
            for g in gaps:
                f.write(f"{request.node.nodeid}\t{g}\n")
        return
    assert not gaps, f"succeeded without a complete audit row: {gaps}"
