"""A real `medscrm serve` process: the official Segment client works unmodified, and kill -9 loses
nothing that was acknowledged and duplicates nothing."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from tests_support import cli_env, last_line  # noqa: F401  (helper module below)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "medscrm", "serve", "--port", str(self.port)],
            cwd=self.cwd,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("server exited during start-up")
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def run_cli(cwd: Path, *args: str) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "medscrm", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return last_line(p.stdout)


@pytest.fixture
def workspace(tmp_path):
    key = run_cli(tmp_path, "sources", "create", "--name", "site")
    token = run_cli(tmp_path, "tokens", "create", "--role", "admin")
    server = Server(tmp_path)
    server.start()
    yield tmp_path, key, token, server
    server.stop()


def wait_events(server: Server, token: str, n: int, timeout: float = 20) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        r = httpx.get(
            server.url + "/api/v1/events",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {token}"},
        )
        rows = r.json()["events"]
        if len(rows) >= n or time.time() > deadline:
            return rows
        time.sleep(0.2)


def test_official_segment_client_works_unmodified(workspace):
    from segment.analytics import Client

    _, key, token, server = workspace
    errors = []
    client = Client(write_key=key, host=server.url, sync_mode=True, on_error=lambda e, b: errors.append(e))
    client.identify("hcp-1", {"name": "张伟", "phone": "13800138000", "hospital": "北京协和医院"})
    client.track("hcp-1", "Webinar Attended", {"webinar": "心衰新进展", "minutes": 42})
    client.page("hcp-1", "Articles", "Heart failure guideline", {"url": "https://m.example.cn/a/1"})
    client.group("hcp-1", "hosp-pumch", {"name": "北京协和医院"})
    client.alias("anon-77", "hcp-1")
    client.flush()
    assert errors == []
    rows = wait_events(server, token, 5)
    assert sorted(r["type"] for r in rows) == ["alias", "group", "identify", "page", "track"]
    track = next(r for r in rows if r["type"] == "track")
    assert track["properties"] == {"webinar": "心衰新进展", "minutes": 42}
    assert track["context"]["library"]["name"] == "analytics-python"


def test_kill_9_loses_nothing_acknowledged_and_duplicates_nothing(workspace):
    cwd, key, _token, server = workspace
    rng = random.Random(7)
    acked: set[str] = set()
    sent_batches: list[list[str]] = []
    seq = iter(range(10**9))

    def load(stop: threading.Event) -> None:
        with httpx.Client(auth=(key, ""), timeout=5) as c:
            while not stop.is_set():
                ids = [f"k{next(seq)}" for _ in range(50)]
                body = {
                    "batch": [
                        {"type": "track", "userId": f"u{i % 97}", "event": "Article Viewed", "messageId": m}
                        for i, m in enumerate(ids)
                    ]
                }
                try:
                    r = c.post(server.url + "/v1/batch", json=body)
                except httpx.HTTPError:
                    return  # the server died under us: this batch is unacknowledged
                if r.status_code == 200:
                    acked.update(ids)
                    sent_batches.append(ids)

    for _round in range(3):
        stop = threading.Event()
        t = threading.Thread(target=load, args=(stop,))
        t.start()
        time.sleep(rng.uniform(0.5, 1.5))
        server.kill9()
        stop.set()
        t.join()
        server.start()
    # clients retry what they are unsure of: resend some acknowledged batches after the restarts
    with httpx.Client(auth=(key, ""), timeout=10) as c:
        for ids in rng.sample(sent_batches, min(5, len(sent_batches))):
            body = {
                "batch": [
                    {"type": "track", "userId": "u", "event": "Article Viewed", "messageId": m} for m in ids
                ]
            }
            assert c.post(server.url + "/v1/batch", json=body).status_code == 200
    server.stop()  # graceful: flushes the spool
    con = duckdb.connect(str(cwd / "medscrm.duckdb"), read_only=True)
    total, distinct = con.execute("SELECT count(*), count(DISTINCT message_id) FROM events").fetchone()
    stored = {r[0] for r in con.execute("SELECT message_id FROM events").fetchall()}
    con.close()
    assert len(acked) > 500, "the load generator should have had some requests acknowledged"
    assert acked <= stored, f"lost {len(acked - stored)} acknowledged events"
    assert total == distinct, f"{total - distinct} duplicates"
    assert os.path.exists(cwd / "medscrm.duckdb.spool" / "checkpoint.json")
