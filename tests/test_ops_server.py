"""Operability of real `medscrm serve` processes: /metrics after real requests and events, JSON log
lines whose request id is the response's X-Request-ID, and multiprocess metrics summed over
``serve --workers 2`` on PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests_support import cli_env, last_line

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "ingest"))
from test_server_process import free_port  # noqa: E402

from test_operability import sample_value  # noqa: E402
from test_serve_workers import pg_database  # noqa: E402,F401  (fixture)


def cli(cwd: Path, env: dict, *args: str) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "medscrm", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    return last_line(p.stdout)


def start(cwd: Path, env: dict, *extra: str, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "medscrm", "serve", "--port", str(port), *extra],
        cwd=cwd,
        env=env,
        stdout=out,
        stderr=out,
    )
    deadline = time.time() + 90
    while True:
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.time() < deadline, "server did not start"
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def wait_metric(url: str, name: str, at_least: float, timeout: float = 30, **labels: str) -> str:
    deadline = time.time() + timeout
    while True:
        text = httpx.get(url + "/metrics", timeout=10).text
        value = sample_value(text, name, **labels)
        if (value or 0) >= at_least or time.time() > deadline:
            return text
        time.sleep(0.3)


def test_real_server_metrics_and_json_logs(tmp_path):
    env = cli_env(MEDSCRM_LOG_FORMAT="json", MEDSCRM_ACCESS_LOG="on", MEDSCRM_SEGMENT_REFRESHER="0")
    key = cli(tmp_path, env, "sources", "create", "--name", "site")
    token = cli(tmp_path, env, "tokens", "create", "--role", "admin")
    log = tmp_path / "server.log"
    proc, url = start(tmp_path, env, log=log)
    try:
        for i in range(7):
            r = httpx.post(
                url + "/v1/track", json={"userId": f"u{i}", "event": "E"}, auth=(key, ""), timeout=10
            )
            assert r.status_code == 200
        pid = "P_" + uuid.uuid4().hex
        r = httpx.get(
            url + f"/api/v1/persons/{pid}",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "ops-test-1"},
            timeout=10,
        )
        assert r.status_code == 404 and r.headers["x-request-id"] == "ops-test-1"
        generated = httpx.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        gid = generated.headers["x-request-id"]
        text = wait_metric(url, "medscrm_events_stored_total", 7)
        assert sample_value(text, "medscrm_events_stored_total") == 7
        assert (
            sample_value(
                text,
                "medscrm_http_request_duration_seconds_count",
                route="/v1/track",
                method="POST",
                status="2xx",
            )
            == 7
        )
        assert (
            sample_value(
                text,
                "medscrm_http_request_duration_seconds_count",
                route="/api/v1/persons/{person_id}",
                method="GET",
                status="4xx",
            )
            == 1
        )
        assert pid not in text  # no raw path, no id, as a label
        for series in ("medscrm_spool_backlog_bytes", "medscrm_flusher_lag_seconds", "medscrm_journeys_due"):
            assert sample_value(text, series) is not None, series
        assert sample_value(text, "medscrm_outbox_sends", status="queued") == 0
    finally:
        stop(proc)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert len(lines) == len(log.read_text().splitlines())  # every line is one JSON object
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    mine = [x for x in access if x["request_id"] == "ops-test-1"]
    assert len(mine) == 1 and mine[0]["path"] == f"/api/v1/persons/{pid}" and mine[0]["status"] == 404
    assert [x["path"] for x in access if x["request_id"] == gid] == ["/api/v1/me"]
    tracks = [x for x in access if x["path"] == "/v1/track"]
    assert len(tracks) == 7 and len({x["request_id"] for x in tracks}) == 7
    assert any(x["logger"] == "uvicorn.error" and x["request_id"] is None for x in lines)  # start-up


def own_address() -> str | None:
    """This host's address on its network (not loopback), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: the kernel picks the outgoing address
        except OSError:
            return None
        addr = s.getsockname()[0]
    return None if addr.startswith("127.") else addr


def test_metrics_refused_to_a_non_loopback_caller(tmp_path):
    addr = own_address()
    if addr is None:
        pytest.skip("this host has no non-loopback address to call from")
    env = cli_env(MEDSCRM_SEGMENT_REFRESHER="0")
    proc, url = start(tmp_path, env, "--host", "0.0.0.0")
    try:
        assert httpx.get(url + "/metrics", timeout=10).status_code == 200  # loopback
        r = httpx.get(url.replace("127.0.0.1", addr) + "/metrics", timeout=10)
        assert r.status_code == 403 and r.json()["field"] == "client"
        health = httpx.get(url.replace("127.0.0.1", addr) + "/api/v1/health", timeout=10)
        assert health.status_code == 200  # the address itself works: only /metrics is refused
    finally:
        stop(proc)


def test_metrics_token_guards_a_real_server(tmp_path):
    env = cli_env(MEDSCRM_METRICS_TOKEN="tok-" + uuid.uuid4().hex, MEDSCRM_SEGMENT_REFRESHER="0")
    proc, url = start(tmp_path, env)
    try:
        assert httpx.get(url + "/metrics", timeout=10).status_code == 401  # loopback needs it too
        r = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {env['MEDSCRM_METRICS_TOKEN']}"})
        assert r.status_code == 200 and "medscrm_events_stored_total" in r.text
    finally:
        stop(proc)


@pytest.mark.postgres
def test_two_workers_sum_their_counters(pg_database, tmp_path):  # noqa: F811
    spool = tmp_path / "spool"
    env = cli_env(MEDSCRM_DATABASE_URL=pg_database, MEDSCRM_SPOOL_DIR=str(spool))
    key = cli(tmp_path, env, "sources", "create", "--name", "site")
    # what an earlier run left: summed into this run's figures unless the directory is emptied at start
    (spool / "metrics").mkdir(parents=True)
    (spool / "metrics" / "counter_999999.db").write_bytes(b"left by an earlier run")
    proc, url = start(tmp_path, env, "--workers", "2")
    try:
        for b in range(30):  # a new connection per request: the kernel spreads them over both workers
            body = {
                "batch": [
                    {"type": "track", "userId": "u1", "event": "E", "messageId": f"m{b}-{i}"}
                    for i in range(10)
                ]
            }
            assert httpx.post(url + "/v1/batch", json=body, auth=(key, ""), timeout=10).status_code == 200
        text = wait_metric(url, "medscrm_events_stored_total", 300)
        assert sample_value(text, "medscrm_events_stored_total") == 300
        for _ in range(6):  # whichever worker answers, the sum is the same
            text = httpx.get(url + "/metrics", timeout=10).text
            assert (
                sample_value(
                    text,
                    "medscrm_http_request_duration_seconds_count",
                    route="/v1/batch",
                    method="POST",
                    status="2xx",
                )
                == 30
            )
        files = {p.name.split("_")[0] for p in (spool / "metrics").glob("*.db")}
        assert "counter" in files and "histogram" in files
        assert not (spool / "metrics" / "counter_999999.db").exists()
    finally:
        stop(proc)
