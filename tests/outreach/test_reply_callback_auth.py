"""SMS reply callbacks withdraw consents, and providers do not sign them: the URL must carry the
tenant's callback token. A caller without it (the old URL, a wrong token, another tenant's token, an
unknown tenant) gets 403, changes nothing and leaves an audit row; the right URL comes from the real
``medscrm channels callback-urls``; tokens survive a key rotation while the old key is listed. Both
engines."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.accounts.secrets import callback_token, check_callback_token
from medscrm.app import create_app
from medscrm.config import get_settings
from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import audit_log
from medscrm.outreach import consent
from medscrm.outreach.settings import SMS_REPLIES, reply_callback_urls
from outreach.helpers import grant, make_person
from tests_support import cli_env

TD = [{"phone_number": "13800138000", "content": "TD", "sequence_id": 1}]
TD_TENCENT = [{"mobile": "13800138000", "nationcode": "86", "text": "退订", "time": 1763949600}]


@pytest.fixture
def world(tenant, tmp_path):
    with tenant.engine.begin() as conn:
        pid = make_person(conn, tenant.id, phone="+8613800138000")
        grant(conn, tenant.id, pid, channel="sms")
        other = accounts.ensure_tenant(conn=conn, slug=tenant.slug + "-b")
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
    return tenant, pid, other["id"], app


def _consented(tenant, pid) -> bool:
    with tenant.engine.connect() as conn:
        return consent.has_consent(
            conn, tenant_id=tenant.id, person_id=pid, channel="sms", purpose="marketing"
        )


def _refusals(tenant) -> list[dict]:
    with tenant.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(audit_log.c.actor, audit_log.c.object_id, audit_log.c.detail).where(
                    audit_log.c.tenant_id == tenant.id, audit_log.c.action == "callback.refused"
                )
            ).mappings()
        ]


def test_reply_callbacks_without_the_tenants_token_are_refused_and_audited(world):
    tenant, pid, other_tid, app = world
    tid = tenant.id
    good = callback_token(tid, SMS_REPLIES)
    forged = [
        ("aliyun", f"/callbacks/sms/aliyun/replies/{tid}", TD),  # the old URL: no token at all
        ("tencent", f"/callbacks/sms/tencent/replies/{tid}", TD_TENCENT),
        ("aliyun", f"/callbacks/sms/aliyun/replies/{tid}/{good[:-1]}x", TD),  # wrong token
        ("aliyun", f"/callbacks/sms/aliyun/replies/{tid}/{callback_token(other_tid, SMS_REPLIES)}", TD),
        ("tencent", f"/callbacks/sms/tencent/replies/{tid}/{'A' * len(good)}", TD_TENCENT),
    ]
    with TestClient(app, client=("203.0.113.9", 4000)) as c:
        for _, url, body in forged:
            r = c.post(url, json=body)
            assert r.status_code == 403 and r.json()["errors"][0]["field"] == "token", url
        # an unknown tenant is refused like a wrong token (nothing to audit it in)
        r = c.post(f"/callbacks/sms/aliyun/replies/tn_nope/{good}", json=TD)
        assert r.status_code == 403
        assert _consented(tenant, pid)  # nothing was withdrawn
        refusals = _refusals(tenant)
        assert len(refusals) == len(forged)
        assert {r["actor"] for r in refusals} == {"callback:aliyun", "callback:tencent"}
        assert all(r["detail"]["client"] == "203.0.113.9" for r in refusals)
        assert sorted(r["detail"]["reason"] for r in refusals) == ["missing token"] * 2 + ["wrong token"] * 3
        # the tenant's own URL works
        r = c.post(reply_callback_urls(tid, "http://testserver")["aliyun"], json=TD)
        assert r.json() == {"code": 0, "msg": "成功"}
    assert not _consented(tenant, pid)


def test_tencent_replies_through_the_tokened_url(world):
    tenant, pid, _, app = world
    with TestClient(app) as c:
        r = c.post(reply_callback_urls(tenant.id, "http://testserver")["tencent"], json=TD_TENCENT)
        assert r.json() == {"result": 0, "errmsg": "OK"}
    assert not _consented(tenant, pid)


def test_the_cli_prints_the_urls_with_the_token(tmp_path):
    url = f"duckdb:///{tmp_path / 'cb.duckdb'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        accounts.create_tenant(conn=conn, slug="acme")
    engine.dispose()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "medscrm",
            "channels",
            "callback-urls",
            "--base-url",
            "https://scrm.example.com/",
        ],
        cwd=tmp_path,
        env=cli_env(MEDSCRM_DATABASE_URL=url, MEDSCRM_TENANT="acme"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    lines = dict(line.split(" ", 1) for line in p.stdout.strip().splitlines())
    assert set(lines) == {"aliyun", "tencent"}
    prefix = "https://scrm.example.com/callbacks/sms/aliyun/replies/"
    assert lines["aliyun"].startswith(prefix)
    tid, token = lines["aliyun"].removeprefix(prefix).split("/")
    assert tid.startswith("tn_") and len(token) >= 40
    assert lines["tencent"].endswith(f"/callbacks/sms/tencent/replies/{tid}/{token}")


def test_tokens_follow_the_secret_key_and_old_keys_still_open_them(monkeypatch):
    key_a = "A-key-7vLr2Xw_HcT5nZb8JmD3sGf6YpA1uR4k9Qe"
    key_b = "B-key-Qe9k4Ru1ApY6fGs3DmJ8bZn5THcwX2rLv7"
    try:
        monkeypatch.setenv("MEDSCRM_SECRET_KEY", key_a)
        get_settings.cache_clear()
        old = callback_token("tn_1", SMS_REPLIES)
        assert old != callback_token("tn_2", SMS_REPLIES) and old != callback_token("tn_1", "other")
        monkeypatch.setenv("MEDSCRM_SECRET_KEY", key_b)
        monkeypatch.setenv("MEDSCRM_OLD_SECRET_KEYS", key_a)
        get_settings.cache_clear()
        assert callback_token("tn_1", SMS_REPLIES) != old
        assert check_callback_token("tn_1", SMS_REPLIES, old)  # during the rotation
        monkeypatch.delenv("MEDSCRM_OLD_SECRET_KEYS")
        get_settings.cache_clear()
        assert not check_callback_token("tn_1", SMS_REPLIES, old)  # after it
        assert not check_callback_token("tn_1", SMS_REPLIES, "")
        assert not check_callback_token("tn_1", SMS_REPLIES, None)
    finally:
        get_settings.cache_clear()
