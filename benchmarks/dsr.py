"""Data-subject request benchmark: export and erase of ONE person in a large tenant, on both engines.

    uv run python benchmarks/dsr.py --quick   # 100k persons / 1M events per engine
    uv run python benchmarks/dsr.py           # 1M persons / 10M events

For each engine (a DuckDB file, a fresh PostgreSQL database):

* the tenant is filled with set-based SQL (``segment_eval.generate``: persons with golden records,
  tags, ``user_id`` identities for 30 %, events; then one source record, person_records row and phone
  identity per person, and consents), not the slow synthetic-source path;
* ``reference``: one indexed look-up of the person's rows — ``SELECT * FROM events WHERE tenant_id
  AND person_id`` (the largest table), median of 5;
* ``export``: :func:`medscrm.privacy.service.export` by phone (find the person, read every table, the
  zip with JSON + CSV and the manifest, the request row), median of 3;
* ``erase``: :func:`medscrm.privacy.service.erase` of that person (once: it deletes), in one
  transaction with its certificate and tombstones;
* ``plans``: on PostgreSQL, whether the per-person queries of the biggest tables use an index
  (EXPLAIN); DuckDB reads them with zone-map-pruned scans (no ART index, see migration 0008).

``ratio_export`` / ``ratio_erase`` = the request's time ÷ the reference. Target: erase and export
under 5 s on the embedded default (DuckDB) at 1M persons. Figures go to benchmarks/results/dsr.json
(and dsr.quick.json / dsr.full.json); the last stdout line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
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


def _extras(engine, tenant_id: str, persons: int, now: dt.datetime) -> float:
    """One source record (with its raw row), person_records row, phone identity and consent per person."""
    import sqlalchemy as sa

    duck = engine.dialect.name == "duckdb"
    series = f"range({persons}) t(i)" if duck else f"generate_series(0::bigint, {persons} - 1) t(i)"
    obj = "json_object" if duck else "jsonb_build_object"

    def text(x: str) -> str:
        return f"CAST(({x}) AS VARCHAR)"

    pid = f"'per_' || lpad({text('i')}, 8, '0')"
    phone = f"'+86139' || lpad({text('i')}, 8, '0')"
    t0 = time.perf_counter()
    with engine.begin() as c:
        p = {"t": tenant_id, "now": now}
        c.execute(
            sa.text(
                f"""INSERT INTO source_records (id, tenant_id, source_id, record_key, row_hash, person_type, name,
                                                phone, attributes, raw, received_at)
                SELECT 'sr_' || {text("i")}, :t, 'src', 'crm-' || {text("i")}, md5({text("i")}), 'hcp',
                       '医生' || {text("i")}, {phone}, {obj}(),
                       {obj}('姓名', '医生' || {text("i")}, '手机', {phone}), :now
                FROM {series}"""
            ),
            p,
        )
        c.execute(
            sa.text(
                f"""INSERT INTO person_records (id, tenant_id, person_id, source_record_id, confidence, rule, assigned_at)
                SELECT 'pr_' || {text("i")}, :t, {pid}, 'sr_' || {text("i")}, 1.0, 'singleton', :now FROM {series}"""
            ),
            p,
        )
        c.execute(
            sa.text(
                f"""INSERT INTO identities (id, tenant_id, type, value, person_id, source_record_id, created_at)
                SELECT 'idp_' || {text("i")}, :t, 'phone', {phone}, {pid}, 'sr_' || {text("i")}, :now FROM {series}"""
            ),
            p,
        )
        c.execute(
            sa.text(
                f"""INSERT INTO consents (tenant_id, person_id, channel, purpose, status, source, updated_at)
                SELECT :t, {pid}, 'email', 'marketing', 'granted', 'import', :now FROM {series} WHERE i % 2 = 0"""
            ),
            p,
        )
    if not duck:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


def _plans(engine, tenant_id: str, person_id: str) -> dict[str, Any]:
    """Does each per-person query of the big tables use an index? (PostgreSQL EXPLAIN)"""
    import sqlalchemy as sa

    out: dict[str, Any] = {}
    queries = {
        "events": "SELECT * FROM events WHERE tenant_id = :t AND person_id = :p",
        "identities": "SELECT * FROM identities WHERE tenant_id = :t AND person_id = :p",
        "person_records": "SELECT * FROM person_records WHERE tenant_id = :t AND person_id = :p",
        "person_tags": "SELECT * FROM person_tags WHERE tenant_id = :t AND person_id = :p",
        "consents": "SELECT * FROM consents WHERE tenant_id = :t AND person_id = :p",
        "source_records": "SELECT * FROM source_records WHERE tenant_id = :t AND id = 'sr_1'",
        "segment_history": "SELECT * FROM segment_history WHERE tenant_id = :t AND person_id = :p",
        "journey_step_runs": "SELECT * FROM journey_step_runs WHERE tenant_id = :t AND person_id = :p",
    }
    with engine.connect() as c:
        for name, q in queries.items():
            plan = "\n".join(
                " ".join(str(x) for x in r)
                for r in c.execute(sa.text("EXPLAIN " + q), {"t": tenant_id, "p": person_id})
            )
            empty = c.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar() == 0
            if engine.dialect.name == "postgresql":
                uses = "Index" in plan or "Bitmap" in plan
                out[name] = "index" if uses else ("seq scan (empty table)" if empty else "seq scan")
            else:
                kind = "index scan" if "INDEX_SCAN" in plan.upper() else "table scan (zone maps)"
                out[name] = kind + (" (empty table)" if empty else "")
    return out


def run_engine(kind: str, persons: int, events: int, args, workdir: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    # a serving process has every module loaded: import what a first request would (Arrow, the
    # identity engine's modules) before timing, so the figures are the request's own
    import medscrm.identity.model  # noqa: F401
    import medscrm.ingest.flusher  # noqa: F401
    from medscrm.accounts import service as accounts
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.db.schema import events as events_t
    from medscrm.privacy import service

    with Database(kind, workdir, args.pg_url, "dsr") as db:
        engine = make_engine(db.url)
        upgrade_to_head(engine)
        with engine.begin() as c:
            tenant_id = accounts.ensure_tenant(conn=c, slug="bench")["id"]
        now = dt.datetime.now(dt.UTC)
        log(f"{kind}: generating {persons:,} persons / {events:,} events")
        timings = generate(engine, tenant_id, persons, events, now=now)
        timings["extras_s"] = _extras(engine, tenant_id, persons, now)
        log(f"{kind}: generated {timings}")
        i = (persons // 2) // 10 * 10 + 1  # i % 10 == 1: the person has a user_id identity too
        pid = f"per_{i:08d}"
        phone = f"139{i:08d}"
        ref = []
        with engine.connect() as c:
            for _ in range(5):
                t0 = time.perf_counter()
                n_ref = len(
                    c.execute(
                        sa.select(events_t).where(
                            events_t.c.tenant_id == tenant_id, events_t.c.person_id == pid
                        )
                    ).all()
                )
                ref.append(time.perf_counter() - t0)
        exports = []
        for _ in range(3):
            t0 = time.perf_counter()
            with engine.begin() as c:
                req, blob = service.export(c, tenant_id=tenant_id, identifier=phone, actor="bench")
            exports.append(time.perf_counter() - t0)
        rows = req["result"]["total_rows"]
        t0 = time.perf_counter()
        with engine.begin() as c:
            er = service.erase(c, tenant_id=tenant_id, identifier=phone, actor="bench")
        erase_s = time.perf_counter() - t0
        assert er["status"] == "done", er
        plans = _plans(engine, tenant_id, f"per_{i + 10:08d}")
        engine.dispose()
    reference_s = statistics.median(ref)
    export_s = statistics.median(exports)
    return {
        "persons": persons,
        "events": events,
        "generate": timings,
        "person_rows": rows,
        "person_events": n_ref,
        "zip_bytes": len(blob),
        "reference_s": round(reference_s, 4),
        "export_s": round(export_s, 4),
        "erase_s": round(erase_s, 4),
        "rows_removed": er["certificate"]["total_rows_removed"],
        "ratio_export": round(export_s / reference_s, 1) if reference_s else None,
        "ratio_erase": round(erase_s / reference_s, 1) if reference_s else None,
        "plans": plans,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k persons / 1M events instead of 1M / 10M")
    ap.add_argument("--persons", type=int, help="override the number of persons")
    ap.add_argument("--events", type=int, help="override the number of events")
    ap.add_argument("--engines", default="duckdb,postgresql", help="comma-separated: duckdb, postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    persons = args.persons or (100_000 if args.quick else 1_000_000)
    events = args.events or (1_000_000 if args.quick else 10_000_000)
    result: dict[str, Any] = {
        "benchmark": "dsr",
        "mode": mode,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "target": "export and erase of one person < 5 s on DuckDB at 1M persons",
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-dsr-") as tmp:
        for kind in [e.strip() for e in args.engines.split(",") if e.strip()]:
            try:
                result["engines"][kind] = run_engine(kind, persons, events, args, Path(tmp))
            except Exception as exc:  # report the engine as failed, keep the others
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                result["engines"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "dsr.json").write_text(text + "\n")
    (RESULTS_DIR / f"dsr.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode}
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        summary[kind] = {
            k: r[k]
            for k in (
                "persons",
                "events",
                "reference_s",
                "export_s",
                "erase_s",
                "ratio_export",
                "ratio_erase",
                "rows_removed",
            )
        }
        summary[kind]["under_5s"] = r["export_s"] < 5 and r["erase_s"] < 5
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
