"""HCP360 behaviour model benchmark: batch refresh, per-person (real-time) refresh, micro-segments.

    uv run python benchmarks/scores_refresh.py --quick     # 10k HCPs (~270k events) per engine
    uv run python benchmarks/scores_refresh.py             # 50k HCPs (~1.4M events) per engine

For every engine (a DuckDB file, a throwaway PostgreSQL database), in the same run:

* ``batch``: :func:`medscrm.scores.service.refresh_all` over every HCP (features in SQL, rules, writing
  tags with history and scores) — the first run (everything new) and a second one at the same ``now``
  (nothing changes: the cost of a nightly run on stable data).
* ``reference``: one hand-written SQL statement that reads the same events once and computes, per
  person, the count and the decayed sum of event points (the least any batch must do): ``ratio`` =
  batch (second run) ÷ reference.
* ``realtime``: :func:`medscrm.scores.realtime.refresh_persons` for one person at a time (a new event
  arrived), 100 persons: p50/p95/max latency; beside it a single-person ``SELECT count(*)`` of events
  (reference per-person latency).
* ``micro``: :func:`medscrm.scores.micro.refresh_micro` with k = 6.

Events come from :mod:`medscrm.synth.events` (personas, China-time habits), persons are inserted directly.
Figures go to ``benchmarks/results/scores_refresh.json``; the last line of stdout is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.UTC)
DEPTS = ("心血管内科", "内分泌科", "肿瘤科", "呼吸内科", "肾内科", "全科医学科", "眼科", "老年病科")
TITLES = ("主任医师", "副主任医师", "主治医师", "住院医师")
GRADES = ("三级甲等", "三级甲等", "三级乙等", "二级甲等", "一级")


def build(engine: sa.Engine, n: int) -> tuple[str, list[str], int]:
    from medscrm.accounts import service as accounts
    from medscrm.common import new_id
    from medscrm.db.bulk import append_rows
    from medscrm.db.schema import events, persons
    from medscrm.synth.events import events_for_person

    rng = random.Random(1)
    with engine.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=f"bench-{uuid.uuid4().hex[:8]}")["id"]
    pids: list[str] = []
    total = 0
    for start in range(0, n, 5000):
        prows, erows = [], []
        for _ in range(start, min(n, start + 5000)):
            pid = new_id("per")
            attrs = {
                "department": rng.choice(DEPTS),
                "title": rng.choice(TITLES),
                "hospital_grade": rng.choice(GRADES),
            }
            pids.append(pid)
            prows.append(
                {
                    "id": pid,
                    "tenant_id": tid,
                    "person_type": "hcp",
                    "status": "active",
                    "attributes": attrs,
                    "lineage": {},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            for i, ev in enumerate(events_for_person(pid, attrs, seed=1, now=NOW)):
                erows.append(
                    {
                        "id": new_id("ev"),
                        "tenant_id": tid,
                        "source_id": "src_bench",
                        "message_id": f"{pid}-{i}",
                        "type": "track",
                        "event": ev["event"],
                        "person_id": pid,
                        "timestamp": ev["timestamp"],
                        "received_at": ev["timestamp"],
                        "properties": ev["properties"],
                        "context": ev["context"],
                    }
                )
        with engine.begin() as c:
            append_rows(c, persons, prows)
            append_rows(c, events, erows)
        total += len(erows)
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            c.execute(sa.text("ANALYZE persons"))
            c.execute(sa.text("ANALYZE events"))
            c.commit()
    return tid, pids, total


def reference_batch(engine: sa.Engine, tid: str) -> float:
    """One pass: per person, count and decayed points of the events of 365 days (hand-written SQL)."""
    from medscrm.db.schema import events as e
    from medscrm.scores.config import get_config

    cfg = get_config()
    pts = sa.case(*[(e.c.event == k, float(v)) for k, v in cfg["event_points"].items()], else_=1.0)
    age = (NOW.timestamp() - sa.cast(sa.extract("epoch", e.c.timestamp), sa.Float)) / 86400.0
    q = (
        sa.select(e.c.person_id, sa.func.count(), sa.func.sum(pts * sa.func.exp(-0.0231 * age)))
        .where(
            e.c.tenant_id == tid,
            e.c.timestamp >= NOW - dt.timedelta(days=365),
            e.c.timestamp <= NOW,
        )
        .group_by(e.c.person_id)
    )
    t = time.perf_counter()
    with engine.connect() as c:
        rows = c.execute(q).all()
    assert rows
    return time.perf_counter() - t


def run_engine(kind: str, url: str, n: int) -> dict:
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.db.schema import events
    from medscrm.scores.micro import refresh_micro
    from medscrm.scores.realtime import refresh_persons
    from medscrm.scores.service import refresh_all

    engine = make_engine(url)
    upgrade_to_head(engine)
    t = time.perf_counter()
    tid, pids, n_events = build(engine, n)
    build_s = time.perf_counter() - t
    print(f"[{kind}] {n:,} persons, {n_events:,} events built in {build_s:.1f}s", flush=True)
    out: dict = {"persons": n, "events": n_events}
    for label in ("first", "second"):
        t = time.perf_counter()
        with engine.begin() as c:
            res = refresh_all(c, tenant_id=tid, now=NOW)
        s = time.perf_counter() - t
        out[f"batch_{label}_s"] = round(s, 2)
        out[f"batch_{label}_changed"] = res["changed"]
        print(f"[{kind}] refresh_all ({label}): {s:.2f}s, {n / s:,.0f} persons/s, {res['changed']:,} changed")
    ref = min(reference_batch(engine, tid) for _ in range(2))
    out["reference_s"] = round(ref, 3)
    out["ratio_batch_vs_reference"] = round(out["batch_second_s"] / ref, 2)
    print(f"[{kind}] reference one-pass SQL: {ref:.3f}s; ratio {out['ratio_batch_vs_reference']}×")
    rng = random.Random(2)
    sample = rng.sample(pids, 100)
    lat, ref_lat = [], []
    for pid in sample:
        t = time.perf_counter()
        with engine.begin() as c:
            refresh_persons(c, tenant_id=tid, person_ids=[pid], now=NOW + dt.timedelta(minutes=5))
        lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        with engine.connect() as c:
            c.execute(
                sa.select(sa.func.count())
                .select_from(events)
                .where(events.c.tenant_id == tid, events.c.person_id == pid)
            ).scalar()
        ref_lat.append(time.perf_counter() - t)
    lat.sort()
    ref_lat.sort()
    out["realtime_ms"] = {
        "p50": round(statistics.median(lat) * 1000, 1),
        "p95": round(lat[94] * 1000, 1),
        "max": round(lat[-1] * 1000, 1),
    }
    out["realtime_reference_ms"] = {
        "p50": round(statistics.median(ref_lat) * 1000, 1),
        "p95": round(ref_lat[94] * 1000, 1),
    }
    out["ratio_realtime_vs_reference_p50"] = round(statistics.median(lat) / statistics.median(ref_lat), 1)
    print(
        f"[{kind}] realtime refresh of 1 person: {out['realtime_ms']} (reference {out['realtime_reference_ms']})"
    )
    t = time.perf_counter()
    with engine.begin() as c:
        ms = refresh_micro(c, tenant_id=tid, now=NOW, k=6)
    out["micro_s"] = round(time.perf_counter() - t, 2)
    out["micro_sizes"] = [m["size"] for m in ms]
    print(f"[{kind}] micro-segments k=6: {out['micro_s']}s, sizes {out['micro_sizes']}")
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k persons (default 50k)")
    ap.add_argument("--persons", type=int, default=None)
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = ap.parse_args()
    n = args.persons or (10_000 if args.quick else 50_000)
    mode = "quick" if args.quick else "full"
    results: dict = {
        "benchmark": "scores_refresh",
        "mode": mode,
        "machine": f"{platform.machine()} {platform.system()} py{sys.version_info.major}.{sys.version_info.minor}",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "engines": {},
    }
    for kind in args.engines.split(","):
        if kind == "duckdb":
            with tempfile.TemporaryDirectory() as d:
                results["engines"]["duckdb"] = run_engine("duckdb", f"duckdb:///{Path(d) / 'b.duckdb'}", n)
        elif kind == "postgresql":
            admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            name = f"medscrm_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                results["engines"]["postgresql"] = run_engine(
                    "postgresql", args.pg_url.rsplit("/", 1)[0] + f"/{name}", n
                )
            finally:
                from medscrm.db import reset_engines

                reset_engines()
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "scores_refresh.json").write_text(text + "\n")
    (RESULTS_DIR / f"scores_refresh.{mode}.json").write_text(text + "\n")
    summary = {
        k: {
            "persons": v["persons"],
            "events": v["events"],
            "batch_s": v["batch_second_s"],
            "ratio_batch": v["ratio_batch_vs_reference"],
            "realtime_p95_ms": v["realtime_ms"]["p95"],
            "micro_s": v["micro_s"],
        }
        for k, v in results["engines"].items()
    }
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
