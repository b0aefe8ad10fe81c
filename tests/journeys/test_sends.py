"""Send steps through the send outbox on both engines (guardrail refusals by reason, a real SMTP server), and a
``medscrm worker`` subprocess killed with SIGKILL and restarted: exactly one send per step."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from journeys.support import NOW, approved_content, email_channel, grant, linear, make_persons, open_policy
from medscrm.common import utcnow
from medscrm.db.schema import journey_enrollments, journey_step_runs, sends
from medscrm.devtools.servers import start_smtp_sink
from medscrm.journeys import engine as je
from medscrm.journeys import service as js
from medscrm.journeys.model import JourneyError
from tests_support import cli_env


def _emails(i: int) -> dict[str, str]:
    return {"email": f"doctor{i}@hospital.example", "license_no": f"{110101199001010000 + i}"[:15]}


def test_send_steps_sent_blocked_by_reason_and_delivered(tenant, tmp_path):
    with start_smtp_sink(tmp_path / "mail.jsonl") as smtp:
        with tenant.engine.begin() as c:
            pids = make_persons(c, tenant.id, 6, _emails)
            approved_content(c, tenant.id, "hf_invite")
            email_channel(c, tenant.id, smtp.host, smtp.port)
            open_policy(c, tenant.id)
            grant(c, tenant.id, pids[:4])
            d = linear(
                "mail",
                [
                    {"id": "invite", "type": "send", "channel": "email", "content": "hf_invite"},
                    {"id": "done", "type": "exit"},
                ],
            )
            js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
            js.start(c, tenant_id=tenant.id, key="mail", actor="test", now=NOW)
            js.enroll(c, tenant_id=tenant.id, key="mail", person_ids=pids, actor="test", now=NOW)
        now = utcnow()
        r = je.tick(tenant.engine, worker_id="t", now=now, tenant_id=tenant.id)
        assert r["steps"] == 12 and r["dispatched"] == 4
        assert je.tick(tenant.engine, worker_id="t", now=now, tenant_id=tenant.id)["steps"] == 0
        with tenant.engine.connect() as c:
            stats = {s["step_id"]: s for s in js.step_stats(c, tenant_id=tenant.id, key="mail")}
            rows = c.execute(
                sa.select(sends.c.idempotency_key, sends.c.status, sends.c.reason, sends.c.origin).where(
                    sends.c.tenant_id == tenant.id
                )
            ).all()
            enr = dict(
                c.execute(
                    sa.select(journey_enrollments.c.person_id, journey_enrollments.c.id).where(
                        journey_enrollments.c.tenant_id == tenant.id
                    )
                ).all()
            )
        assert stats["invite"]["sent"] == 4 and stats["invite"]["blocked"] == {"no_consent": 2}
        assert stats["invite"]["entered"] == 6 and stats["done"]["entered"] == 6
        assert sorted(r.idempotency_key for r in rows) == sorted(f"{enr[p]}:invite:1" for p in pids)
        assert (
            sorted((r.status, r.reason) for r in rows)
            == [("blocked", "no_consent")] * 2 + [("sent", None)] * 4
        )
        assert all(r.origin.startswith("journey:") and r.origin.endswith(":invite") for r in rows)
        got = smtp.records()
        assert len(got) == 4 and {tuple(x["rcpt_tos"]) for x in got} == {
            (f"doctor{i}@hospital.example",) for i in range(4)
        }


def test_start_refuses_unapproved_content_and_channel_without_credentials(tenant):
    from medscrm.content import service as content

    with tenant.engine.begin() as c:
        content.create_item(
            c,
            tenant_id=tenant.id,
            key="draft_item",
            title="草稿",
            kind="article",
            audience="hcp_only",
            body="x",
            actor="author",
        )
        d = linear("draft", [{"id": "s", "type": "send", "channel": "email", "content": "draft_item"}])
        with pytest.raises(JourneyError) as ei:
            js.create(c, tenant_id=tenant.id, definition=d, actor="test")
        assert {p.path: p.reason for p in ei.value.problems} == {
            "steps[s].channel": "no credentials for channel 'email' in this tenant (configure the channel first)"
        }
        email_channel(c, tenant.id)
        js.create(c, tenant_id=tenant.id, definition=d, actor="test")  # a draft may use draft content
        with pytest.raises(JourneyError) as ei:
            js.start(c, tenant_id=tenant.id, key="draft", actor="test")
        assert ei.value.problems[0].path == "steps[s].content" and "draft" in ei.value.problems[0].reason


def _wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.slow
def test_worker_killed_with_sigkill_sends_exactly_once(pg_engine, pg_url, tmp_path):
    from medscrm.accounts import service as accounts

    n = 150
    slug = f"kill-{os.urandom(4).hex()}"
    with start_smtp_sink(tmp_path / "mail.jsonl") as smtp:
        with pg_engine.begin() as c:
            tid = accounts.ensure_tenant(conn=c, slug=slug)["id"]
            pids = make_persons(c, tid, n, _emails)
            approved_content(c, tid, "a")
            approved_content(c, tid, "b", subject="{{ name }}，会议提醒")
            email_channel(c, tid, smtp.host, smtp.port)
            open_policy(c, tid)
            grant(c, tid, pids)
            d = linear(
                "killme",
                [
                    {"id": "first", "type": "send", "channel": "email", "content": "a"},
                    {"id": "pause", "type": "wait", "duration": "1s"},
                    {"id": "second", "type": "send", "channel": "email", "content": "b"},
                ],
            )
            js.create(c, tenant_id=tid, definition=d, actor="test")
            js.start(c, tenant_id=tid, key="killme", actor="test")
            js.enroll(c, tenant_id=tid, key="killme", person_ids=pids, actor="test")
        env = cli_env(MEDSCRM_DATABASE_URL=pg_url)
        cmd = [sys.executable, "-m", "medscrm", "worker", "--tenant", slug, "--interval", "0.1", "--id"]
        rng = random.Random(7)
        kills = 0

        def progress() -> int:  # step executions + delivered sends
            with pg_engine.connect() as c:
                a = c.execute(
                    sa.select(sa.func.count())
                    .select_from(journey_step_runs)
                    .where(journey_step_runs.c.tenant_id == tid)
                ).scalar()
                b = c.execute(
                    sa.select(sa.func.count())
                    .select_from(sends)
                    .where(sends.c.tenant_id == tid, sends.c.status == "sent")
                ).scalar()
            return int(a) + int(b)

        for k in range(3):  # kill each worker once it is making progress: mid-claim, mid-send, mid-commit
            base = progress()
            p = subprocess.Popen(
                [*cmd, f"w{k}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait_for(lambda base=base: progress() > base, 60, "the worker to make progress")
            time.sleep(rng.uniform(0.0, 0.4))
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        p = subprocess.Popen([*cmd, "final"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:

            def finished():
                with pg_engine.connect() as c:
                    active = c.execute(
                        sa.select(sa.func.count())
                        .select_from(journey_enrollments)
                        .where(
                            journey_enrollments.c.tenant_id == tid, journey_enrollments.c.status == "active"
                        )
                    ).scalar()
                    pending = c.execute(
                        sa.select(sa.func.count())
                        .select_from(sends)
                        .where(
                            sends.c.tenant_id == tid,
                            sends.c.status.not_in(["sent", "failed", "blocked", "unknown"]),
                        )
                    ).scalar()
                return active == 0 and pending == 0

            _wait_for(finished, 120, "the journey to finish after the kills")
        finally:
            p.terminate()
            p.wait(timeout=30)
        with pg_engine.connect() as c:
            runs = c.execute(
                sa.select(journey_step_runs.c.enrollment_id, journey_step_runs.c.step_id, sa.func.count())
                .where(journey_step_runs.c.tenant_id == tid)
                .group_by(journey_step_runs.c.enrollment_id, journey_step_runs.c.step_id)
            ).all()
            rows = c.execute(sa.select(sends.c.id, sends.c.status).where(sends.c.tenant_id == tid)).all()
            statuses = set(
                c.execute(
                    sa.select(journey_enrollments.c.status).where(journey_enrollments.c.tenant_id == tid)
                ).scalars()
            )
        assert statuses == {"completed"}
        assert len(runs) == n * 3 and all(x == 1 for *_, x in runs)  # no lost, no repeated step
        assert len(rows) == 2 * n and {s for _, s in rows} == {"sent"}
        got = smtp.records()
        ids = [g["message_id"] for g in got]
        assert {m.strip("<>").split("@")[0] for m in ids} == {sid for sid, _ in rows}  # every send arrived
        redelivered = sum(1 for g in got if g["duplicate"])
        # the only repeat a kill can cause is the in-flight SMTP hand-off, re-sent with the same Message-ID
        assert len(got) - len(set(ids)) == redelivered <= kills


def test_webhook_step_is_signed_and_delivered_once(tenant):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from medscrm.outreach.channels.webhook import verify
    from medscrm.outreach.settings import configure_channel

    got: list[tuple[dict, dict]] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((json.loads(body), dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with tenant.engine.begin() as c:
            pids = make_persons(c, tenant.id, 2)
            open_policy(c, tenant.id)
            configure_channel(
                c, tenant_id=tenant.id, channel="webhook", provider="hmac", actor="test",
                settings={"url": f"http://127.0.0.1:{srv.server_port}/hook", "secret": "s3cret"},
            )  # fmt: skip
            d = linear("hook", [{"id": "crm", "type": "webhook", "payload": {"action": "create_lead"}}])
            js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
            js.start(c, tenant_id=tenant.id, key="hook", actor="test", now=NOW)
            js.enroll(c, tenant_id=tenant.id, key="hook", person_ids=pids, actor="test", now=NOW)
        now = utcnow()
        assert je.tick(tenant.engine, worker_id="t", now=now, tenant_id=tenant.id)["dispatched"] == 2
        je.tick(tenant.engine, worker_id="t", now=now, tenant_id=tenant.id)
    finally:
        srv.shutdown()
    assert len(got) == 2
    for payload, headers, body in got:
        h = {k.lower(): v for k, v in headers.items()}
        assert verify("s3cret", h["x-medscrm-timestamp"], body, h["x-medscrm-signature"])
        assert json.dumps(payload, ensure_ascii=False)  # the payload carries the journey context
    people = {json.dumps(p, ensure_ascii=False, default=str) for p, _, _ in got}
    assert all("create_lead" in x and "hook" in x for x in people)
    assert {pid for pid in pids if any(pid in x for x in people)} == set(pids)


def test_stop_cancels_the_journeys_queued_sends(tenant):
    """Stopping a journey cancels the sends it queued that no provider has seen yet, each with a
    ``Send Blocked`` (journey_stopped) event on the person's timeline; other origins are untouched."""
    from medscrm.db.schema import events
    from medscrm.outreach.send import SendRequest, request_send

    with tenant.engine.begin() as c:
        pids = make_persons(c, tenant.id, 3, _emails)
        approved_content(c, tenant.id, "hf_invite")
        email_channel(c, tenant.id, "127.0.0.1", 1)  # never dispatched in this test
        open_policy(c, tenant.id)
        grant(c, tenant.id, pids)
        d = linear(
            "stoppable",
            [
                {"id": "invite", "type": "send", "channel": "email", "content": "hf_invite"},
                {"id": "done", "type": "exit"},
            ],
        )
        js.create(c, tenant_id=tenant.id, definition=d, actor="test", now=NOW)
        js.start(c, tenant_id=tenant.id, key="stoppable", actor="test", now=NOW)
        js.enroll(c, tenant_id=tenant.id, key="stoppable", person_ids=pids[:2], actor="test", now=NOW)
    je.run_due(tenant.engine, worker_id="t", limit=100, now=utcnow())
    with tenant.engine.begin() as c:
        cid = c.execute(
            sa.select(sends.c.content_id).where(sends.c.tenant_id == tenant.id).limit(1)
        ).scalar_one()
        rep = request_send(
            c,
            SendRequest(
                tenant_id=tenant.id,
                person_id=pids[2],
                channel="email",
                content_id=cid,
                idempotency_key="rep-send-1",
                origin="rep:alice",
            ),
        )
        assert rep.status == "queued"
        js.stop(c, tenant_id=tenant.id, key="stoppable", actor="test")
    with tenant.engine.connect() as c:
        rows = c.execute(
            sa.select(sends.c.origin, sends.c.status, sends.c.reason).where(sends.c.tenant_id == tenant.id)
        ).all()
        blocked = (
            c.execute(
                sa.select(events.c.person_id).where(
                    events.c.tenant_id == tenant.id, events.c.event == "Send Blocked"
                )
            )
            .scalars()
            .all()
        )
    journey_rows = [r for r in rows if r.origin.startswith("journey:")]
    assert len(journey_rows) == 2
    assert {(r.status, r.reason) for r in journey_rows} == {("cancelled", "journey_stopped")}
    assert [(r.status, r.reason) for r in rows if r.origin == "rep:alice"] == [("queued", None)]
    assert sorted(blocked) == sorted(pids[:2])
