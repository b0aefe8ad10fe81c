"""Operability of the server, in process: request ids (header, log lines), latency by route template,
``/metrics`` and who may read it, the gauges read from the database, the in-process counters, the
log/access-log settings and opt-in OpenTelemetry tracing. Real server processes: tests/test_ops_server.py."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from medscrm.accounts import service as accounts
from medscrm.api import observe
from medscrm.app import create_app
from medscrm.config import ConfigError, Settings, get_settings
from medscrm.db.schema import journey_enrollments, journeys, sends
from medscrm.logs import (
    REQUEST_ID_PATTERN,
    JsonFormatter,
    RequestIdFilter,
    accepted_request_id,
    logging_config,
)
from tests_support import cli_env


@pytest.fixture
def api(tenant, tmp_path):
    with tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=tenant.id, name="app", kind="segment")
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.basic = {"Authorization": "Basic " + base64.b64encode(f"{src.write_key}:".encode()).decode()}
        client.app_ = app
        yield client


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The value of series ``name{labels}`` in a Prometheus exposition text (None: absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        got_name, _, rest = series.partition("{")
        if got_name != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if got == labels:
            return float(value)
    return None


def scrape(api) -> str:
    return observe.render(api.app_.state).decode()


# --- request ids ---------------------------------------------------------------------------------
@given(st.text(max_size=200))
def test_request_id_parser_accepts_only_well_formed_ids(value):
    got = accepted_request_id(value)
    if REQUEST_ID_PATTERN.fullmatch(value):
        assert got == value
    else:
        assert got is None  # never half of a header, never a newline that forges a log line
    assert accepted_request_id(value.encode("utf-8")) == (got if value.isascii() else None)


@given(st.from_regex(REQUEST_ID_PATTERN, fullmatch=True))
def test_request_ids_from_proxies_are_kept(value):
    assert accepted_request_id(value) == value


def test_request_id_is_kept_or_made_and_returned_on_both_lanes(api):
    r = api.post(
        "/v1/track", json={"userId": "u1", "event": "E"}, headers={**api.basic, "X-Request-ID": "lb-42.a"}
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "lb-42.a"
    r = api.get("/api/v1/health", headers={"X-Request-ID": "bad id\nforged"})
    rid = r.headers["x-request-id"]
    assert rid != "bad id\nforged" and re.fullmatch(r"[0-9a-f]{16,}", rid)
    r2 = api.get("/api/v1/health")
    assert r2.headers["x-request-id"] != rid  # one id per request


def test_every_log_line_of_a_request_carries_its_id_even_an_error_500(api):
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    app = api.app_

    @app.get("/boom-for-test")
    def boom():
        logging.getLogger("medscrm.test").warning("about to fail")
        raise RuntimeError("bug")

    app.router.routes.insert(0, app.router.routes.pop())  # before the console's catch-all routes
    logging.getLogger().addHandler(handler)
    try:
        r = api.get("/boom-for-test", headers={"X-Request-ID": "req-500"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-500"
    records = [json.loads(x) for x in lines]
    mine = [x for x in records if x["logger"] in ("medscrm.test", "medscrm.app")]
    assert {x["message"].split(" ")[0] for x in mine} == {"about", "unexpected"}
    assert all(x["request_id"] == "req-500" for x in mine)
    assert "Traceback" in next(x for x in mine if x["logger"] == "medscrm.app")["exc_info"]
    text = scrape(api)
    assert sample_value(
        text,
        "medscrm_http_request_duration_seconds_count",
        route="/boom-for-test",
        method="GET",
        status="5xx",
    )


def test_log_lines_outside_a_request_have_no_id():
    rec = logging.LogRecord("medscrm.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    RequestIdFilter().filter(rec)
    out = json.loads(JsonFormatter().format(rec))
    assert out["message"] == "hello world" and out["request_id"] is None and out["level"] == "INFO"


# --- settings ------------------------------------------------------------------------------------
def test_log_and_access_log_settings():
    assert Settings().log_style == "text"
    prod = Settings(env="production", secret_key="k" + uuid.uuid4().hex + uuid.uuid4().hex)
    assert prod.log_style == "json"
    assert Settings(log_format="TEXT", env="production", secret_key=prod.secret_key).log_style == "text"
    assert Settings(access_log="ON").access_log == "on" and Settings().access_log == "off"
    assert logging_config("json")["formatters"]["medscrm"] == {"()": "medscrm.logs.JsonFormatter"}


@pytest.mark.parametrize(
    ("var", "value"), [("MEDSCRM_LOG_FORMAT", "xml"), ("MEDSCRM_ACCESS_LOG", "sometimes")]
)
def test_bad_log_settings_are_refused_naming_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=f"{var}: '{value}' is not one of"):
            get_settings()
    finally:
        monkeypatch.delenv(var)
        get_settings.cache_clear()


# --- /metrics: who may read it -----------------------------------------------------------------
def test_metrics_refused_to_a_remote_caller_without_token(api):
    r = api.get("/metrics")  # the test client's address is "testclient": not loopback
    assert r.status_code == 403 and r.json()["field"] == "client"
    assert "MEDSCRM_METRICS_TOKEN" in r.json()["reason"]


def test_metrics_token_is_required_from_everyone_once_set(api, monkeypatch):
    monkeypatch.setenv("MEDSCRM_METRICS_TOKEN", "s3cret-scrape-token")
    get_settings.cache_clear()
    try:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = api.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
        assert r.status_code == 200 and "medscrm_http_request_duration_seconds_bucket" in r.text
        assert r.headers["content-type"].startswith("text/plain")
    finally:
        monkeypatch.delenv("MEDSCRM_METRICS_TOKEN")
        get_settings.cache_clear()


# --- what the metrics say ------------------------------------------------------------------------
def test_requests_are_counted_by_route_template_not_by_path(api):
    def count(route: str, method: str, status: str) -> float:
        return (
            sample_value(
                scrape(api),
                "medscrm_http_request_duration_seconds_count",
                route=route,
                method=method,
                status=status,
            )
            or 0.0
        )

    before_person = count("/api/v1/persons/{person_id}", "GET", "4xx")
    before_track = count("/v1/track", "POST", "2xx")
    before_unmatched = count("unmatched", "GET", "4xx")
    pid = "P_" + uuid.uuid4().hex
    for _ in range(3):
        api.get(f"/api/v1/persons/{pid}")  # no token: 401, still the template's series
    for i in range(5):
        assert (
            api.post("/v1/track", json={"userId": f"u{i}", "event": "E"}, headers=api.basic).status_code
            == 200
        )
    api.get(f"/no/such/{pid}")
    text = scrape(api)
    assert count("/api/v1/persons/{person_id}", "GET", "4xx") == before_person + 3
    assert count("/v1/track", "POST", "2xx") == before_track + 5
    assert pid not in text  # the raw path never becomes a label
    assert count("unmatched", "GET", "4xx") >= before_unmatched  # console catch-all or unmatched


def test_backlog_lag_and_events_stored_move(api):
    ingestor = api.app_.state.ingestor
    text = scrape(api)
    stored0 = sample_value(text, "medscrm_events_stored_total") or 0.0
    ingestor._stop.set()  # the flusher stops: accepted events wait in the spool
    ingestor._thread.join(timeout=10)
    for i in range(4):
        assert (
            api.post("/v1/track", json={"userId": f"b{i}", "event": "E"}, headers=api.basic).status_code
            == 200
        )
    ingestor._backlog_at = 0.0  # the backlog is cached for 0.5 s: look again now
    time.sleep(0.2)
    text = scrape(api)
    assert sample_value(text, "medscrm_spool_backlog_bytes") > 0
    assert sample_value(text, "medscrm_flusher_lag_seconds") > 0
    assert sample_value(text, "medscrm_events_stored_total") == stored0
    assert ingestor.flush_pending() == 4
    ingestor._backlog_at = 0.0
    text = scrape(api)
    assert sample_value(text, "medscrm_spool_backlog_bytes") == 0
    assert sample_value(text, "medscrm_flusher_lag_seconds") == 0
    assert sample_value(text, "medscrm_events_stored_total") == stored0 + 4


def test_door_quarantine_is_counted(api):
    before = sample_value(scrape(api), "medscrm_events_quarantined_total", stage="door") or 0.0
    # a number no database stores: refused and kept in the quarantine with the reason
    r = api.post(
        "/v1/track",
        content=b'{"userId":"q","event":"E","properties":{"n":1e999}}',
        headers={**api.basic, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    after = sample_value(scrape(api), "medscrm_events_quarantined_total", stage="door") or 0.0
    assert after == before + 1


def test_database_gauges_count_outbox_and_due_journeys_over_all_tenants(tenant):
    engine = tenant.engine
    gauges = observe.DatabaseGauges(engine, ttl=0)

    def read() -> dict:
        fams = {f.name: f for f in gauges.collect()}
        out = {"up": fams["medscrm_metrics_database_up"].samples[0].value}
        out.update({s.labels["status"]: s.value for s in fams["medscrm_outbox_sends"].samples})
        out["due"] = fams["medscrm_journeys_due"].samples[0].value
        out["oldest"] = fams["medscrm_outbox_oldest_due_seconds"].samples[0].value
        return out

    before = read()
    assert before["up"] == 1
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(minutes=10)
    other = f"tn_{uuid.uuid4().hex[:12]}"  # a second tenant: its rows count into the same series

    def send(status: str, tid: str, not_before=None) -> dict:
        return {
            "id": "sd_" + uuid.uuid4().hex,
            "tenant_id": tid,
            "person_id": "p1",
            "channel": "email",
            "idempotency_key": uuid.uuid4().hex,
            "purpose": "marketing",
            "origin": "test",
            "status": status,
            "not_before": not_before,
            "created_at": old,
            "updated_at": old,
        }

    jid = "jr_" + uuid.uuid4().hex
    with engine.begin() as c:
        c.execute(
            sa.insert(sends),
            [
                send("queued", tenant.id),
                send("queued", other),
                send("sending", tenant.id),
                send("sent", tenant.id),
                send("queued", tenant.id, not_before=now + dt.timedelta(days=1)),
            ],
        )
        c.execute(
            sa.insert(journeys).values(
                id=jid,
                tenant_id=tenant.id,
                key="k" + uuid.uuid4().hex[:8],
                name="j",
                status="running",
                created_by="t",
                created_at=now,
                updated_at=now,
            )
        )
        c.execute(
            sa.insert(journey_enrollments),
            [
                {
                    "id": "en_" + uuid.uuid4().hex,
                    "tenant_id": tenant.id,
                    "journey_id": jid,
                    "version": 1,
                    "person_id": f"p{i}",
                    "status": st_,
                    "next_run_at": at,
                    "entered_at": now,
                    "updated_at": now,
                }
                for i, (st_, at) in enumerate(
                    [
                        ("active", now - dt.timedelta(seconds=5)),
                        ("active", now - dt.timedelta(hours=1)),
                        ("active", now + dt.timedelta(hours=1)),
                        ("completed", now - dt.timedelta(hours=1)),
                    ]
                )
            ],
        )
    after = read()
    assert after["queued"] == before["queued"] + 3 and after["sending"] == before["sending"] + 1
    assert after["due"] == before["due"] + 2
    assert after["oldest"] >= 590
    cached = observe.DatabaseGauges(engine, ttl=60)
    first = [f.samples for f in cached.collect()]
    with engine.begin() as c:
        c.execute(sa.insert(sends), [send("queued", tenant.id)])
    assert [f.samples for f in cached.collect()] == first  # within the cache's life: no new query


def test_identity_run_durations_are_observed():
    from medscrm import metrics

    @metrics.timed_identity_run("full")
    def run(fail: bool):
        time.sleep(0.01)
        if fail:
            raise ValueError("x")

    child = metrics.IDENTITY_RUN.labels("full")
    before = child._sum.get()
    run(False)
    with pytest.raises(ValueError):
        run(True)
    assert child._sum.get() - before >= 0.02
    from medscrm.persons.incremental import run_incremental
    from medscrm.persons.run import run_identity

    assert run_identity.__wrapped__ and run_incremental.__wrapped__  # the real runs are timed


# --- OpenTelemetry ---------------------------------------------------------------------------------
def test_tracing_exports_a_span_per_request_fast_lane_included(tenant, tmp_path):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    with tenant.engine.begin() as c:
        src = accounts.create_source(conn=c, tenant_id=tenant.id, name="app", kind="segment")
    exporter = InMemorySpanExporter()
    app = create_app(tenant.engine, spool_dir=tmp_path / "spool", span_exporter=exporter)
    basic = {"Authorization": "Basic " + base64.b64encode(f"{src.write_key}:".encode()).decode()}
    with TestClient(app) as client:
        assert client.get("/api/v1/persons/P_x").status_code == 401
        assert client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic).status_code == 200
    names = [s.name for s in exporter.get_finished_spans()]
    assert "GET /api/v1/persons/{person_id}" in names
    assert any(n.startswith("POST /v1/track") for n in names)


def test_otel_without_its_packages_is_a_clear_error(tmp_path):
    # the SDK made unimportable in a real `medscrm serve` process: it stops before serving
    code = (
        "import sys; sys.modules['opentelemetry.sdk'] = None; "
        "sys.argv = ['medscrm', 'serve', '--port', '0']; from medscrm.cli import main; main()"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=cli_env(MEDSCRM_OTEL="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    out = " ".join((p.stdout + p.stderr).split())
    assert "MEDSCRM_OTEL=1" in out and "`otel` extra" in out and "uv sync --extra otel" in out
