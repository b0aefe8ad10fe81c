"""Sealed credentials under key rotation, on both engines: sealed with key A, re-sealed by the real
``medscrm secrets rotate`` with B current and A old, then read with B alone; the development key
seals nothing in production."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from medscrm.accounts import secrets as sealing
from medscrm.accounts import service as accounts
from medscrm.common import MedscrmError
from medscrm.config import _DEV_SECRET, get_settings
from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import audit_log, channel_configs, sources
from medscrm.outreach import settings as osettings
from medscrm.webhooks import service as webhooks
from tests_support import cli_env

KEY_A = "A-key-7vLr2Xw_HcT5nZb8JmD3sGf6YpA1uR4k9Qe"
KEY_B = "B-key-Qe9k4Ru1ApY6fGs3DmJ8bZn5THcwX2rLv7"


def _use_keys(monkeypatch, current: str, old: str = "", env: str = "development") -> None:
    monkeypatch.setenv("MEDSCRM_ENV", env)
    monkeypatch.setenv("MEDSCRM_SECRET_KEY", current)
    monkeypatch.setenv("MEDSCRM_OLD_SECRET_KEYS", old)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    """A database of its own (rotation touches every tenant: not the session's shared one)."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'rot.duckdb'}"
        return
    from conftest import PG_ADMIN_URL

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"medscrm_rot_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _rotate_cli(url: str, tmp_path, engine: sa.Engine, **env: str) -> subprocess.CompletedProcess:
    engine.dispose()  # DuckDB: one process holds the file at a time
    return subprocess.run(
        [sys.executable, "-m", "medscrm", "secrets", "rotate"],
        cwd=tmp_path,
        env=cli_env(MEDSCRM_DATABASE_URL=url, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rotate_reseals_every_tenant_so_the_new_key_alone_reads(monkeypatch, db_url, tmp_path):
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    _use_keys(monkeypatch, KEY_A)
    tids = []
    with engine.begin() as conn:
        for slug in ("rot-one", "rot-two"):
            t = accounts.ensure_tenant(conn=conn, slug=slug)
            tids.append(t["id"])
            osettings.configure_channel(
                conn,
                tenant_id=t["id"],
                channel="sms",
                provider="aliyun",
                settings={"access_key_id": "LTAI", "access_key_secret": f"sms-secret-{slug}"},
                actor="test",
            )
            accounts.create_source(conn=conn, tenant_id=t["id"], name="wecom", kind="wecom")
            accounts.configure_source(
                conn=conn, tenant_id=t["id"], name="wecom", changes={"token": f"cb-token-{slug}"}
            )
        monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "1")  # a receiver on this machine
        get_settings.cache_clear()
        hook = webhooks.create(conn, tenant_id=tids[0], url="http://127.0.0.1:9/in", actor="test")
        before = dict(conn.execute(sa.select(channel_configs.c.tenant_id, channel_configs.c.secrets)).all())

    # key B alone cannot read what A sealed (the failure rotation exists for)
    _use_keys(monkeypatch, KEY_B)
    with engine.connect() as conn, pytest.raises(MedscrmError, match="MEDSCRM_OLD_SECRET_KEYS"):
        osettings.channel_config(conn, tenant_id=tids[0], channel="sms")
    # rotation with B also unable to open them: nothing changes, exit 1, each value reported
    bad = _rotate_cli(db_url, tmp_path, engine, MEDSCRM_SECRET_KEY=KEY_B)
    assert bad.returncode == 1 and "resealed=0 unreadable=5" in bad.stdout, bad.stdout + bad.stderr
    assert "unreadable" in bad.stderr

    # B current, A old: every sealed value of every tenant re-sealed with B
    done = _rotate_cli(db_url, tmp_path, engine, MEDSCRM_SECRET_KEY=KEY_B, MEDSCRM_OLD_SECRET_KEYS=KEY_A)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "resealed=5 unreadable=0"
    assert "channel_configs: 2 re-sealed" in done.stdout and "sources: 2 re-sealed" in done.stdout
    assert "webhook_subscriptions: 1 re-sealed" in done.stdout

    _use_keys(monkeypatch, KEY_B)  # B alone, A forgotten
    with engine.connect() as conn:
        after = dict(conn.execute(sa.select(channel_configs.c.tenant_id, channel_configs.c.secrets)).all())
        for tid, slug in zip(tids, ("rot-one", "rot-two"), strict=True):
            assert after[tid] != before[tid]
            cfg = osettings.channel_config(conn, tenant_id=tid, channel="sms")
            assert cfg["access_key_secret"] == f"sms-secret-{slug}"
            src = accounts.get_source(conn=conn, tenant_id=tid, name="wecom")
            assert accounts.source_config(src)["token"] == f"cb-token-{slug}"
        assert KEY_A not in str(conn.execute(sa.select(sources.c.config)).all())
        assert webhooks.signing_secret(conn, tenant_id=tids[0], subscription_id=hook["id"]) == hook["secret"]
        rows = conn.execute(
            sa.select(audit_log.c.tenant_id, audit_log.c.detail).where(audit_log.c.action == "secrets.rotate")
        ).all()
        assert sorted((r[0], r[1]["resealed"]) for r in rows) == sorted(zip(tids, (3, 2), strict=True))
    # and A alone no longer opens them
    _use_keys(monkeypatch, KEY_A)
    with engine.connect() as conn, pytest.raises(MedscrmError):
        osettings.channel_config(conn, tenant_id=tids[1], channel="sms")
    engine.dispose()


def test_old_keys_open_what_they_sealed_and_new_values_use_the_current_key(monkeypatch):
    _use_keys(monkeypatch, KEY_A)
    blob = sealing.seal({"password": "pw"})
    _use_keys(monkeypatch, KEY_B, old=f" ,{KEY_A} ")
    assert sealing.unseal(blob) == {"password": "pw"}
    fresh = sealing.seal({"password": "pw2"})
    _use_keys(monkeypatch, KEY_B)
    assert sealing.unseal(fresh) == {"password": "pw2"}
    with pytest.raises(MedscrmError):
        sealing.unseal(blob)


def test_production_never_seals_with_the_development_key(monkeypatch):
    # the settings refuse it already; the sealing layer refuses it on its own too
    _use_keys(monkeypatch, KEY_A, env="production")
    assert sealing.unseal(sealing.seal({"k": "v"})) == {"k": "v"}
    monkeypatch.setattr(get_settings(), "secret_key", _DEV_SECRET)
    with pytest.raises(MedscrmError, match="may not seal credentials in production"):
        sealing.seal({"k": "v"})
    with pytest.raises(MedscrmError, match="may not seal credentials in production"):
        sealing.unseal("gAAAA")
    assert os.environ["MEDSCRM_ENV"] == "production"
