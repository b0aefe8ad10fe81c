"""Journey crash test: ``medscrm worker`` processes are killed with SIGKILL at random moments while a
journey sends e-mail (to the real SMTP sink, an aiosmtpd process) and SMS (to the local SMS server,
which verifies Alibaba Cloud signatures), then restarted; at the end every step and every message is
counted at the servers.

Journey per person: ``email`` (send) → ``pause`` (wait 1 s) → ``sms`` (send) → end. N persons
(quick 150, full 1,000) with consent; K kills (quick 5, full 20), each at a random moment 0–1.5 s after
the servers receive again following the previous restart (or 10 s); PostgreSQL runs 2 workers (a random one is killed and restarted), DuckDB 1 (single process).

Counted:
* ``lost_steps`` — step executions missing (3 per person expected) or enrollments not completed;
* ``repeated_steps`` — a (enrollment, step) executed more than once;
* ``duplicate_sends`` — a step whose message reached a server under two different send ids, or an
  SMS accepted twice (OutId = send id), or more outbox rows than send steps;
* ``smtp_redelivered_same_message_id`` — the only repeat a kill can cause by design: the dispatcher
  died between handing a message to SMTP and recording it, and the retry reused the Message-ID
  (providers and the sink de-duplicate by it; e-mail's in-flight policy is ``retry``);
* ``sms_unknown`` — SMS sends held as ``unknown`` (in-flight policy ``hold``: at most once, for a person
  to reconcile) and whether the server has them.

    uv run python benchmarks/journey_crash.py --quick [--engines duckdb,postgresql]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from journey_steps import DEFAULT_PG_URL, MEDSCRM, RESULTS_DIR, Database, log  # noqa: E402

ALIYUN = {"LTAIbenchkey": "bench-secret-value"}


def setup(url: str, slug: str, n: int, smtp, sms) -> str:
    from medscrm.accounts import service as accounts
    from medscrm.common import new_id
    from medscrm.content import service as content
    from medscrm.db import bulk, make_engine, upgrade_to_head
    from medscrm.db.schema import persons
    from medscrm.journeys import service as js
    from medscrm.outreach import consent
    from medscrm.outreach.settings import configure_channel, set_policy

    engine = make_engine(url)
    upgrade_to_head(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=slug)["id"]
        rows = [
            {
                "id": new_id("p"),
                "tenant_id": tid,
                "person_type": "hcp",
                "status": "active",
                "attributes": {
                    "name": f"医生{i}",
                    "email": f"doctor{i}@hospital.example",
                    "phone": f"+86138{i:08d}",
                    "license_no": f"{110101000000000 + i}",
                },
                "lineage": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        bulk.append_rows(c, persons, rows)
        pids = [r["id"] for r in rows]
        for pid in pids:
            consent.set_consent(
                c, tenant_id=tid, person_id=pid, channel="any", purpose="marketing", status="granted",
                source="bench", evidence={"form": "crash"}, actor="bench",
            )  # fmt: skip
        items = [
            ("crash_mail", "email_template", None, "{{ name }}，您好：会议邀请"),
            ("crash_sms", "sms_template", {"aliyun_template_code": "SMS_0001", "params": ["name"]}, None),
        ]
        for key, kind, template, subject in items:
            it = content.create_item(
                c, tenant_id=tid, key=key, title=key, kind=kind, audience="hcp_only", subject=subject,
                body="尊敬的{{ name }}：诚邀您参加心衰线上学术会议。", template=template, actor="bench",
            )  # fmt: skip
            content.submit_for_review(c, tenant_id=tid, item_id=it["id"], actor="bench")
            content.approve(
                c, tenant_id=tid, item_id=it["id"], approval_code="MLR-CRASH", actor="mlr", actor_role="compliance",
                expires_at=now + dt.timedelta(days=30),
            )  # fmt: skip
        configure_channel(
            c, tenant_id=tid, channel="email", provider="smtp", actor="bench",
            settings={"host": smtp.host, "port": smtp.port, "from_addr": "noreply@pharma.example"},
        )  # fmt: skip
        key_id, secret = next(iter(ALIYUN.items()))
        configure_channel(
            c, tenant_id=tid, channel="sms", provider="aliyun", actor="bench",
            settings={"access_key_id": key_id, "access_key_secret": secret, "sign_name": "医学会议",
                      "base_url": sms.base_url + "/"},
        )  # fmt: skip
        set_policy(
            c, tenant_id=tid, actor="bench",
            changes={"frequency_caps": {"email": [], "sms": []}, "quiet_hours": {"start": "00:00", "end": "00:00"},
                     "backoff_seconds": 1, "backoff_max_seconds": 2, "lease_seconds": 5},
        )  # fmt: skip
        d = {
            "key": "crash",
            "name": "crash",
            "triggers": [{"type": "api"}],
            "steps": [
                {"id": "email", "type": "send", "channel": "email", "content": "crash_mail", "next": "pause"},
                {"id": "pause", "type": "wait", "duration": "1s", "next": "sms"},
                {"id": "sms", "type": "send", "channel": "sms", "content": "crash_sms"},
            ],
        }
        js.create(c, tenant_id=tid, definition=d, actor="bench")
        js.start(c, tenant_id=tid, key="crash", actor="bench")
        js.enroll(c, tenant_id=tid, key="crash", person_ids=pids, actor="bench")
    engine.dispose()
    return tid


LOGS: list[Path] = []


def _spawn(url: str, slug: str, wid: str, logdir: Path) -> subprocess.Popen:
    env = {x: v for x, v in os.environ.items() if not x.startswith("MEDSCRM_")}
    env["MEDSCRM_DATABASE_URL"] = url
    path = logdir / f"worker-{wid}-{random.randrange(10**9)}.log"
    LOGS.append(path)
    with open(path, "w") as fh:
        return subprocess.Popen(
            [*MEDSCRM, "worker", "--tenant", slug, "--interval", "0.1", "--id", wid],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )


def _worker_errors() -> list[str]:
    out: list[str] = []
    for p in LOGS:
        for line in p.read_text(errors="replace").splitlines():
            if ("failed" in line or "Error" in line) and line not in out:
                out.append(line[:300])
    return out[:10]


def _state(url: str, tid: str) -> tuple[int, int]:
    from medscrm.db import make_engine
    from medscrm.db.schema import journey_enrollments as e
    from medscrm.db.schema import sends as s

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            active = c.execute(
                sa.select(sa.func.count()).select_from(e).where(e.c.tenant_id == tid, e.c.status == "active")
            ).scalar()
            pending = c.execute(
                sa.select(sa.func.count())
                .select_from(s)
                .where(s.c.tenant_id == tid, s.c.status.in_(["queued", "sending"]))
            ).scalar()
        return int(active), int(pending)
    finally:
        engine.dispose()


def crash_run(kind: str, url: str, n: int, kills: int, rng: random.Random, tmp: Path) -> dict[str, Any]:
    from medscrm.devtools.servers import start_sms_server, start_smtp_sink

    slug = f"crash-{os.getpid()}"
    with (
        start_smtp_sink(tmp / f"mail-{kind}.jsonl") as smtp,
        start_sms_server(tmp / f"sms-{kind}.jsonl", aliyun=ALIYUN) as sms,
    ):
        tid = setup(url, slug, n, smtp, sms)
        workers = 2 if kind == "postgresql" else 1
        procs = {f"w{i}": _spawn(url, slug, f"w{i}-0", tmp) for i in range(workers)}
        t0 = time.perf_counter()
        restarts = 0
        for k in range(kills):
            # a random moment once the workers deliver again (or 10 s): mid-claim, mid-send, mid-commit
            base, t_restart = len(smtp.records()) + len(sms.records()), time.monotonic()
            while len(smtp.records()) + len(sms.records()) <= base and time.monotonic() - t_restart < 10:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            victim = rng.choice(sorted(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            restarts += 1
            procs[victim] = _spawn(url, slug, f"{victim}-{k + 1}", tmp)
        deadline = time.monotonic() + 600
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if kind == "postgresql":
                active, pending = _state(url, tid)
                if active == 0 and pending == 0:
                    break
            # DuckDB: the worker holds the file, so watch the servers instead; both: stop when
            # every message arrived or nothing moved for 60 s (then the counts below tell what is missing)
            got = len({m.get("message_id") for m in smtp.records()}) + len(
                {t.get("out_id") for t in sms.records()}
            )
            if got != last:
                last, last_change = got, time.monotonic()
            if kind == "duckdb" and got >= 2 * n:
                time.sleep(1.0)  # let the worker record the last result
                break
            if time.monotonic() - last_change > 60:
                break
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        secs = time.perf_counter() - t0
        mail, texts = smtp.records(), sms.records()
    return {
        "kills": restarts,
        "workers": workers,
        "persons": n,
        "seconds": round(secs, 1),
        **count(url, tid, n, mail, texts),
        "worker_errors": _worker_errors(),
    }


def count(url: str, tid: str, n: int, mail: list[dict], texts: list[dict]) -> dict[str, Any]:
    from medscrm.db import make_engine
    from medscrm.db.schema import journey_enrollments as e
    from medscrm.db.schema import journey_step_runs as r
    from medscrm.db.schema import sends as s

    engine = make_engine(url)
    with engine.connect() as c:
        runs = c.execute(
            sa.select(r.c.enrollment_id, r.c.step_id, sa.func.count())
            .where(r.c.tenant_id == tid)
            .group_by(r.c.enrollment_id, r.c.step_id)
        ).all()
        statuses = collections.Counter(c.execute(sa.select(e.c.status).where(e.c.tenant_id == tid)).scalars())
        outbox = c.execute(
            sa.select(s.c.id, s.c.idempotency_key, s.c.channel, s.c.status).where(s.c.tenant_id == tid)
        ).all()
    engine.dispose()
    key_of = {row.id: row.idempotency_key for row in outbox}
    # messages at the servers, by send id
    mail_ids = [m["message_id"].strip("<>").split("@")[0] for m in mail if m.get("message_id")]
    sms_ids = [t.get("out_id") for t in texts]
    got_by_key: dict[str, set[str]] = collections.defaultdict(set)
    for sid in mail_ids + sms_ids:
        got_by_key[key_of.get(sid, f"unknown:{sid}")].add(sid)
    sent_rows = [row for row in outbox if row.status in ("sent", "delivered")]
    unknown = [row for row in outbox if row.status == "unknown"]
    lost_steps = 3 * n - len(runs) + sum(v for k, v in statuses.items() if k != "completed")
    return {
        "enrollments": dict(statuses),
        "lost_steps": lost_steps,
        "repeated_steps": sum(1 for *_, x in runs if x > 1),
        "outbox_rows": len(outbox),
        "outbox_status": dict(collections.Counter(row.status for row in outbox)),
        "duplicate_sends": sum(1 for v in got_by_key.values() if len(v) > 1)
        + (len(sms_ids) - len(set(sms_ids)))
        + max(0, len(outbox) - 2 * n),
        "received_email": len(set(mail_ids)),
        "received_sms": len(set(sms_ids)),
        "smtp_redelivered_same_message_id": len(mail_ids) - len(set(mail_ids)),
        "sms_unknown": len(unknown),
        "sms_unknown_received": sum(1 for row in unknown if row.id in set(sms_ids)),
        "sent_not_received": sum(1 for row in sent_rows if row.id not in set(mail_ids) | set(sms_ids)),
        "unknown_at_server": sum(1 for k in got_by_key if k.startswith("unknown:")),
        "pending_sends": sum(1 for row in outbox if row.status in ("queued", "sending")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="150 persons, 5 kills per engine (full: 1,000, 20)")
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--persons", type=int, default=None)
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    n = args.persons or (150 if args.quick else 1000)
    kills = args.kills if args.kills is not None else (5 if args.quick else 20)
    seed = args.seed if args.seed is not None else random.randrange(10**9)
    rng = random.Random(seed)
    result: dict[str, Any] = {
        "benchmark": "journey_crash",
        "mode": mode,
        "seed": seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-journey-crash-") as tmp:
        for kind in [e.strip() for e in args.engines.split(",") if e.strip()]:
            try:
                with Database(kind, Path(tmp), args.pg_url, "jcrash") as db:
                    log(f"{kind}: {n} persons, {kills} kill -9 of workers ...")
                    r = crash_run(kind, db.url, n, kills, rng, Path(tmp))
                log(
                    f"{kind}: lost steps {r['lost_steps']}, repeated {r['repeated_steps']}, duplicate sends "
                    f"{r['duplicate_sends']}; e-mail {r['received_email']}, SMS {r['received_sms']} received "
                    f"({r['seconds']}s)"
                )
            except Exception as exc:
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                r = {"error": f"{type(exc).__name__}: {exc}"}
            result["engines"][kind] = r
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "journey_crash.json").write_text(text + "\n")
    (RESULTS_DIR / f"journey_crash.{mode}.json").write_text(text + "\n")
    keys = ("kills", "lost_steps", "repeated_steps", "duplicate_sends", "received_email", "received_sms",
            "smtp_redelivered_same_message_id", "sms_unknown", "pending_sends", "error")  # fmt: skip
    summary: dict[str, Any] = {"mode": mode}
    for kind, r in result["engines"].items():
        summary[kind] = {k: r[k] for k in keys if k in r}
    summary["ok"] = all(
        "error" not in r
        and r["lost_steps"] == 0
        and r["repeated_steps"] == 0
        and r["duplicate_sends"] == 0
        and r["pending_sends"] == 0
        for r in result["engines"].values()
    )
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
