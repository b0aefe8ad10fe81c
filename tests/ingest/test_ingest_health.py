"""``/api/v1/health`` tells the truth about event storage: the spool backlog, the flusher's lag and
its last error, and ``degraded`` (503) once storage has not advanced for the configured time while
events wait — with a real stalled flusher and a real refusing database, on both engines."""

from __future__ import annotations

import base64
import time

import pytest
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.config import Settings
from medscrm.db import make_engine


@pytest.fixture
def api(tenant, tmp_path):
    with tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=tenant.id, name="app", kind="segment")
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    with TestClient(app) as client:
        client.basic = {"Authorization": "Basic " + base64.b64encode(f"{src.write_key}:".encode()).decode()}
        client.app_ = app
        yield client


def wait_for(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def health(api):
    api.app_.state.ingestor._backlog_at = 0.0  # the backlog is cached for 0.5 s: look again now
    r = api.get("/api/v1/health")
    return r.status_code, r.json()


def test_default_stall_setting():
    assert Settings().ingest_stall_seconds == 30.0
    assert Settings(ingest_stall_seconds=5).ingest_stall_seconds == 5


def test_a_stopped_flusher_degrades_health_and_recovers(api):
    code, body = health(api)
    assert code == 200 and body["status"] == "ok"
    assert body["ingest"]["backlog_bytes"] == 0 and body["ingest"]["lag_seconds"] == 0
    assert body["ingest"]["flusher_running"] and body["ingest"]["stall_after_seconds"] == 30.0
    ingestor = api.app_.state.ingestor
    ingestor._stop.set()  # the flusher thread ends: nothing is stored any more
    ingestor._thread.join(timeout=10)
    api.app_.state.ingest_stall_seconds = 1.0
    assert (
        api.post(
            "/v1/track", json={"userId": "u", "event": "E", "messageId": "h1"}, headers=api.basic
        ).status_code
        == 200
    )
    code, body = health(api)
    assert body["ingest"]["backlog_bytes"] > 0 and not body["ingest"]["flusher_running"]
    code, body = wait_for(lambda: (r := health(api))[0] == 503 and r, timeout=10) or health(api)
    assert code == 503 and body["status"] == "degraded", body
    assert body["ingest"]["lag_seconds"] >= 1.0 and "storage has not advanced" in body["problems"][0]
    ingestor._stop.clear()  # the flusher runs again: health recovers once the backlog is stored
    ingestor.start()
    code, body = wait_for(lambda: (r := health(api))[0] == 200 and r) or health(api)
    assert code == 200 and body["status"] == "ok" and body["ingest"]["backlog_bytes"] == 0, body


def test_a_refusing_database_shows_the_flush_error_and_degrades(api):
    ingestor = api.app_.state.ingestor
    good = ingestor.engine
    # storage points at a database server that refuses connections (nothing listens on port 1)
    ingestor.engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    api.app_.state.ingest_stall_seconds = 1.0
    try:
        r = api.post("/v1/track", json={"userId": "u", "event": "E", "messageId": "h2"}, headers=api.basic)
        assert r.status_code == 200  # accepted: it is in the spool
        code, body = wait_for(lambda: (r := health(api))[0] == 503 and r, timeout=15) or health(api)
        assert code == 503 and body["status"] == "degraded", body
        assert "OperationalError" in body["ingest"]["last_error"]
        assert body["ingest"]["last_error_seconds_ago"] is not None
        assert "last error: OperationalError" in body["problems"][0]
    finally:
        ingestor.engine.dispose()
        ingestor.engine = good
    code, body = wait_for(lambda: (r := health(api))[0] == 200 and r, timeout=30) or health(api)
    assert code == 200 and body["ingest"]["backlog_bytes"] == 0, body
