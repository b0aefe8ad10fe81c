"""Retention benchmark: a dry run and real runs (delete, anonymise) of the ``events`` category in a
large tenant, on both engines, beside one bulk SQL statement doing the same to the same volume.

    uv run python benchmarks/retention.py --quick   # 50k persons / 1M events (DuckDB), 20k / 300k (PostgreSQL)
    uv run python benchmarks/retention.py           # 200k / 5M (DuckDB), 100k / 1M (PostgreSQL)

The tenant is filled with set-based SQL (``segment_eval.generate``: events spread over the 365 days
before now, in insertion order). Four windows of 45 days each are then expired, oldest first:

* ``reference_delete``: one ``DELETE FROM events WHERE tenant_id AND timestamp < now-320d``;
* ``run_delete``: :func:`medscrm.privacy.retention.run` with ``events`` kept 275 days, ``delete``
  (days 275–320), after its dry run (``dry_run_s``: the per-category report alone);
* ``reference_anonymise``: one bulk ``UPDATE`` blanking the personal columns of days 230–275;
* ``run_anonymise``: retention with ``events`` kept 185 days, ``anonymise`` (days 185–230).

Retention works in batches of 5,000 ids, a transaction each (bounded locks and memory); the ratios
``ratio_delete`` / ``ratio_anonymise`` are its rows/s ÷ the single statement's rows/s on this run's
machine. Figures go to benchmarks/results/retention.json (and .quick/.full); the last stdout line is
``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_events import Database  # noqa: E402
from segment_eval import generate  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_engine(kind: str, persons: int, events: int, args, workdir: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    from medscrm.accounts import service as accounts
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.db.schema import events as ev
    from medscrm.privacy import retention

    with Database(kind, workdir, args.pg_url, "retention") as db:
        engine = make_engine(db.url)
        upgrade_to_head(engine)
        with engine.begin() as c:
            tenant_id = accounts.ensure_tenant(conn=c, slug="bench")["id"]
            for cat in retention.CATEGORIES:  # only the events category runs
                if cat != "events":
                    retention.set_policy(c, tenant_id=tenant_id, category=cat, actor="bench", enabled=False)
        now = dt.datetime.now(dt.UTC)
        log(f"{kind}: generating {persons:,} persons / {events:,} events")
        timings = generate(engine, tenant_id, persons, events, now=now)
        log(f"{kind}: generated {timings}")

        def days(n: int) -> dt.datetime:
            return now - dt.timedelta(days=n)

        def allow(c) -> None:
            if c.dialect.name == "postgresql":
                c.exec_driver_sql("SET LOCAL medscrm.retention = 'on'")

        t0 = time.perf_counter()
        with engine.begin() as c:
            allow(c)
            ref_del = c.execute(
                sa.delete(ev).where(ev.c.tenant_id == tenant_id, ev.c.timestamp < days(320))
            ).rowcount
        ref_del_s = time.perf_counter() - t0

        def policy(keep: int, action: str) -> None:
            with engine.begin() as c:
                retention.set_policy(
                    c, tenant_id=tenant_id, category="events", actor="bench", keep_days=keep, action=action
                )

        policy(275, "delete")
        t0 = time.perf_counter()
        dry = retention.run(engine, tenant_id=tenant_id, actor="bench", dry_run=True, now=now)
        dry_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        real = retention.run(engine, tenant_id=tenant_id, actor="bench", now=now)
        run_del_s = time.perf_counter() - t0
        run_del = real["result"]["events"]["done"]
        assert run_del == dry["result"]["events"]["rows"], (real, dry)

        blank = {c: sa.null() for c in retention.CATEGORIES["events"].anonymise}
        t0 = time.perf_counter()
        with engine.begin() as c:
            allow(c)
            ref_an = c.execute(
                sa.update(ev)
                .where(ev.c.tenant_id == tenant_id, ev.c.timestamp < days(230), ev.c.timestamp >= days(275))
                .values(**blank)
            ).rowcount
        ref_an_s = time.perf_counter() - t0

        policy(185, "anonymise")
        t0 = time.perf_counter()
        an = retention.run(engine, tenant_id=tenant_id, actor="bench", now=now)
        run_an_s = time.perf_counter() - t0
        run_an = an["result"]["events"]["done"]
        with engine.connect() as c:
            left = c.execute(
                sa.select(sa.func.count()).where(
                    ev.c.tenant_id == tenant_id, ev.c.timestamp < days(185), ev.c.person_id.isnot(None)
                )
            ).scalar()
        assert left == 0, left
        engine.dispose()

    def rate(n: int, s: float) -> float:
        return round(n / s) if s else 0.0

    return {
        "persons": persons,
        "events": events,
        "generate": timings,
        "reference_delete": {
            "rows": ref_del,
            "s": round(ref_del_s, 3),
            "rows_per_s": rate(ref_del, ref_del_s),
        },
        "dry_run_s": round(dry_s, 3),
        "run_delete": {"rows": run_del, "s": round(run_del_s, 3), "rows_per_s": rate(run_del, run_del_s)},
        "reference_anonymise": {
            "rows": ref_an,
            "s": round(ref_an_s, 3),
            "rows_per_s": rate(ref_an, ref_an_s),
        },
        "run_anonymise": {"rows": run_an, "s": round(run_an_s, 3), "rows_per_s": rate(run_an, run_an_s)},
        "ratio_delete": round(rate(ref_del, ref_del_s) / max(rate(run_del, run_del_s), 1), 1),
        "ratio_anonymise": round(rate(ref_an, ref_an_s) / max(rate(run_an, run_an_s), 1), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller tenants (see the module)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the sizes (e.g. 0.05 for a smoke run)")
    ap.add_argument("--engines", default="duckdb,postgresql", help="comma-separated: duckdb, postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    sizes = {
        "duckdb": (50_000, 1_000_000) if args.quick else (200_000, 5_000_000),
        "postgresql": (20_000, 300_000) if args.quick else (100_000, 1_000_000),
    }
    result: dict[str, Any] = {
        "benchmark": "retention",
        "mode": mode,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-retention-") as tmp:
        for kind in [e.strip() for e in args.engines.split(",") if e.strip()]:
            try:
                persons, events = (int(n * args.scale) for n in sizes[kind])
                result["engines"][kind] = run_engine(kind, persons, events, args, Path(tmp))
            except Exception as exc:  # report the engine as failed, keep the others
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                result["engines"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "retention.json").write_text(text + "\n")
    (RESULTS_DIR / f"retention.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode}
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        summary[kind] = {
            "events": r["events"],
            "dry_run_s": r["dry_run_s"],
            "delete_rows_per_s": r["run_delete"]["rows_per_s"],
            "anonymise_rows_per_s": r["run_anonymise"]["rows_per_s"],
            "ratio_delete": r["ratio_delete"],
            "ratio_anonymise": r["ratio_anonymise"],
        }
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
