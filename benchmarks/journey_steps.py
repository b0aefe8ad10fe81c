"""Journey engine throughput.

* ``transitions`` — N active enrollments (quick 20k, full 100k) of a journey ``split → wait 1s → exit``
  (3 step executions each, the wait's end included in the state). DuckDB: the in-process runner
  (``run_due`` loop, one process, as ``medscrm serve`` runs it). PostgreSQL: 2 ``medscrm worker``
  processes at once. Steps/s = step executions ÷ wall time until every enrollment completed.
  **Reference**: the same state changes done as bulk SQL in the same database — per step one
  ``UPDATE journey_enrollments`` of all rows and one ``INSERT … SELECT`` of their history rows.
  ``ratio`` = reference steps/s ÷ engine steps/s (how far the durable per-enrollment engine is from
  the bulk floor).
* ``segment_entry`` — a dynamic segment's rule changes so that N persons (quick 50k, full 1M) enter it;
  the journey's ``segment_entry`` trigger enrols them and runs their first step. Time from the
  segment refresh commit until every first step has executed (Mautic: days for 1M; target: minutes).

    uv run python benchmarks/journey_steps.py --quick [--engines duckdb,postgresql]

Figures go to ``benchmarks/results/journey_steps.json``; the last stdout line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MEDSCRM = [sys.executable, "-m", "medscrm"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Database:
    """A throwaway database: a DuckDB file in ``workdir`` or a fresh PostgreSQL database (dropped on exit)."""

    def __init__(self, kind: str, workdir: Path, pg_url: str, label: str):
        self.kind, self.workdir, self.pg_url = kind, workdir, pg_url
        self.name = f"medscrm_bench_{label}_{os.getpid()}_{random.randrange(10**6)}"
        self.url = ""

    def __enter__(self) -> Database:
        if self.kind == "duckdb":
            self.url = f"duckdb:///{self.workdir / (self.name + '.duckdb')}"
        else:
            admin = sa.create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = self.pg_url.rsplit("/", 1)[0] + f"/{self.name}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kind == "postgresql":
            admin = sa.create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


def _persons(conn, tenant_id: str, n: int) -> list[str]:
    from medscrm.common import new_id
    from medscrm.db import bulk
    from medscrm.db.schema import persons

    now = dt.datetime.now(dt.UTC)
    ids = []
    for start in range(0, n, 100_000):
        rows = []
        for i in range(start, min(n, start + 100_000)):
            pid = new_id("p")
            ids.append(pid)
            rows.append(
                {
                    "id": pid,
                    "tenant_id": tenant_id,
                    "person_type": "hcp",
                    "status": "active",
                    "attributes": {"name": f"医生{i}", "department": "心血管内科"},
                    "lineage": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        bulk.append_rows(conn, persons, rows)
    return ids


JOURNEY = {
    "name": "bench",
    "triggers": [{"type": "api"}],
    "reentry": {"mode": "always"},
    "steps": [
        {"id": "ab", "type": "split", "branches": [{"weight": 1, "next": "w"}, {"weight": 1, "next": "w"}]},
        {"id": "w", "type": "wait", "duration": "1s", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def _tenant(engine, slug: str, n: int, key: str, definition: dict | None = None) -> tuple[str, list[str]]:
    from medscrm.accounts import service as accounts
    from medscrm.journeys import service as js

    with engine.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=slug)["id"]
        pids = _persons(c, tid, n)
    with engine.begin() as c:
        js.create(c, tenant_id=tid, definition={**(definition or JOURNEY), "key": key}, actor="bench")
        js.start(c, tenant_id=tid, key=key, actor="bench")
    return tid, pids


def _count(engine, tid: str, where_step: str | None = None, status: str | None = None) -> int:
    from medscrm.db.schema import journey_enrollments as e
    from medscrm.db.schema import journey_step_runs as r

    with engine.connect() as c:
        if where_step:
            return int(
                c.execute(
                    sa.select(sa.func.count())
                    .select_from(r)
                    .where(r.c.tenant_id == tid, r.c.step_id == where_step)
                ).scalar()
            )
        return int(
            c.execute(
                sa.select(sa.func.count()).select_from(e).where(e.c.tenant_id == tid, e.c.status == status)
            ).scalar()
        )


def _workers(url: str, slug: str, k: int, logdir: Path) -> list[subprocess.Popen]:
    """Start ``k`` ``medscrm worker`` processes and wait until each is in its loop (startup excluded)."""
    env = {x: v for x, v in os.environ.items() if not x.startswith("MEDSCRM_")}
    env["MEDSCRM_DATABASE_URL"] = url
    procs, logs = [], []
    for i in range(k):
        path = logdir / f"worker-{os.getpid()}-{i}-{random.randrange(10**6)}.log"
        with open(path, "w") as fh:
            procs.append(
                subprocess.Popen(
                    [*MEDSCRM, "worker", "--tenant", slug, "--interval", "0.05", "--id", f"bench-w{i}"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=fh,
                )
            )
        logs.append(path)
    deadline = time.monotonic() + 120
    while not all("running journeys" in p.read_text() for p in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            _stop(procs)
            raise RuntimeError("workers did not start: " + " | ".join(p.read_text()[-300:] for p in logs))
        time.sleep(0.1)
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _run_until(engine, kind: str, tid: str, start, done, timeout: float) -> float:
    """``start()`` (the commit that creates the work), then run until ``done()``: DuckDB in process,
    PostgreSQL by the (already running) worker processes. Returns the seconds from ``start``'s end."""
    from medscrm.journeys import engine as je

    start()
    t0 = time.perf_counter()
    while not done():
        if kind == "duckdb":
            r = je.tick(engine, worker_id="bench", tenant_id=tid, limit=1000, dispatch_sends=False)
            if not (r["steps"] or r["enrolled"]):
                time.sleep(0.05)
        else:
            time.sleep(0.2)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the journey did not finish in time")
    return time.perf_counter() - t0


def transitions(kind: str, url: str, n: int, workers: int, logdir: Path) -> dict[str, Any]:
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.journeys import service as js

    engine = make_engine(url)
    upgrade_to_head(engine)
    slug = f"bench-steps-{os.getpid()}"
    tid, pids = _tenant(engine, slug, n, "steps")
    timing: dict[str, float] = {}

    def start() -> None:
        t0 = time.perf_counter()
        with engine.begin() as c:
            js.enroll(c, tenant_id=tid, key="steps", person_ids=pids, actor="bench")
        timing["enroll"] = time.perf_counter() - t0

    procs = _workers(url, slug, workers, logdir) if kind == "postgresql" else []
    try:
        secs = _run_until(
            engine, kind, tid, start, lambda: _count(engine, tid, status="completed") >= n, 1800
        )
    finally:
        _stop(procs)
    enroll_s = timing["enroll"]
    steps = 3 * n
    got = (
        _count(engine, tid, where_step="ab")
        + _count(engine, tid, where_step="w")
        + _count(engine, tid, where_step="done")
    )
    ref = reference(engine, n)
    engine.dispose()
    rate = steps / secs
    return {
        "enrollments": n,
        "enroll_seconds": round(enroll_s, 2),
        "step_executions": got,
        "seconds": round(secs, 2),
        "steps_per_s": round(rate),
        "runner": "in-process run_due loop" if kind == "duckdb" else f"{workers} medscrm worker processes",
        "reference_steps_per_s": round(ref["steps_per_s"]),
        "reference_seconds": ref["seconds"],
        "ratio": round(ref["steps_per_s"] / rate, 1),
        "complete": got == steps,
    }


def reference(engine, n: int) -> dict[str, Any]:
    """The same three step transitions of ``n`` enrollments as bulk SQL: per step one UPDATE of every
    enrollment's state and one INSERT … SELECT of the history rows."""
    from medscrm.db.schema import journey_enrollments as e
    from medscrm.db.schema import journey_step_runs as r
    from medscrm.journeys import service as js

    slug = f"bench-ref-{os.getpid()}"
    tid, pids = _tenant(engine, slug, n, "ref")
    with engine.begin() as c:
        js.enroll(c, tenant_id=tid, key="ref", person_ids=pids, actor="bench")
    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    for step, stype, outcome, nxt, state in (
        ("ab", "split", "done", "w", "enter"),
        ("w", "wait", "waiting", "w", "waiting"),
        ("done", "exit", "done", None, "enter"),
    ):
        with engine.begin() as c:
            sel = sa.select(
                (sa.literal("r_") + sa.func.md5(e.c.id + sa.literal(":" + step))).label("id"),
                e.c.tenant_id,
                e.c.journey_id,
                e.c.version,
                e.c.id.label("enrollment_id"),
                e.c.person_id,
                sa.literal(step).label("step_id"),
                sa.literal(stype).label("step_type"),
                sa.literal(1).label("visit"),
                (e.c.id + sa.literal(f":{step}:1")).label("idempotency_key"),
                sa.literal(outcome).label("outcome"),
                sa.literal("ref").label("worker_id"),
                sa.literal(now, sa.DateTime(timezone=True)).label("executed_at"),
            ).where(e.c.tenant_id == tid)
            cols = [
                "id", "tenant_id", "journey_id", "version", "enrollment_id", "person_id", "step_id",
                "step_type", "visit", "idempotency_key", "outcome", "worker_id", "executed_at",
            ]  # fmt: skip
            c.execute(r.insert().from_select(cols, sel))
            values: dict[str, Any] = {"step_state": state, "updated_at": now, "visits": {step: 1}}
            if nxt is None:
                values.update(status="completed", next_run_at=None, finished_at=now)
            else:
                values.update(current_step=nxt, next_run_at=now)
            c.execute(sa.update(e).where(e.c.tenant_id == tid).values(**values))
    secs = time.perf_counter() - t0
    return {"seconds": round(secs, 2), "steps_per_s": 3 * n / secs}


SEGMENT_JOURNEY = {
    "name": "segment entry",
    "triggers": [{"type": "segment_entry", "segment": "bench_seg"}],
    "steps": [
        {
            "id": "first",
            "type": "split",
            "branches": [{"weight": 1, "next": "w"}, {"weight": 1, "next": "w"}],
        },
        {"id": "w", "type": "wait", "duration": "30d", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def segment_entry(kind: str, url: str, n: int, workers: int, logdir: Path) -> dict[str, Any]:
    from medscrm.accounts import service as accounts
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.journeys import service as js
    from medscrm.segments import service as segs

    engine = make_engine(url)
    upgrade_to_head(engine)
    slug = f"bench-seg-{os.getpid()}"
    with engine.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=slug)["id"]
        _persons(c, tid, n)
    with engine.begin() as c:
        segs.create(c, tenant_id=tid, key="bench_seg", rule={"attr": "name", "op": "eq", "value": "nobody"})
        js.create(c, tenant_id=tid, definition={**SEGMENT_JOURNEY, "key": "seg"}, actor="bench")
        js.start(c, tenant_id=tid, key="seg", actor="bench")
    out: dict[str, Any] = {}

    def start() -> None:  # the segment's rule changes: n persons enter it
        t0 = time.perf_counter()
        with engine.begin() as c:
            out["seg"] = segs.update(c, tenant_id=tid, key="bench_seg", rule={"person_type": "hcp"})
        out["refresh"] = time.perf_counter() - t0

    procs = _workers(url, slug, workers, logdir) if kind == "postgresql" else []
    try:
        secs = _run_until(
            engine, kind, tid, start, lambda: _count(engine, tid, where_step="first") >= n, 3600
        )
    finally:
        _stop(procs)
    seg, refresh_s = out["seg"], out["refresh"]
    secs += refresh_s  # from the start of the refresh (its commit is when people enter)
    first = _count(engine, tid, where_step="first")
    engine.dispose()
    return {
        "persons": n,
        "entered_segment": int(seg["member_count"]),
        "segment_refresh_seconds": round(refresh_s, 2),
        "seconds_until_all_first_steps": round(secs, 2),
        "first_steps_per_s": round(first / secs),
        "first_steps": first,
        "runner": "in-process" if kind == "duckdb" else f"{workers} medscrm worker processes",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="20k enrollments, 50k-person segment (full: 100k, 1M)"
    )
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--enrollments", type=int, default=None)
    ap.add_argument("--segment", type=int, default=None, help="persons entering the segment")
    ap.add_argument("--workers", type=int, default=2, help="PostgreSQL worker processes")
    ap.add_argument("--only", choices=("transitions", "segment"), default=None, help="run one part only")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    n = args.enrollments or (20_000 if args.quick else 100_000)
    m = args.segment or (50_000 if args.quick else 1_000_000)
    result: dict[str, Any] = {
        "benchmark": "journey_steps",
        "mode": mode,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-journey-bench-") as tmp:
        for kind in [e.strip() for e in args.engines.split(",") if e.strip()]:
            r: dict[str, Any] = {}
            try:
                if args.only != "segment":
                    with Database(kind, Path(tmp), args.pg_url, "steps") as db:
                        log(f"{kind}: transitions with {n:,} enrollments ...")
                        t = r["transitions"] = transitions(kind, db.url, n, args.workers, Path(tmp))
                        log(
                            f"{kind}: {t['steps_per_s']:,} steps/s (bulk SQL {t['reference_steps_per_s']:,}/s)"
                        )
                if args.only != "transitions":
                    with Database(kind, Path(tmp), args.pg_url, "seg") as db:
                        log(f"{kind}: a {m:,}-person segment entering the journey ...")
                        s = r["segment_entry"] = segment_entry(kind, db.url, m, args.workers, Path(tmp))
                        log(
                            f"{kind}: every first step ran {s['seconds_until_all_first_steps']}s after the refresh"
                        )
            except Exception as exc:
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                r["error"] = f"{type(exc).__name__}: {exc}"
            result["engines"][kind] = r
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.only is None:
        (RESULTS_DIR / "journey_steps.json").write_text(text + "\n")
    (RESULTS_DIR / f"journey_steps.{mode}{'.' + args.only if args.only else ''}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode}
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        summary[kind] = {}
        if "transitions" in r:
            t = r["transitions"]
            summary[kind].update(
                steps_per_s=t["steps_per_s"],
                reference_steps_per_s=t["reference_steps_per_s"],
                ratio=t["ratio"],
            )
        if "segment_entry" in r:
            s = r["segment_entry"]
            summary[kind].update(
                segment_persons=s["persons"], segment_seconds=s["seconds_until_all_first_steps"]
            )
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
