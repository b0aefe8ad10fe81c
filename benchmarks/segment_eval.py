"""Segment evaluation benchmark: our compiled rule vs a hand-written optimal SQL for the same rule.

    uv run python benchmarks/segment_eval.py --quick   # DuckDB 200k persons / 5M events; PostgreSQL 20k / 500k
    uv run python benchmarks/segment_eval.py           # DuckDB 1M / 50M; PostgreSQL 100k / 5M

For each engine, a throwaway database (a DuckDB file in a temp dir, or a fresh PostgreSQL database that
is dropped afterwards) is migrated, then filled **with set-based SQL inside the database** (DuckDB
``range()``, PostgreSQL ``generate_series``): persons with Chinese golden-record attributes (title,
department, city, hospital grade; 1 % merged, 10 % patients), a ``potential_tier`` tag on 60 % of
them, ``user_id`` identities for 30 %, and M events over 365 days, stored in time order as a live
table is (6 event names, JSON properties with a therapy area and minutes; 80 % carry ``person_id``,
20 % only a ``user_id`` that resolves through the identities or to nobody).

The rule has 5 conditions — 2 attributes, 1 tag, 2 event aggregates over the last 90 days::

    title in [主任医师, 副主任医师]  AND department = 心内科  AND potential_tier in [A, B]
    AND count(Article Viewed, 90 days) >= 2  AND sum(Video Played.minutes, 90 days) >= 20

``compiled``: ``COUNT(*)`` over :func:`medscrm.rules.compile_rule`'s query (bound parameters, as the
segments service runs it). ``reference``: a hand-written SQL for the same semantics (events attributed
through ``person_id`` or the ``user_id`` identities, one pass over the events with ``FILTER``
aggregates, joins to the tag and the persons). Both run alternately ``--repeat`` times after a warm-up;
medians are compared (``ratio`` = compiled ÷ reference; floor ≤ 1.5, target ≤ 1.1) and both counts
must be equal. Figures go to ``benchmarks/results/segment_eval.json``; the last stdout line is
``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)

RULE = {
    "and": [
        {"attr": "title", "op": "in", "value": ["主任医师", "副主任医师"]},
        {"attr": "department", "op": "eq", "value": "心内科"},
        {"tag": "potential_tier", "op": "in", "value": ["A", "B"]},
        {"event": "Article Viewed", "op": "gte", "value": 2, "window": {"last": 90, "unit": "days"}},
        {
            "event": "Video Played",
            "agg": "sum",
            "property": "minutes",
            "op": "gte",
            "value": 20,
            "window": {"last": 90, "unit": "days"},
        },
    ]
}

TITLES = ["主任医师", "副主任医师", "主治医师", "住院医师"]
DEPARTMENTS = ["心内科", "呼吸科", "肿瘤科", "内分泌科", "神经内科", "消化内科"]
CITIES = ["北京", "上海", "广州", "成都", "杭州", "武汉", "西安", "南京"]
GRADES = ["三甲", "三乙", "二甲"]
EVENTS = [
    "Article Viewed",
    "Article Viewed",
    "App Opened",
    "Video Played",
    "Webinar Registered",
    "Page Viewed",
]
AREAS = ["心衰", "高血压", "肺癌", "糖尿病", "哮喘"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- throwaway databases ------------------------------------------------------------------------------
class Database:
    """A DuckDB file in ``workdir`` or a fresh PostgreSQL database (dropped on exit)."""

    def __init__(self, kind: str, workdir: Path, pg_url: str, label: str):
        self.kind, self.workdir, self.pg_url = kind, workdir, pg_url
        self.name = f"medscrm_bench_{label}_{os.getpid()}_{random.randrange(10**6)}"
        self.url = ""

    def __enter__(self) -> Database:
        if self.kind == "duckdb":
            self.url = f"duckdb:///{self.workdir / (self.name + '.duckdb')}"
        else:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.pg_url.replace("+psycopg", ""), autocommit=True) as con:
                con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            self.url = f"{self.pg_url.rpartition('/')[0]}/{self.name}"
        return self

    def __exit__(self, *exc: object) -> None:
        from medscrm.db import reset_engines

        reset_engines()
        if self.kind == "postgresql":
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.pg_url.replace("+psycopg", ""), autocommit=True) as con:
                con.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                )


def _arr(dialect: str, values: list[str]) -> str:
    """A constant array literal of our own fixed values (no user input)."""
    inner = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"[{inner}]" if dialect == "duckdb" else f"(ARRAY[{inner}])"


def generate(
    engine, tenant_id: str, persons: int, events: int, *, now: dt.datetime = NOW
) -> dict[str, float]:
    """Fill the tenant with set-based SQL (no row goes through Python). Returns timings (s)."""
    import sqlalchemy as sa

    d = engine.dialect.name
    duck = d == "duckdb"

    def series(n: int) -> str:
        return f"range({n}) t(i)" if duck else f"generate_series(0::bigint, {n} - 1) t(i)"

    def text(x: str) -> str:
        return f"CAST(({x}) AS VARCHAR)"

    def pid(x: str) -> str:
        return f"'per_' || lpad({text(x)}, 8, '0')"

    def h(x: str, k: int) -> str:
        """A cheap deterministic hash of ``x`` in [0, 1000003) (integer on both engines)."""
        return f"CAST((({x}) * {k} + 12345) % 1000003 AS INTEGER)"

    def ts(x: str) -> str:
        """Over the 365 days before now, in insertion order (as a live event table is), ±1 minute."""
        secs = f"(CAST({events} - ({x}) AS DOUBLE PRECISION) * 31536000 / {events} + {h(x, 31)} % 60)"
        return "CAST(:now AS TIMESTAMPTZ) - " + (
            f"to_microseconds(CAST({secs} * 1000000 AS BIGINT))" if duck else f"make_interval(secs => {secs})"
        )

    obj = "json_object" if duck else "jsonb_build_object"
    p = {"t": tenant_id, "now": now}
    timings = {}
    with engine.begin() as c:
        t0 = time.perf_counter()
        c.execute(
            sa.text(
                f"""INSERT INTO persons (id, tenant_id, person_type, status, attributes, created_at, updated_at)
                SELECT {pid("i")}, :t,
                       CASE WHEN i % 10 = 9 THEN 'patient' ELSE 'hcp' END,
                       CASE WHEN i % 100 = 42 THEN 'merged' ELSE 'active' END,
                       {obj}('name', '医生' || {text("i")},
                             'title', {_arr(d, TITLES)}[1 + {h("i", 7)} % 4],
                             'department', {_arr(d, DEPARTMENTS)}[1 + {h("i", 13)} % 6],
                             'city', {_arr(d, CITIES)}[1 + {h("i", 17)} % 8],
                             'hospital_grade', {_arr(d, GRADES)}[1 + {h("i", 19)} % 3]),
                       :now, :now
                FROM {series(persons)}"""
            ),
            p,
        )
        c.execute(
            sa.text(
                f"""INSERT INTO person_tags (tenant_id, person_id, tag_key, value, since, source)
                SELECT :t, {pid("i")}, 'potential_tier', {_arr(d, ["A", "B", "C"])}[1 + {h("i", 23)} % 3], :now, 'import'
                FROM {series(persons)} WHERE {h("i", 29)} % 5 < 3"""
            ),
            p,
        )
        c.execute(
            sa.text(
                f"""INSERT INTO identities (id, tenant_id, type, value, person_id, created_at)
                SELECT 'idn_' || {text("i")}, :t, 'user_id', 'u' || {text("i")}, {pid("i")}, :now
                FROM {series(persons)} WHERE i % 10 < 3"""
            ),
            p,
        )
        timings["persons_s"] = time.perf_counter() - t0
    chunk = 5_000_000
    t0 = time.perf_counter()
    for start in range(0, events, chunk):
        n = min(chunk, events - start)
        idx = f"(i + {start})"
        person = f"(CAST({h(idx, 611953)} AS BIGINT) * 7 + {idx}) % {persons}"
        with engine.begin() as c:
            c.execute(
                sa.text(
                    f"""INSERT INTO events (id, tenant_id, source_id, message_id, type, event, user_id,
                                           person_id, timestamp, received_at, properties)
                    SELECT 'ev_' || {text(idx)}, :t, 'src', 'm' || {text(idx)}, 'track',
                           {_arr(d, EVENTS)}[1 + {h(idx, 37)} % 6],
                           CASE WHEN {idx} % 5 = 0 THEN 'u' || {text(person)} END,
                           CASE WHEN {idx} % 5 <> 0 THEN {pid(person)} END,
                           {ts(idx)},
                           {ts(idx)},
                           {obj}('therapy_area', {_arr(d, AREAS)}[1 + {h(idx, 41)} % 5], 'minutes', {h(idx, 43)} % 30)
                    FROM {series(n)}"""
                ),
                p,
            )
        log(f"  events {start + n:,}/{events:,}")
    timings["events_s"] = time.perf_counter() - t0
    if not duck:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.begin() as c:
            c.execute(sa.text("CHECKPOINT"))
    return timings


# --- the two queries ----------------------------------------------------------------------------------
def reference_sql(dialect: str) -> str:
    """The hand-written optimal SQL for RULE: one pass over the 90-day events with FILTER aggregates."""
    minutes = (
        "TRY_CAST(e.properties->>'minutes' AS DOUBLE)"
        if dialect == "duckdb"
        else "CASE WHEN (e.properties->>'minutes') ~ '^\\s*[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?\\s*$' "
        "THEN CAST(e.properties->>'minutes' AS DOUBLE PRECISION) END"
    )
    return f"""
    WITH ev AS (
        SELECT e.person_id AS pid, e.event, {minutes} AS minutes
        FROM events e
        WHERE e.tenant_id = :t AND e.event IN ('Article Viewed', 'Video Played')
          AND e.timestamp >= :start AND e.timestamp < :now AND e.person_id IS NOT NULL
        UNION ALL
        SELECT u.pid, e.event, {minutes}
        FROM events e
        JOIN (SELECT DISTINCT value AS uid, person_id AS pid FROM identities
              WHERE tenant_id = :t AND type = 'user_id') u ON u.uid = e.user_id
        WHERE e.tenant_id = :t AND e.event IN ('Article Viewed', 'Video Played')
          AND e.timestamp >= :start AND e.timestamp < :now
          AND (e.person_id IS NULL OR e.person_id <> u.pid)
    ), agg AS (
        SELECT pid,
               count(*) FILTER (WHERE event = 'Article Viewed') AS articles,
               coalesce(sum(minutes) FILTER (WHERE event = 'Video Played'), 0) AS video_minutes
        FROM ev GROUP BY pid
    )
    SELECT count(*)
    FROM persons p
    JOIN agg a ON a.pid = p.id
    JOIN person_tags t ON t.tenant_id = :t AND t.person_id = p.id AND t.tag_key = 'potential_tier'
                      AND t.value IN ('A', 'B')
    WHERE p.tenant_id = :t AND p.status = 'active'
      AND p.attributes->>'title' IN ('主任医师', '副主任医师')
      AND p.attributes->>'department' = '心内科'
      AND a.articles >= 2 AND a.video_minutes >= 20
    """


def measure(engine, tenant_id: str, repeat: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from medscrm.rules import compile_rule, parse
    from medscrm.segments.service import context

    with engine.connect() as c:
        t0 = time.perf_counter()
        ctx = context(c, tenant_id=tenant_id)
        q = compile_rule(parse(RULE, ctx), tenant_id=tenant_id, now=NOW, ctx=ctx)
        compile_s = time.perf_counter() - t0
    compiled = sa.select(sa.func.count()).select_from(q.subquery())
    ref = sa.text(reference_sql(engine.dialect.name))
    params = {"t": tenant_id, "now": NOW, "start": NOW - dt.timedelta(days=90)}

    def run_compiled() -> tuple[float, int]:
        with engine.connect() as c:
            t = time.perf_counter()
            n = c.execute(compiled).scalar_one()
            return time.perf_counter() - t, n

    def run_reference() -> tuple[float, int]:
        with engine.connect() as c:
            t = time.perf_counter()
            n = c.execute(ref, params).scalar_one()
            return time.perf_counter() - t, n

    _, n_c = run_compiled()  # warm-up (and page cache)
    _, n_r = run_reference()
    tc, tr = [], []
    for i in range(repeat):
        order = (run_compiled, run_reference) if i % 2 == 0 else (run_reference, run_compiled)
        for fn in order:
            s, n = fn()
            (tc if fn is run_compiled else tr).append(s)
            if (n != n_c) if fn is run_compiled else (n != n_r):
                raise RuntimeError("a query's count changed between runs")
    mc, mr = statistics.median(tc), statistics.median(tr)
    return {
        "count_compiled": n_c,
        "count_reference": n_r,
        "same_count": n_c == n_r,
        "compile_s": round(compile_s, 4),
        "compiled_s": [round(x, 4) for x in tc],
        "reference_s": [round(x, 4) for x in tr],
        "compiled_median_s": round(mc, 4),
        "reference_median_s": round(mr, 4),
        "ratio": round(mc / mr, 3) if mr else None,
    }


def run_engine(kind: str, persons: int, events: int, args, workdir: Path) -> dict[str, Any]:
    from medscrm.accounts import service as accounts
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.tags import service as tags

    with Database(kind, workdir, args.pg_url, "segeval") as db:
        engine = make_engine(db.url)
        upgrade_to_head(engine)
        with engine.begin() as c:
            tenant_id = accounts.ensure_tenant(conn=c, slug="bench")["id"]
            tags.define(
                c, tenant_id=tenant_id, key="potential_tier", value_type="string", category="behaviour_model"
            )
        log(f"{kind}: generating {persons:,} persons / {events:,} events in the database ...")
        gen = generate(engine, tenant_id, persons, events)
        log(f"{kind}: generated in {gen['persons_s'] + gen['events_s']:.1f}s; measuring ...")
        out = {"persons": persons, "events": events, "generate": {k: round(v, 1) for k, v in gen.items()}}
        out.update(measure(engine, tenant_id, args.repeat))
        log(
            f"{kind}: compiled {out['compiled_median_s']:.3f}s, reference {out['reference_median_s']:.3f}s, "
            f"ratio {out['ratio']}, counts {out['count_compiled']} / {out['count_reference']}"
        )
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller data (DuckDB 200k/5M, PostgreSQL 20k/500k)")
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--duck-persons", type=int)
    ap.add_argument("--duck-events", type=int)
    ap.add_argument("--pg-persons", type=int)
    ap.add_argument("--pg-events", type=int)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    sizes = {
        "duckdb": (
            args.duck_persons or (200_000 if args.quick else 1_000_000),
            args.duck_events or (5_000_000 if args.quick else 50_000_000),
        ),
        "postgresql": (
            args.pg_persons or (20_000 if args.quick else 100_000),
            args.pg_events or (500_000 if args.quick else 5_000_000),
        ),
    }
    os.environ.setdefault("MEDSCRM_DUCKDB_MEMORY_LIMIT", "1GB" if args.quick else "4GB")
    result: dict[str, Any] = {
        "benchmark": "segment_eval",
        "mode": mode,
        "rule": RULE,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "floor_ratio": 1.5,
        "target_ratio": 1.1,
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-segeval-") as tmp:
        for kind in [e.strip() for e in args.engines.split(",") if e.strip()]:
            try:
                result["engines"][kind] = run_engine(kind, *sizes[kind], args, Path(tmp))
            except Exception as exc:  # report the engine as failed, keep the others
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                result["engines"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "segment_eval.json").write_text(text + "\n")
    (RESULTS_DIR / f"segment_eval.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode}
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        summary[kind] = {
            "persons": r["persons"],
            "events": r["events"],
            "compiled_s": r["compiled_median_s"],
            "reference_s": r["reference_median_s"],
            "ratio": r["ratio"],
            "floor_met": r["ratio"] is not None and r["ratio"] <= 1.5,
            "target_met": r["ratio"] is not None and r["ratio"] <= 1.1,
            "same_count": r["same_count"],
            "count": r["count_compiled"],
        }
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
