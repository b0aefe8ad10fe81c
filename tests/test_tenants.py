"""Tenants are created explicitly: a typo in --tenant, MEDSCRM_TENANT or the console's sign-in form is
an error naming the slug and the known tenants, and creates nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db import make_engine
from medscrm.db.schema import tenants
from tests_support import cli_env
from web.conftest import csrf_of

MEDSCRM = [sys.executable, "-m", "medscrm"]


def run(cwd, *args, env=None):
    return subprocess.run(
        [*MEDSCRM, *args], cwd=cwd, env=cli_env(**(env or {})), capture_output=True, text=True, timeout=120
    )


def slugs(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return sorted(r[0] for r in c.execute(sa.select(tenants.c.slug)))
    finally:
        engine.dispose()


def test_a_typo_in_the_tenant_is_an_error_and_creates_nothing(tmp_path):
    url = f"duckdb:///{tmp_path / 'medscrm.duckdb'}"
    env = {"MEDSCRM_DATABASE_URL": url}
    made = run(tmp_path, "tenants", "create", "demo", "--name", "Demo Pharma", env=env)
    assert made.returncode == 0, made.stderr
    assert "demo" in made.stdout
    again = run(tmp_path, "tenants", "create", "demo", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr

    typo = run(tmp_path, "sources", "list", "--tenant", "dmeo", env=env)
    assert typo.returncode == 2
    msg = typo.stderr.strip()
    assert len(msg.splitlines()) == 1, msg  # one line, no traceback
    assert "'dmeo'" in msg and "known tenants: demo" in msg and "tenants create dmeo" in msg
    # the environment variable is checked the same way, in another command group
    typo_env = run(tmp_path, "segments", "list", env={**env, "MEDSCRM_TENANT": "dmeo"})
    assert typo_env.returncode == 2 and "'dmeo'" in typo_env.stderr
    # the workspace has tenants, so the implicit 'default' is not created either
    dflt = run(tmp_path, "tokens", "list", env=env)
    assert dflt.returncode == 2 and "'default'" in dflt.stderr
    assert slugs(url) == ["demo"]

    ok = run(tmp_path, "sources", "list", "--tenant", "demo", env=env)
    assert ok.returncode == 0, ok.stderr
    listed = run(tmp_path, "tenants", "list", "--json", env=env)
    assert '"slug": "demo"' in listed.stdout and '"name": "Demo Pharma"' in listed.stdout
    assert "--tenant" in run(tmp_path, "tenants", "create", "--help", env=env).stdout


def test_an_empty_workspace_starts_with_the_default_tenant_only(tmp_path):
    url = f"duckdb:///{tmp_path / 'medscrm.duckdb'}"
    p = run(tmp_path, "sources", "list", env={"MEDSCRM_DATABASE_URL": url})
    assert p.returncode == 0, p.stderr
    assert slugs(url) == ["default"]


def test_require_tenant_names_the_known_ones(engine, tenant):
    with engine.connect() as conn:
        assert accounts.require_tenant(conn=conn, slug=tenant.slug)["id"] == tenant.id
        with pytest.raises(accounts.UnknownTenant) as e:
            accounts.require_tenant(conn=conn, slug=tenant.slug + "-typo")
        assert tenant.slug in str(e.value) and f"{tenant.slug}-typo" in str(e.value)
        assert tenant.slug in e.value.known
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(tenants).where(tenants.c.slug == tenant.slug + "-typo")
            ).scalar()
            == 0
        )


def test_the_console_names_an_unknown_tenant(engine, tenant):
    with TestClient(create_app(engine)) as c:
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"csrf_token": token, "tenant": "dmeo", "username": "marketer", "password": "x"},
            follow_redirects=False,
        )
        assert r.status_code == 401
        assert "dmeo" in r.text and tenant.slug in r.text


def test_the_sign_in_form_starts_with_the_only_tenant(tmp_path):
    engine = make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        from medscrm.db import upgrade_to_head

        upgrade_to_head(engine)
        with engine.begin() as conn:
            accounts.create_tenant(conn=conn, slug="demo")
        with TestClient(create_app(engine)) as c:
            assert 'value="demo"' in c.get("/login").text
    finally:
        engine.dispose()
