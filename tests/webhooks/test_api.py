"""``/api/v1/webhooks`` through the real app: create (secret shown once), refuse bad URLs with the
field and the reason, ping a real receiver (signed), list deliveries, replay, delete; the CLI."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.webhooks import dispatch
from webhooks.receiver import Receiver


def _client(tenant, tmp_path, role="admin"):
    with tenant.engine.begin() as conn:
        token = accounts.create_token(conn=conn, tenant_id=tenant.id, role=role).token
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", fsync=False, refresher=False)
    return TestClient(app), {"Authorization": f"Bearer {token}"}


def test_subscribe_ping_list_replay_delete(tenant, tmp_path):
    client, h = _client(tenant, tmp_path)
    with client as c, Receiver([500, 200]) as rx:
        r = c.post("/api/v1/webhooks", json={"url": rx.url, "events": ["consent.changed"]}, headers=h)
        assert r.status_code == 201, r.text
        sub = r.json()
        secret = sub["secret"]
        assert secret.startswith("whsec_")
        got = c.get(f"/api/v1/webhooks/{sub['id']}", headers=h).json()
        assert got["secret"] is None and got["url"] == rx.url
        assert [s["id"] for s in c.get("/api/v1/webhooks", headers=h).json()["subscriptions"]] == [sub["id"]]
        # the first ping meets a 500: the delivery says so and waits for a retry
        d = c.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=h).json()
        assert d["status"] == "pending" and d["last_status_code"] == 500 and d["event_type"] == "ping"
        assert dispatch.verify(
            secret, rx.requests[0]["headers"]["X-Medscrm-Signature"], rx.requests[0]["body"]
        )
        r = c.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{d['id']}/replay", headers=h)
        assert r.json() == {"queued": 1}
        dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id)
        ds = c.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=h).json()["deliveries"]
        assert [x["status"] for x in ds] == ["delivered"]
        assert c.post(f"/api/v1/webhooks/{sub['id']}/replay", headers=h).json() == {"queued": 0}
        # rotation gives a new secret once; later pings are signed with it
        new = c.patch(f"/api/v1/webhooks/{sub['id']}", json={"rotate_secret": True}, headers=h).json()[
            "secret"
        ]
        assert new and new != secret
        assert c.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=h).json()["status"] == "delivered"
        assert dispatch.verify(
            new, rx.requests[-1]["headers"]["X-Medscrm-Signature"], rx.requests[-1]["body"]
        )
        assert c.delete(f"/api/v1/webhooks/{sub['id']}", headers=h).status_code == 204
        assert c.get(f"/api/v1/webhooks/{sub['id']}", headers=h).status_code == 404


def test_bad_input_answers_422_naming_the_field(tenant, tmp_path, monkeypatch):
    from medscrm.config import get_settings

    client, h = _client(tenant, tmp_path)
    with client as c:
        r = c.post("/api/v1/webhooks", json={"url": "ftp://example.com/x"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url"
        r = c.post("/api/v1/webhooks", json={"url": "https://93.184.215.14/", "events": ["nope"]}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "events"
        monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "0")
        get_settings.cache_clear()
        r = c.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:8080/"}, headers=h)
        assert r.status_code == 422 and "loopback" in r.json()["errors"][0]["reason"]
        assert c.get("/api/v1/webhooks/whs_nope", headers=h).status_code == 404


def test_only_admins_manage_webhooks(tenant, tmp_path):
    client, h = _client(tenant, tmp_path, role="marketer")
    with client as c:
        assert c.get("/api/v1/webhooks", headers=h).status_code == 403


def test_the_openapi_document_declares_the_routes(tenant, tmp_path):
    client, _ = _client(tenant, tmp_path)
    doc = client.get("/openapi.json").json()
    ops = doc["paths"]["/api/v1/webhooks/{subscription_id}/ping"]["post"]
    assert {"200", "401", "403", "404", "422"} <= set(ops["responses"])
    assert "Subscription" in doc["components"]["schemas"]


def test_cli_create_list_deliveries_replay(tenant, monkeypatch):
    from medscrm.cli import app
    from medscrm.config import get_settings

    monkeypatch.setenv("MEDSCRM_DATABASE_URL", tenant.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    run = CliRunner()
    with Receiver([500]) as rx:
        r = run.invoke(app, ["webhooks", "create", rx.url, "-e", "ping", "--tenant", tenant.slug])
        assert r.exit_code == 2 and "events" in r.output  # ping is not subscribable
        r = run.invoke(app, ["webhooks", "create", rx.url, "-e", "consent.*", "--tenant", tenant.slug])
        assert r.exit_code == 0, r.output
        assert "whsec_" in r.output
        r = run.invoke(app, ["webhooks", "list", "--tenant", tenant.slug])
        assert r.exit_code == 0 and "consent.*" in r.output
        from medscrm.webhooks import service

        with tenant.engine.connect() as conn:
            (sub,) = service.list_subscriptions(conn, tenant_id=tenant.id)
        with tenant.engine.begin() as conn:
            did = service.queue_ping(conn, tenant_id=tenant.id, subscription_id=sub["id"])
        dispatch.dispatch_once(tenant.engine, tenant_id=tenant.id, max_attempts=1)
        r = run.invoke(app, ["webhooks", "deliveries", sub["id"], "--json", "--tenant", tenant.slug])
        assert r.exit_code == 0 and json.loads(r.output)[0]["status"] == "dead"
        r = run.invoke(app, ["webhooks", "replay", sub["id"], "--tenant", tenant.slug])
        assert r.exit_code == 0 and "queued 1 delivery" in r.output
        r = run.invoke(app, ["webhooks", "replay", sub["id"], "--delivery", did, "--tenant", tenant.slug])
        assert r.exit_code == 0
