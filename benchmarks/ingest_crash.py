"""Crash test of the event API: ``kill -9`` the server under load, restart it, count lost and doubled events.

    uv run python benchmarks/ingest_crash.py --quick     # 5 kills per engine
    uv run python benchmarks/ingest_crash.py             # 20 kills per engine
    uv run python benchmarks/ingest_crash.py --engines duckdb --kills 3

For every engine (DuckDB file, PostgreSQL throwaway database):

1. ``medscrm serve`` runs as a subprocess; client tasks in this process post ``/v1/batch`` requests
   of 100 messages with unique messageIds (the bodies of ``benchmarks/ingest_events.py``) and record
   which batches were acknowledged (HTTP 200). A request that fails (connection reset, no answer)
   counts as not acknowledged.
2. At a random moment (uniform in ``--min-up``..``--max-up`` seconds after the server is up) the server
   gets SIGKILL — wherever it is: mid-request, mid-fsync, mid-flush into the database — and is
   restarted on the same database and spool; the clients carry on. This repeats N times.
3. Client retries: a random sample of acknowledged batches and of unacknowledged ones is sent again
   (same messageIds); a retried unacknowledged batch that gets a 200 counts as acknowledged.
4. SIGTERM (the server flushes its spool and exits); the ``events`` table is read: ``lost`` =
   acknowledged messageIds not stored, ``duplicated`` = messageIds stored more than once, ``unknown``
   = stored messageIds never sent.

Figures go to ``benchmarks/results/ingest_crash.json``; the last line of stdout is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_events import (  # noqa: E402
    BATCH_SIZE,
    DEFAULT_PG_URL,
    RESULTS_DIR,
    Database,
    HttpConn,
    Server,
    basic_auth,
    log,
    make_batch,
)


async def crash_run(db: Database, write_key: str, kills: int, conns: int, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    tag = f"c{db.kind[:2]}{rng.randrange(10**6)}"
    server = Server(db, "server-crash.log")
    startup = [await asyncio.to_thread(server.start)]
    auth = basic_auth(write_key)
    up = asyncio.Event()
    up.set()
    stop = False
    acked: set[int] = set()
    unacked: set[int] = set()
    statuses: collections.Counter = collections.Counter()
    next_seq = iter(range(10**9))

    async def send(c: HttpConn, seq: int) -> bool:
        try:
            st = await asyncio.wait_for(c.post("/v1/batch", orjson.dumps(make_batch(tag, seq))), 30)
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            c.close()
            statuses["conn_error"] += 1
            return False
        statuses[str(st)] += 1
        return st == 200

    async def worker() -> None:
        c = HttpConn("127.0.0.1", server.port, auth)
        while not stop:
            await up.wait()
            seq = next(next_seq)
            if await send(c, seq):
                acked.add(seq)
            else:
                unacked.add(seq)
                await asyncio.sleep(0.05)
        c.close()

    workers = [asyncio.create_task(worker()) for _ in range(conns)]
    kill_log = []
    for i in range(kills):
        await asyncio.sleep(rng.uniform(args.min_up, args.max_up))
        before = len(acked)
        up.clear()
        server.kill()  # SIGKILL, wherever the server is
        kill_log.append({"kill": i + 1, "acked_before": before * BATCH_SIZE})
        await asyncio.sleep(0.2)  # let the clients see their connections fail
        startup.append(await asyncio.to_thread(server.start))
        up.set()
    await asyncio.sleep(1.0)
    stop = True
    await asyncio.gather(*workers)

    # client retries: acknowledged batches again, and some unacknowledged ones
    retry_acked = rng.sample(sorted(acked), min(len(acked), args.retry_acked))
    retry_unacked = rng.sample(sorted(unacked), min(len(unacked), args.retry_unacked))
    c = HttpConn("127.0.0.1", server.port, auth)
    retried_ok = 0
    for seq in retry_acked:
        retried_ok += await send(c, seq)
    recovered = 0
    for seq in retry_unacked:
        if await send(c, seq):
            acked.add(seq)
            unacked.discard(seq)
            recovered += 1
    c.close()
    t_stop = time.time()
    await asyncio.to_thread(server.stop)
    shutdown_s = time.time() - t_stop

    stored = [r[0] for r in db.query("SELECT message_id FROM events")]
    counts = collections.Counter(stored)
    acked_mids = {f"{tag}-{s}-{i}" for s in acked for i in range(BATCH_SIZE)}
    sent_mids = acked_mids | {f"{tag}-{s}-{i}" for s in unacked for i in range(BATCH_SIZE)}
    stored_set = set(counts)
    lost = acked_mids - stored_set
    return {
        "kills": kills,
        "connections": conns,
        "batch_size": BATCH_SIZE,
        "batches_sent": len(acked) + len(unacked),
        "acked_events": len(acked_mids),
        "unacked_batches": len(unacked),
        "unacked_events_stored_anyway": len((sent_mids - acked_mids) & stored_set),
        "retried_acked_batches": len(retry_acked),
        "retried_acked_ok": retried_ok,
        "retried_unacked_batches": len(retry_unacked),
        "retried_unacked_now_acked": recovered,
        "statuses": dict(statuses),
        "stored_rows": len(stored),
        "lost": len(lost),
        "lost_sample": sorted(lost)[:5],
        "duplicated": sum(1 for n in counts.values() if n > 1),
        "duplicated_sample": [m for m, n in counts.items() if n > 1][:5],
        "unknown": len(stored_set - sent_mids),
        "restart_s_avg": round(sum(startup[1:]) / max(1, len(startup) - 1), 2),
        "final_shutdown_flush_s": round(shutdown_s, 2),
        "kill_log": kill_log,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 kills per engine (default 20)")
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--min-up", type=float, default=0.3, help="seconds of load before a kill, at least")
    ap.add_argument("--max-up", type=float, default=3.0, help="seconds of load before a kill, at most")
    ap.add_argument("--retry-acked", type=int, default=100, help="acknowledged batches sent again")
    ap.add_argument("--retry-unacked", type=int, default=50, help="unacknowledged batches sent again")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    kills = args.kills if args.kills is not None else (5 if args.quick else 20)
    if args.seed is None:
        args.seed = random.randrange(10**9)
    result: dict[str, Any] = {
        "benchmark": "ingest_crash",
        "mode": mode,
        "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-crash-bench-") as tmp:
        for kind in [e.strip() for e in args.engines.split(",") if e.strip()]:
            t0 = time.time()
            try:
                with Database(kind, Path(tmp), args.pg_url, "crash") as db:
                    write_key, _ = db.setup()
                    log(f"{kind}: {kills} kills under load ...")
                    r = asyncio.run(crash_run(db, write_key, kills, args.connections, args))
                r["seconds"] = round(time.time() - t0, 1)
                log(
                    f"{kind}: acked {r['acked_events']:,} events, lost {r['lost']}, "
                    f"duplicated {r['duplicated']}, unknown {r['unknown']} ({r['seconds']}s)"
                )
            except Exception as exc:
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                r = {"error": f"{type(exc).__name__}: {exc}"}
            result["engines"][kind] = r
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "ingest_crash.json").write_text(text + "\n")
    (RESULTS_DIR / f"ingest_crash.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode}
    for kind, r in result["engines"].items():
        keys = (
            "kills",
            "acked_events",
            "lost",
            "duplicated",
            "unknown",
            "retried_unacked_now_acked",
            "error",
        )
        summary[kind] = {k: r[k] for k in keys if k in r}
    ok = all("error" not in r and r["lost"] == 0 and r["duplicated"] == 0 for r in result["engines"].values())
    summary["ok"] = ok
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
