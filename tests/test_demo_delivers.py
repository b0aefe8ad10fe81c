"""`medscrm demo` delivers: the bundled local e-mail and WeCom stand-ins run during the demo, the
journey's sends reach them (no "connection refused"), `medscrm devtools inbox` shows them, tracked
links use MEDSCRM_PUBLIC_BASE_URL, and `medscrm serve` in the demo workspace starts the stand-ins
again on the ports the channels point at."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.app import create_app
from medscrm.db import make_engine
from medscrm.db.schema import sends
from medscrm.devtools.demo_providers import inbox
from tests_support import cli_env
from web.conftest import csrf_of

MEDSCRM = [sys.executable, "-m", "medscrm"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demo_delivers_to_the_local_stand_ins(tmp_path):
    env = cli_env(MEDSCRM_PUBLIC_BASE_URL="https://scrm.example.com")
    p = subprocess.run(
        [*MEDSCRM, "demo", "--hcps", "300"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "outbox" in p.stdout and "devtools inbox" in p.stdout

    engine = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sends.c.id, sends.c.channel, sends.c.status, sends.c.error)).all()
    finally:
        engine.dispose()
    by_status: dict[tuple[str, str], int] = {}
    for _, ch, st, _ in rows:
        by_status[(ch, st)] = by_status.get((ch, st), 0) + 1
    handed = {sid for sid, ch, st, _ in rows if st in ("sent", "delivered")}
    emails = [r for r in rows if r[1] == "email" and r[2] in ("sent", "delivered")]
    wecoms = [r for r in rows if r[1] == "wecom" and r[2] in ("sent", "delivered")]
    assert emails and wecoms, by_status
    # nothing failed on the way to the providers, nothing waits for them
    assert not [r for r in rows if r[2] in ("failed", "queued", "sending", "unknown")], by_status
    assert not [r for r in rows if r[3] and "refused" in r[3]], by_status

    # each handed-over send is in a stand-in's record, with tracked links on the public base URL
    received = inbox(tmp_path / "demo-outbox")
    mails = [m for m in received if m["channel"] == "email"]
    assert {m["send_id"] for m in mails} == {r[0] for r in emails}
    assert len([m for m in received if m["channel"] == "wecom"]) == len(wecoms)
    linked = [m for m in mails if "/r/" in m["text"]]
    assert linked and all("https://scrm.example.com/r/" in m["text"] for m in linked)
    assert not any("localhost" in m["text"] for m in mails)
    assert handed

    out = subprocess.run(
        [*MEDSCRM, "devtools", "inbox", "--json", "--limit", "1000"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == len(received)

    # the console's "Outbox (demo)" page shows them to roles that read PII
    engine = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    try:
        with TestClient(create_app(engine)) as c:
            for user, allowed in (("marketer", True), ("analyst", False)):
                c.cookies.clear()
                csrf = csrf_of(c.get("/login").text)
                r = c.post(
                    "/login",
                    data={"csrf_token": csrf, "tenant": "demo", "username": user, "password": f"{user}-demo"},
                    follow_redirects=False,
                )
                assert r.status_code == 303, r.text
                assert ('data-nav="outbox"' in c.get("/").text) is allowed
                page = c.get("/outbox")
                assert page.status_code == (200 if allowed else 403)
                if allowed:
                    assert mails[-1]["subject"] in page.text and 'data-outbox-row="wecom"' in page.text
    finally:
        engine.dispose()

    # serve in the demo workspace starts the stand-ins again, on the channels' ports
    cfg = json.loads((tmp_path / "medscrm.duckdb.demo-providers.json").read_text(encoding="utf-8"))
    port = _free_port()
    proc = subprocess.Popen(
        [*MEDSCRM, "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**env, "MEDSCRM_SEGMENT_REFRESHER": "0", "MEDSCRM_JOURNEY_RUNNER": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", int(cfg["api_port"])), timeout=1):
                    pass
                with socket.create_connection(("127.0.0.1", int(cfg["smtp_port"])), timeout=1) as s:
                    assert s.recv(100).startswith(b"220")  # the SMTP sink's greeting
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the demo's SMTP stand-in did not start"
                time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # and stops them with it
    time.sleep(0.5)
    try:
        socket.create_connection(("127.0.0.1", int(cfg["smtp_port"])), timeout=1).close()
        still = True
    except OSError:
        still = False
    assert not still
