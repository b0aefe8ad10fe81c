"""Kill -9 of dispatchers in the middle of a run, then restart: every send is delivered, each one
exactly once at the SMTP server (counted by Message-ID), and every in-flight re-send is accounted
for. Also the deterministic version of the crash window (state set by hand)."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from medscrm.db.schema import events, sends
from medscrm.devtools.servers import start_smtp_sink
from medscrm.outreach.send import SendRequest, dispatch_once, request_send
from medscrm.outreach.settings import set_policy
from medscrm.profiles.events import query_events
from outreach.helpers import DAY, approved_item, grant, make_person, setup_email

NO_QUIET = {"start": "00:00", "end": "00:00"}  # start == end: no quiet window (the test runs at any hour)


def _dispatcher(url: str, slug: str, worker: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env.update(MEDSCRM_DATABASE_URL=url, COLUMNS="200")
    cmd = [
        sys.executable,
        "-m",
        "medscrm",
        "sends",
        "dispatch",
        "--loop",
        "--interval",
        "0.05",
        "--limit",
        "10",
        "--worker-id",
        worker,
        "--tenant",
        slug,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_records(smtp, at_least: int, procs, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(smtp.records()) >= at_least:
            return
        for p in procs:
            if p.poll() is not None and p.returncode != 0:
                raise AssertionError(f"dispatcher exited {p.returncode}: {p.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"only {len(smtp.records())} of {at_least} messages after {timeout}s")


def test_sigkill_mid_run_then_restart_delivers_each_send_exactly_once(tenant, tmp_path):
    n, kills = 120, 3
    eng, tid = tenant.engine, tenant.id
    pg = eng.dialect.name == "postgresql"
    with start_smtp_sink(tmp_path / "mail.jsonl") as smtp:
        with eng.begin() as conn:
            setup_email(conn, tid, port=smtp.port)
            set_policy(
                conn,
                tenant_id=tid,
                actor="test",
                changes={"lease_seconds": 2, "quiet_hours": NO_QUIET, "frequency_caps": {"email": []}},
            )
            item = approved_item(conn, tid)
            ids = []
            for i in range(n):
                pid = make_person(conn, tid, email=f"hcp{i}@h.example", license_no="110101199001011234")
                grant(conn, tid, pid)
                out = request_send(
                    conn,
                    SendRequest(
                        tenant_id=tid,
                        person_id=pid,
                        channel="email",
                        content_id=item["id"],
                        idempotency_key=f"crash:{i}",
                        origin="journey:crash:s1",
                    ),
                )
                assert out.status == "queued"
                ids.append(out.send_id)
        url = eng.url.render_as_string(hide_password=False)
        eng.dispose()  # DuckDB: one process at a time holds the file
        killed = 0
        for r in range(kills):
            procs = [_dispatcher(url, tenant.slug, f"w{r}-{k}") for k in range(2 if pg else 1)]
            _wait_records(smtp, len(smtp.records()) + 15, procs)  # mid-run: delivering right now
            for p in procs:
                p.send_signal(signal.SIGKILL)
                p.wait()
                killed += 1
        assert len({rec["send_id"] for rec in smtp.records()}) < n, "the run finished before the last kill"
        final = [_dispatcher(url, tenant.slug, f"final-{k}") for k in range(2 if pg else 1)]
        deadline = time.monotonic() + 120
        while len({rec["send_id"] for rec in smtp.records()}) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # let the last result commits land
        for p in final:
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0, p.stderr.read()
        recs = smtp.records()
    per_send = collections.Counter(rec["send_id"] for rec in recs if not rec["duplicate"])
    received = collections.Counter(rec["send_id"] for rec in recs)
    with eng.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(sends).where(sends.c.tenant_id == tid))}
        sent_events = (
            conn.execute(
                sa.select(events.c.message_id).where(
                    events.c.tenant_id == tid, events.c.event == "Message Sent"
                )
            )
            .scalars()
            .all()
        )
    assert sorted(per_send) == sorted(ids) and set(per_send.values()) == {1}  # delivered exactly once each
    assert all(rows[i].status == "sent" for i in ids), collections.Counter(r.status for r in rows.values())
    assert sorted(sent_events) == sorted(f"sent:{i}" for i in ids)  # one Message Sent event per send
    resent = [s for s, c in received.items() if c > 1]
    # a re-submission happens only for a message in flight at a kill (at most one per dispatcher),
    # is re-sent with the same Message-ID (dropped as a duplicate by the server), and is marked
    assert len(resent) <= killed
    assert all((rows[s].detail or {}).get("resumed_after_crash") for s in resent)
    print(
        f"\ncrash test ({eng.dialect.name}): {n} sends, {killed} dispatchers killed, {len(recs)} SMTP receipts, "
        f"{len(resent)} same-Message-ID re-submission(s), 0 lost, 0 delivered twice"
    )


def _stuck_in_flight(eng, tid, channel_policy: str, tmp_path):
    """A send handed to the provider by a dispatcher that then died (state as it leaves it)."""
    with eng.begin() as conn:
        setup_email(conn, tid, port=1)
        set_policy(conn, tenant_id=tid, actor="t", changes={"inflight_policy": {"email": channel_policy}})
        item = approved_item(conn, tid)
        pid = make_person(conn, tid, email="a@h.example", license_no="110101199001011234")
        grant(conn, tid, pid)
        out = request_send(
            conn,
            SendRequest(
                tenant_id=tid,
                person_id=pid,
                channel="email",
                content_id=item["id"],
                idempotency_key="k",
                origin="rep:x",
            ),
            now=DAY,
        )
        conn.execute(
            sends.update()
            .where(sends.c.id == out.send_id)
            .values(
                status="sending",
                worker_id="dead",
                handed_off_at=DAY,
                attempts=1,
                lease_until=DAY + dt.timedelta(seconds=60),
            )
        )
    return out.send_id, pid


def test_in_flight_send_of_a_dead_dispatcher_hold_policy_is_never_resent(tenant, tmp_path):
    sid, pid = _stuck_in_flight(tenant.engine, tenant.id, "hold", tmp_path)
    # the lease has not run out: nobody touches it
    assert (
        dispatch_once(tenant.engine, worker_id="w2", tenant_id=tenant.id, now=DAY + dt.timedelta(seconds=30))
        == 0
    )
    assert (
        dispatch_once(tenant.engine, worker_id="w2", tenant_id=tenant.id, now=DAY + dt.timedelta(seconds=61))
        == 0
    )
    with tenant.engine.connect() as conn:
        row = conn.execute(sa.select(sends).where(sends.c.id == sid)).mappings().one()
        ev = query_events(conn, tenant_id=tenant.id, person_id=pid, event="Message Unconfirmed")
    assert row["status"] == "unknown" and row["attempts"] == 1 and "at-most-once" in row["error"]
    assert len(ev) == 1


def test_in_flight_send_of_a_dead_dispatcher_retry_policy_is_resent_with_the_same_message_id(
    tenant, tmp_path
):
    with start_smtp_sink(tmp_path / "m.jsonl") as smtp:
        sid, _ = _stuck_in_flight(tenant.engine, tenant.id, "retry", tmp_path)
        with tenant.engine.begin() as conn:
            setup_email(conn, tenant.id, port=smtp.port)
        assert (
            dispatch_once(
                tenant.engine, worker_id="w2", tenant_id=tenant.id, now=DAY + dt.timedelta(seconds=61)
            )
            == 1
        )
        recs = smtp.records()
    with tenant.engine.connect() as conn:
        row = conn.execute(sa.select(sends).where(sends.c.id == sid)).mappings().one()
    assert row["status"] == "sent" and row["attempts"] == 2 and row["detail"]["resumed_after_crash"] is True
    assert [r["message_id"] for r in recs] == [f"<{sid}@medscrm>"]


def test_a_dispatcher_that_lost_its_lease_cannot_overwrite_the_new_owner(tenant):
    with tenant.engine.begin() as conn:
        setup_email(conn, tenant.id, port=1)
        item = approved_item(conn, tenant.id)
        pid = make_person(conn, tenant.id, email="a@h.example", license_no="110101199001011234")
        grant(conn, tenant.id, pid)
        out = request_send(
            conn,
            SendRequest(
                tenant_id=tenant.id,
                person_id=pid,
                channel="email",
                content_id=item["id"],
                idempotency_key="k",
                origin="rep:x",
            ),
            now=DAY,
        )
        conn.execute(
            sends.update()
            .where(sends.c.id == out.send_id)
            .values(status="sending", worker_id="new-owner", lease_until=DAY + dt.timedelta(minutes=5))
        )
    from medscrm.outreach.send import _deliver

    _deliver(tenant.engine, out.send_id, worker_id="old-owner", fixed_now=DAY)  # fenced: does nothing
    with tenant.engine.connect() as conn:
        row = conn.execute(sa.select(sends).where(sends.c.id == out.send_id)).mappings().one()
    assert row["status"] == "sending" and row["worker_id"] == "new-owner" and row["attempts"] == 0
