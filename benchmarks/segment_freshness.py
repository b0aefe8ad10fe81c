"""Incremental freshness benchmark: event sent → the person's dynamic-segment membership updated.

    uv run python benchmarks/segment_freshness.py --quick   # DuckDB 100k persons / 1M events, PostgreSQL
                                                            # 20k / 200k; 15 s of load per engine
    uv run python benchmarks/segment_freshness.py           # DuckDB 1M / 10M, PostgreSQL 100k / 5M; 60 s

For each engine (a DuckDB file, a fresh PostgreSQL database), in the same run:

* the database is filled in place (set-based SQL, as ``segment_eval.py``), with three dynamic segments:
  ``probe`` (did "Bench Probe" in the last day), the 5-condition rule of ``segment_eval.py`` and a
  consent/score rule — so every refresher cycle re-evaluates real rules for the affected persons;
* a real ``medscrm serve`` process is started (its segment refresher does the start-up full recompute,
  waited for); a load thread posts ``/v1/batch`` requests of 100 events from persons' user ids at
  ``--rate`` events/s (default 1,000); every ``--probe-every`` seconds a probe ``/v1/track`` "Bench Probe"
  for a person not yet in ``probe`` is sent and the send time noted; a poller reads
  ``GET /api/v1/segments/probe/members`` every 20 ms and notes when each probed person appears.
  ``latency`` = appearance − send (p50/p95/max; target p95 < 1 s). When the scores module
  exists, the server's refresher also runs its real-time tags for the same persons (inside the
  measured path); ``c1_realtime`` says whether it did. ``c1_latency`` = for every 4th probed person,
  the time from the probe's send until ``GET /api/v1/scores/persons/{id}`` shows a score computed
  after that send (the real-time tags and scores are written in the same transaction);
* ``reference`` (after the server stopped, same database, in this process): the same membership
  update done directly — insert the probe event and call
  :func:`medscrm.segments.fresh.refresh_persons` for that person — timed per probe. ``ratio`` =
  p50 latency through the server ÷ p50 direct update.

Figures go to ``benchmarks/results/segment_freshness.json``; the last stdout line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_events import Database, Server  # noqa: E402  (throwaway database + `medscrm serve`)
from segment_eval import RULE as EVAL_RULE  # noqa: E402
from segment_eval import generate  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PROBE_RULE = {"event": "Bench Probe", "window": {"last": 1, "unit": "days"}}
CONTACTABLE_RULE = {
    "and": [
        {"consent": "sms", "purpose": "marketing"},
        {
            "or": [
                {"score": "lead_score", "op": "gte", "value": 60},
                {"tag": "potential_tier", "op": "eq", "value": "A"},
            ]
        },
    ]
}
LOAD_EVENTS = ["Article Viewed", "App Opened", "Video Played", "Page Viewed", "Webinar Registered"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def prepare(db: Database, persons: int, events: int, scores_batch: bool = True) -> tuple[str, str, str]:
    """Schema, source, token (CLI), data and segments (in process), then (``scores_batch``) the scheduled
    batch of the behaviour tags and scores, as a live tenant has had it (`medscrm scores refresh`, nightly):
    the real-time refresh then writes what an event changes, not every tag of a never-scored person.
    Returns (write key, token, tenant id)."""
    import sqlalchemy as sa

    from medscrm.db import make_engine
    from medscrm.db.schema import tenants
    from medscrm.segments import service as segs
    from medscrm.tags import service as tags

    write_key, token = db.setup()
    engine = make_engine(db.url)
    with engine.begin() as c:
        tenant_id = c.execute(sa.select(tenants.c.id).where(tenants.c.slug == "default")).scalar_one()
        tags.define(
            c, tenant_id=tenant_id, key="potential_tier", value_type="string", category="behaviour_model"
        )
    now = dt.datetime.now(dt.UTC)
    generate(engine, tenant_id, persons, events, now=now)
    with engine.begin() as c:  # some consents and scores for the third segment
        dialect = engine.dialect.name
        series = f"range({persons})" if dialect == "duckdb" else f"generate_series(0::bigint, {persons} - 1)"
        pid = "'per_' || lpad(CAST(i AS VARCHAR), 8, '0')"
        c.execute(
            sa.text(
                f"""INSERT INTO consents (tenant_id, person_id, channel, purpose, status, source, updated_at)
                SELECT :t, {pid}, 'sms', 'marketing', CASE WHEN i % 7 = 0 THEN 'withdrawn' ELSE 'granted' END,
                       'bench', :now FROM {series} t(i) WHERE i % 2 = 0"""
            ),
            {"t": tenant_id, "now": now},
        )
        c.execute(
            sa.text(
                f"""INSERT INTO person_scores (tenant_id, person_id, score_key, value, computed_at)
                SELECT :t, {pid}, 'lead_score', CAST((i * 37) % 100 AS DOUBLE PRECISION), :now
                FROM {series} t(i) WHERE i % 3 = 0"""
            ),
            {"t": tenant_id, "now": now},
        )
        for key, rule in (("probe", PROBE_RULE), ("eval5", EVAL_RULE), ("contactable", CONTACTABLE_RULE)):
            segs.create(c, tenant_id=tenant_id, key=key, rule=rule, created_by="bench")
    if engine.dialect.name == "postgresql":
        # statistics for the rows bulk-loaded above, as ``generate`` does for its own (and autovacuum
        # would on a live database): without them the planner takes the freshly filled consents and
        # person_scores for empty and nested-loops the refresher's per-person queries (seconds each)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("ANALYZE consents"))
            c.execute(sa.text("ANALYZE person_scores"))
            c.execute(sa.text("ANALYZE person_tags"))
    if scores_batch and importlib.util.find_spec("medscrm.scores.schedule") is not None:
        from medscrm.scores.schedule import run_batch

        t0 = time.perf_counter()
        res = run_batch(engine, tenant_id=tenant_id, actor="bench")
        log(f"  scheduled scores batch: {res['persons']:,} persons in {time.perf_counter() - t0:.1f}s")
    engine.dispose()
    return write_key, token, tenant_id


def run_load(base: str, auth: str, rate: float, stop: threading.Event, stats: dict, persons: int) -> None:
    """``rate`` events/s as /v1/batch requests of 100 events from persons' user ids."""
    import random

    import httpx

    rnd = random.Random(7)
    per_req = 100
    interval = per_req / rate
    with httpx.Client(base_url=base, headers={"Authorization": auth}, timeout=30) as client:
        t_next = time.monotonic()
        while not stop.is_set():
            batch = []
            for _ in range(per_req):
                i = rnd.randrange(persons)
                i -= i % 10  # a person with a user id (i % 10 < 3)
                batch.append(
                    {
                        "type": "track",
                        "userId": f"u{i}",
                        "event": rnd.choice(LOAD_EVENTS),
                        "messageId": uuid.uuid4().hex,
                        "properties": {"therapy_area": "心衰", "minutes": rnd.randrange(30)},
                    }
                )
            r = client.post("/v1/batch", json={"batch": batch})
            stats["requests"] += 1
            stats["events"] += per_req if r.status_code == 200 else 0
            stats.setdefault("statuses", {}).setdefault(str(r.status_code), 0)
            stats["statuses"][str(r.status_code)] += 1
            t_next += interval
            delay = t_next - time.monotonic()
            if delay > 0:
                stop.wait(delay)


def measure_server(db: Database, write_key: str, token: str, args, persons: int) -> dict[str, Any]:
    import base64

    import httpx

    c1 = importlib.util.find_spec("medscrm.scores.realtime") is not None and not args.no_c1

    workers = args.pg_workers if db.kind == "postgresql" else 1
    server = Server(db, "freshness-server.log", ("--workers", str(workers)))
    boot = dt.datetime.now(dt.UTC)
    started = server.start(timeout=300)
    base = f"http://127.0.0.1:{server.port}"
    auth_w = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        # the refresher's start-up full recompute: wait until every segment was refreshed by the server
        t0 = time.time()
        while time.time() - t0 < 600:
            segs = api.get("/api/v1/segments").json()["segments"]
            if all(
                s["last_refreshed_at"] and dt.datetime.fromisoformat(s["last_refreshed_at"]) >= boot
                for s in segs
            ):
                break
            time.sleep(0.2)
        startup_recompute_s = round(time.time() - t0, 2)
        log(f"  server up in {started:.1f}s, start-up full recompute done after {startup_recompute_s}s")
        stop = threading.Event()
        load_stats: dict[str, Any] = {"requests": 0, "events": 0}
        loader = threading.Thread(
            target=run_load, args=(base, auth_w, args.rate, stop, load_stats, persons), daemon=True
        )
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        lock = threading.Lock()

        def poll() -> None:
            while not stop.is_set() or (len(seen) < len(sent) and time.time() - t_end < 20):
                r = api.get("/api/v1/segments/probe/members", params={"limit": 1000})
                now = time.time()
                if r.status_code == 200:
                    with lock:
                        for m in r.json()["members"]:
                            seen.setdefault(m["person_id"], now)
                time.sleep(args.poll_every)

        c1_sent: dict[str, float] = {}
        c1_seen: dict[str, float] = {}

        def poll_c1() -> None:
            """The real-time scores of a sample of the probed persons (every 4th): seen when a score of
            the person was computed after the probe was sent. Read through the scores API's own endpoint (scores and
            stage), not the whole profile: the poller must not load the server it measures."""
            while not stop.is_set() or (len(c1_seen) < len(c1_sent) and time.time() - t_end < args.c1_grace):
                with lock:
                    todo = [(p, t) for p, t in c1_sent.items() if p not in c1_seen]
                for p, t in todo:
                    r = api.get(f"/api/v1/scores/persons/{p}")
                    if r.status_code != 200:
                        continue
                    at = [
                        dt.datetime.fromisoformat(v["computed_at"]).timestamp()
                        for v in r.json()["scores"].values()
                    ]
                    if at and max(at) >= t:
                        c1_seen[p] = time.time()
                time.sleep(args.poll_every)

        t_end = float("inf")
        poller = threading.Thread(target=poll, daemon=True)
        c1_poller = threading.Thread(target=poll_c1, daemon=True)
        loader.start()
        time.sleep(2)  # load first, then probes
        poller.start()
        if c1:
            c1_poller.start()
        t_load = time.time()
        k = 0
        with httpx.Client(base_url=base, headers={"Authorization": auth_w}, timeout=30) as probe:
            while time.time() - t_load < args.seconds:
                i = 10 * k + 1  # persons with a user id, never touched by the load (i % 10 = 1)
                k += 1
                pid = f"per_{i:08d}"
                t = time.time()
                r = probe.post(
                    "/v1/track",
                    json={"userId": f"u{i}", "event": "Bench Probe", "messageId": uuid.uuid4().hex},
                )
                if r.status_code == 200:
                    with lock:
                        sent[pid] = t
                        if c1 and k % 4 == 1:
                            c1_sent[pid] = t
                time.sleep(args.probe_every)
        t_end = time.time()
        stop.set()
        loader.join(30)
        poller.join(30)
        if c1:
            c1_poller.join(args.c1_grace + 30)
        lat = [seen[p] - t for p, t in sent.items() if p in seen]
        c1_lat = [c1_seen[p] - t for p, t in c1_sent.items() if p in c1_seen]
        status = api.get("/api/v1/health").status_code
        refresher = api.get("/api/v1/segments/refresher").json()
    finally:
        api.close()
        server.stop()
    load_s = t_end - t_load + 2
    return {
        "workers": workers,
        "server_start_s": round(started, 2),
        "startup_recompute_s": startup_recompute_s,
        "load_events_per_s": round(load_stats["events"] / load_s, 1),
        "load_statuses": load_stats.get("statuses", {}),
        "probes_sent": len(sent),
        "probes_seen": len(lat),
        "latency_p50_s": round(pct(lat, 50), 3) if lat else None,
        "latency_p95_s": round(pct(lat, 95), 3) if lat else None,
        "latency_max_s": round(max(lat), 3) if lat else None,
        "health_after": status,
        "refresher": refresher,
        "c1_realtime": c1,
        "c1_probes_sent": len(c1_sent),
        "c1_probes_seen": len(c1_lat),
        "c1_latency_p50_s": round(pct(c1_lat, 50), 3) if c1_lat else None,
        "c1_latency_p95_s": round(pct(c1_lat, 95), 3) if c1_lat else None,
        "c1_latency_max_s": round(max(c1_lat), 3) if c1_lat else None,
    }


def measure_direct(db: Database, tenant_id: str, n: int, persons: int) -> dict[str, Any]:
    """The same membership update done directly: insert the event, refresh that person's segments."""
    import sqlalchemy as sa

    from medscrm.db import make_engine
    from medscrm.db.schema import events
    from medscrm.segments import fresh

    engine = make_engine(db.url)
    times = []
    with engine.connect() as c:
        plan = fresh.build_plan(c, tenant_id=tenant_id)
    for k in range(n):
        i = 10 * (persons // 20 + k) + 1  # persons with a user id the server run did not probe
        pid = f"per_{i:08d}"
        now = dt.datetime.now(dt.UTC)
        t = time.perf_counter()
        with engine.begin() as c:
            c.execute(
                sa.insert(events).values(
                    id=f"ev_ref_{k}",
                    tenant_id=tenant_id,
                    source_id="ref",
                    message_id=uuid.uuid4().hex,
                    type="track",
                    event="Bench Probe",
                    user_id=f"u{i}",
                    person_id=pid,
                    timestamp=now,
                    received_at=now,
                )
            )
            changed = fresh.refresh_persons(c, tenant_id=tenant_id, person_ids=[pid], plan=plan)
        times.append(time.perf_counter() - t)
        if "probe" not in changed:
            raise RuntimeError(f"direct update did not move {pid} into the probe segment: {changed}")
    engine.dispose()
    return {
        "updates": n,
        "p50_s": round(pct(times, 50), 4),
        "p95_s": round(pct(times, 95), 4),
        "max_s": round(max(times), 4),
    }


def run_engine(kind: str, args, workdir: Path) -> dict[str, Any]:
    persons, events = args.sizes[kind]
    with Database(kind, workdir, args.pg_url, "fresh") as db:
        log(f"{kind}: preparing {persons:,} persons / {events:,} events and 3 dynamic segments ...")
        write_key, token, tenant_id = prepare(db, persons, events, scores_batch=not args.cold_scores)
        log(
            f"{kind}: serving, {args.rate:,.0f} events/s for {args.seconds}s with probes every {args.probe_every}s ..."
        )
        out: dict[str, Any] = {"persons": persons, "events": events, "scores_batch": not args.cold_scores}
        out["server"] = s = measure_server(db, write_key, token, args, persons)
        log(
            f"{kind}: load {s['load_events_per_s']} ev/s, probes {s['probes_seen']}/{s['probes_sent']}, "
            f"p50 {s['latency_p50_s']}s p95 {s['latency_p95_s']}s max {s['latency_max_s']}s"
        )
        out["reference"] = r = measure_direct(db, tenant_id, args.reference_updates, persons)
        log(f"{kind}: direct update p50 {r['p50_s']}s p95 {r['p95_s']}s")
        if s["latency_p50_s"] and r["p50_s"]:
            out["ratio_p50"] = round(s["latency_p50_s"] / r["p50_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--rate", type=float, default=1000.0, help="background events/s")
    ap.add_argument("--seconds", type=float, default=None, help="probe period (load runs 2 s longer)")
    ap.add_argument("--probe-every", type=float, default=0.1)
    ap.add_argument(
        "--poll-every",
        type=float,
        default=0.1,
        help="pause between two reads of the probe segment's members (and of the scores' pending probes); "
        "the latency is rounded up by at most this, and the reads load the server they measure",
    )
    ap.add_argument("--persons", type=int)
    ap.add_argument("--events", type=int)
    ap.add_argument("--reference-updates", type=int, default=50)
    ap.add_argument("--no-c1", action="store_true", help="server without the real-time scores (diagnosis)")
    ap.add_argument(
        "--cold-scores",
        action="store_true",
        help="skip the scheduled scores batch before serving: the real-time refresh then scores every person for the first "
        "time (all tags written), as on a tenant whose batch never ran",
    )
    ap.add_argument("--c1-grace", type=float, default=30.0, help="seconds to wait for scores after the load")
    ap.add_argument(
        "--pg-workers",
        type=int,
        default=1,
        help="`medscrm serve --workers` on PostgreSQL (the refresher runs in one of them)",
    )
    ap.add_argument(
        "--server-src", default="", help="run the server from another source tree (A/B against a baseline)"
    )
    args = ap.parse_args()
    Database.server_src = args.server_src
    mode = "quick" if args.quick else "full"
    if args.no_c1:
        os.environ["MEDSCRM_REALTIME_SCORES"] = "0"
    args.seconds = args.seconds or (15.0 if args.quick else 60.0)
    p = args.persons or (100_000 if args.quick else 1_000_000)
    e = args.events or (1_000_000 if args.quick else 10_000_000)
    args.sizes = {
        "duckdb": (p, e),
        "postgresql": (
            min(p, 20_000 if args.quick else 100_000),
            min(e, 200_000 if args.quick else 5_000_000),
        ),
    }
    result: dict[str, Any] = {
        "benchmark": "segment_freshness",
        "mode": mode,
        "rate_events_per_s": args.rate,
        "server_src": args.server_src or None,
        "load_avg_before": list(os.getloadavg()),
        "c1_realtime": importlib.util.find_spec("medscrm.scores.realtime") is not None,
        "target_p95_s": 1.0,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-fresh-bench-") as tmp:
        for kind in [x.strip() for x in args.engines.split(",") if x.strip()]:
            try:
                result["engines"][kind] = run_engine(kind, args, Path(tmp))
            except Exception as exc:  # report the engine as failed, keep the others
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                result["engines"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
    result["load_avg_after"] = list(os.getloadavg())
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "segment_freshness.json").write_text(text + "\n")
    (RESULTS_DIR / f"segment_freshness.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {
        "mode": mode,
        "c1_realtime": result["c1_realtime"],
        "load_avg_1m": [round(result["load_avg_before"][0], 2), round(result["load_avg_after"][0], 2)],
    }
    if args.server_src:
        summary["server_src"] = args.server_src
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        s = r["server"]
        summary[kind] = {
            "load_ev_s": s["load_events_per_s"],
            "probes": f"{s['probes_seen']}/{s['probes_sent']}",
            "p50_s": s["latency_p50_s"],
            "p95_s": s["latency_p95_s"],
            "max_s": s["latency_max_s"],
            "target_met": s["latency_p95_s"] is not None and s["latency_p95_s"] < 1.0,
            "c1_p50_s": s["c1_latency_p50_s"],
            "c1_p95_s": s["c1_latency_p95_s"],
            "c1_probes": f"{s['c1_probes_seen']}/{s['c1_probes_sent']}",
            "c1_target_met": s["c1_latency_p95_s"] is not None
            and s["c1_latency_p95_s"] < 1.0
            and s["c1_probes_seen"] == s["c1_probes_sent"],
            "scores_batch": r.get("scores_batch"),
            "direct_p50_s": r["reference"]["p50_s"],
            "ratio_p50": r.get("ratio_p50"),
        }
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
