"""Single sign-on settings through the API (admin only; the secret is write-only) and the CLI
(``medscrm sso configure|show|disable``); both audited."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.db.schema import audit_log


def _audit(tenant, action: str) -> list[dict]:
    with tenant.engine.connect() as conn:
        q = sa.select(audit_log).where(audit_log.c.tenant_id == tenant.id, audit_log.c.action == action)
        return [dict(r) for r in conn.execute(q.order_by(audit_log.c.occurred_at)).mappings()]


def test_api_sets_reads_and_turns_off_sso(tenant, tmp_path):
    with tenant.engine.begin() as conn:
        admin = accounts.create_token(conn=conn, tenant_id=tenant.id, role="admin").token
        marketer = accounts.create_token(conn=conn, tenant_id=tenant.id, role="marketer").token
    a, m = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {marketer}"}
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False)) as api:
        assert api.get("/api/v1/sso", headers=a).status_code == 404
        body = {
            "issuer": "https://idp.example.com/",
            "client_id": "medscrm",
            "client_secret": "api-secret-123",
            "role_map": {"mkt": "marketer", "ops": "admin"},
        }
        assert api.put("/api/v1/sso", json=body, headers=m).status_code == 403
        r = api.put("/api/v1/sso", json=body, headers=a)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["issuer"] == "https://idp.example.com" and out["client_secret_set"] is True
        assert "client_secret" not in out and "api-secret-123" not in r.text
        assert out["enabled"] and out["jit"] and out["local_passwords"] and out["scopes"][0] == "openid"
        r = api.put("/api/v1/sso", json={"role_map": {"mkt": "superuser"}}, headers=a)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "role_map" and "superuser" in r.json()["errors"][0]["reason"]
        r = api.put("/api/v1/sso", json={"local_passwords": False}, headers=a)
        assert r.json()["local_passwords"] is False and r.json()["client_secret_set"] is True
        assert api.get("/api/v1/sso", headers=m).status_code == 403
        assert api.delete("/api/v1/sso", headers=a).status_code == 204
        assert api.get("/api/v1/sso", headers=a).json()["enabled"] is False
    rows = _audit(tenant, "sso.configure")
    assert (
        len(rows) == 2
        and rows[0]["actor"].startswith("token:")
        and rows[0]["detail"]["client_secret"] == "set"
    )
    assert "api-secret-123" not in repr(rows)
    assert len(_audit(tenant, "sso.disable")) == 1


def test_cli_configures_shows_and_disables(tenant, monkeypatch):
    from medscrm.cli import app
    from medscrm.config import get_settings

    monkeypatch.setenv("MEDSCRM_DATABASE_URL", tenant.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    run = CliRunner()
    try:
        r = run.invoke(
            app,
            [
                "sso",
                "configure",
                "--tenant",
                tenant.slug,
                "--issuer",
                "https://login.pharma.example",
                "--client-id",
                "medscrm",
                "--client-secret-stdin",
                "--role-map",
                "mkt=marketer, dpo=compliance",
                "--display-name",
                "Pharma AD",
                "--no-local-passwords",
            ],  # fmt: skip
            input="cli-secret-456\n",
        )
        assert r.exit_code == 0, r.output
        assert "client_secret: set (never shown)" in r.output and "cli-secret-456" not in r.output
        assert "local_passwords: admins only" in r.output
        assert "mkt=marketer" in r.output and "dpo=compliance" in r.output
        r = run.invoke(app, ["sso", "configure", "--tenant", tenant.slug, "--role-map", "mkt=king"])
        assert r.exit_code == 2 and "role_map: 'mkt' maps to unknown role 'king'" in r.output
        r = run.invoke(app, ["sso", "show", "--tenant", tenant.slug])
        assert r.exit_code == 0 and "single sign-on: on" in r.output and "cli-secret" not in r.output
        r = run.invoke(app, ["sso", "disable", "--tenant", tenant.slug, "--actor", "ops:wang"])
        assert r.exit_code == 0 and "single sign-on: off" in r.output
        assert "single sign-on: off" in run.invoke(app, ["sso", "show", "--tenant", tenant.slug]).output
    finally:
        get_settings.cache_clear()
    assert _audit(tenant, "sso.disable")[0]["actor"] == "ops:wang"
