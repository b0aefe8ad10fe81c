"""Profile lookup benchmark: ``GET /api/v1/persons/lookup`` latency under 200 concurrent clients.

    uv run python benchmarks/profile_lookup.py --quick   # 100k persons, 15 s of load per engine
    uv run python benchmarks/profile_lookup.py           # 1M persons (DuckDB; PostgreSQL 200k), 30 s

For each engine (a DuckDB file, a fresh PostgreSQL database):

* the database is filled in place with set-based SQL (``segment_eval.generate``: persons with golden
  records, ``potential_tier`` tags, ``user_id`` identities for 30 %, events), plus consents, scores
  and two dynamic segments, so a profile has tags, segments and scores to show;
* a real ``medscrm serve`` process is started (PostgreSQL: ``--workers`` = ``--pg-workers``, default the
  number of cores; DuckDB allows one process); a load process (asyncio, one keep-alive connection per
  client, no extra dependency) runs ``--clients`` (200) concurrent clients, each looking up a random
  person by ``type=user_id`` for ``--seconds``: p50/p95/p99/max latency, requests/s, statuses (the
  route resolves the identifier, reads the profile and writes the PIPL audit row, as in production);
* ``reference`` (after the server stopped, same database, in this process): the same work the route
  does — :func:`medscrm.profiles.service.lookup` and ``get_profile`` on one connection, then the
  committed audit row — sequentially for ``--reference-lookups`` random persons: p50/p99.
  ``ratio_p50`` = API p50 ÷ in-process p50 (what HTTP + concurrency add); p99 is reported beside it.

Figures go to ``benchmarks/results/profile_lookup.json``; the last stdout line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_events import Database, HttpConn, Server, percentiles, run_in_child  # noqa: E402
from segment_eval import generate  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class GetConn(HttpConn):
    """A keep-alive connection for GET requests (the ingest benchmark's client posts)."""

    async def get(self, path: str) -> int:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("server closed the connection")
        status = int(line.split()[1])
        length, close = 0, False
        while True:
            h = await self.reader.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status


def user_ids(persons: int) -> list[int]:
    """Indexes of persons that have a ``user_id`` identity (``segment_eval.generate``: i % 10 < 3)."""
    return [i for i in range(persons) if i % 10 < 3]


def _lookup_load(port: int, token: str, persons: int, clients: int, seconds: float, out: Any) -> None:
    async def main() -> dict:
        rnd = random.Random(11)
        pool = user_ids(persons)
        statuses: collections.Counter = collections.Counter()
        lat: list[float] = []
        conns = [GetConn("127.0.0.1", port, f"Bearer {token}") for _ in range(clients)]
        await asyncio.gather(*[c.connect() for c in conns])
        t0 = time.time()
        stop = t0 + seconds

        async def worker(c: GetConn) -> None:
            while time.time() < stop:
                path = f"/api/v1/persons/lookup?type=user_id&value=u{rnd.choice(pool)}"
                t = time.perf_counter()
                try:
                    st = await c.get(path)
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    c.close()
                    statuses["conn_error"] += 1
                    await asyncio.sleep(0.05)
                    continue
                lat.append(time.perf_counter() - t)
                statuses[str(st)] += 1
            c.close()

        await asyncio.gather(*[worker(c) for c in conns])
        elapsed = time.time() - t0
        return {
            "clients": clients,
            "seconds": round(elapsed, 2),
            "requests": len(lat),
            "requests_per_s": round(statuses.get("200", 0) / elapsed, 1),
            "statuses": dict(statuses),
            **percentiles(lat),
        }

    out.put(asyncio.run(main()))


def prepare(db: Database, persons: int, events: int) -> tuple[str, str]:
    """Schema, token (CLI), data, consents, scores and segments; returns (token, tenant id)."""
    import sqlalchemy as sa

    from medscrm.db import make_engine
    from medscrm.db.schema import tenants
    from medscrm.segments import service as segs
    from medscrm.tags import service as tags

    _write_key, token = db.setup()
    engine = make_engine(db.url)
    with engine.begin() as c:
        tenant_id = c.execute(sa.select(tenants.c.id).where(tenants.c.slug == "default")).scalar_one()
        tags.define(
            c, tenant_id=tenant_id, key="potential_tier", value_type="string", category="behaviour_model"
        )
    now = dt.datetime.now(dt.UTC)
    generate(engine, tenant_id, persons, events, now=now)
    duck = engine.dialect.name == "duckdb"
    series = f"range({persons})" if duck else f"generate_series(0::bigint, {persons} - 1)"
    pid = "'per_' || lpad(CAST(i AS VARCHAR), 8, '0')"
    with engine.begin() as c:
        c.execute(
            sa.text(
                f"""INSERT INTO consents (tenant_id, person_id, channel, purpose, status, source, updated_at)
                SELECT :t, {pid}, 'sms', 'marketing', 'granted', 'bench', :now FROM {series} t(i) WHERE i % 2 = 0"""
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
        segs.create(
            c,
            tenant_id=tenant_id,
            key="cardio_leaders",
            rule={
                "and": [
                    {"attr": "department", "op": "eq", "value": "心内科"},
                    {"tag": "potential_tier", "op": "in", "value": ["A", "B"]},
                ]
            },
            created_by="bench",
        )
        segs.create(
            c,
            tenant_id=tenant_id,
            key="sms_ok",
            rule={"consent": "sms", "purpose": "marketing"},
            created_by="bench",
        )
    engine.dispose()
    return token, tenant_id


def measure_reference(db: Database, tenant_id: str, persons: int, n: int) -> dict[str, Any]:
    from medscrm.accounts.audit_writer import audit_committed
    from medscrm.db import make_engine
    from medscrm.profiles import service as profiles

    engine = make_engine(db.url)
    rnd = random.Random(13)
    pool = user_ids(persons)
    lat = []
    for _ in range(n):
        value = f"u{rnd.choice(pool)}"
        t = time.perf_counter()
        with engine.connect() as conn:
            pid = profiles.lookup(conn, tenant_id=tenant_id, type_="user_id", value=value)
            profiles.get_profile(
                conn, tenant_id=tenant_id, person_id=pid, role="admin", actor="bench", audit=False
            )
        audit_committed(engine, tenant_id=tenant_id, actor="bench", **profiles.read_audit(pid, "admin"))
        lat.append(time.perf_counter() - t)
    engine.dispose()
    return {"lookups": n, **percentiles(lat)}


def run_engine(kind: str, args, workdir: Path) -> dict[str, Any]:
    persons = args.persons if kind == "duckdb" else min(args.persons, args.pg_persons)
    events = persons * 2
    with Database(kind, workdir, args.pg_url, "lookup") as db:
        log(f"{kind}: preparing {persons:,} persons / {events:,} events ...")
        token, tenant_id = prepare(db, persons, events)
        workers = args.pg_workers if kind == "postgresql" else 1
        server = Server(db, "lookup-server.log", ("--workers", str(workers)))
        try:
            started = server.start(timeout=300)
            log(
                f"{kind}: server ({workers} process(es)) up in {started:.1f}s; "
                f"{args.clients} clients × {args.seconds}s ..."
            )
            time.sleep(2)  # let the refresher's start-up recompute finish
            load = run_in_child(
                _lookup_load,
                server.port,
                token,
                persons,
                args.clients,
                args.seconds,
                timeout=args.seconds + 120,
            )
        finally:
            with contextlib.suppress(Exception):
                server.stop()
            server.kill()
        log(
            f"{kind}: {load.get('requests_per_s')} req/s p50 {load.get('p50_ms')} p99 {load.get('p99_ms')} ms"
        )
        ref = measure_reference(db, tenant_id, persons, args.reference_lookups)
        log(f"{kind}: in-process p50 {ref.get('p50_ms')} p99 {ref.get('p99_ms')} ms")
    out = {"persons": persons, "events": events, "workers": workers, "api": load, "reference": ref}
    if load.get("p50_ms") and ref.get("p50_ms"):
        out["ratio_p50"] = round(load["p50_ms"] / ref["p50_ms"], 2)
        out["ratio_p99"] = round(load["p99_ms"] / ref["p99_ms"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--persons", type=int)
    ap.add_argument(
        "--pg-persons", type=int, default=None, help="PostgreSQL size cap (default 100k quick, 200k)"
    )
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument(
        "--pg-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="`medscrm serve --workers` on PostgreSQL (default: the number of cores)",
    )
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--reference-lookups", type=int, default=300)
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    args.persons = args.persons or (100_000 if args.quick else 1_000_000)
    args.pg_persons = args.pg_persons or (100_000 if args.quick else 200_000)
    args.seconds = args.seconds or (15.0 if args.quick else 30.0)
    result: dict[str, Any] = {
        "benchmark": "profile_lookup",
        "mode": mode,
        "clients": args.clients,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-lookup-bench-") as tmp:
        for kind in [x.strip() for x in args.engines.split(",") if x.strip()]:
            try:
                result["engines"][kind] = run_engine(kind, args, Path(tmp))
            except Exception as exc:  # report the engine as failed, keep the others
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                result["engines"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "profile_lookup.json").write_text(text + "\n")
    (RESULTS_DIR / f"profile_lookup.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode, "clients": args.clients}
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        a, ref = r["api"], r["reference"]
        summary[kind] = {
            "persons": r["persons"],
            "workers": r.get("workers"),
            "rps": a.get("requests_per_s"),
            "p50_ms": a.get("p50_ms"),
            "p99_ms": a.get("p99_ms"),
            "statuses": a.get("statuses"),
            "inprocess_p50_ms": ref.get("p50_ms"),
            "inprocess_p99_ms": ref.get("p99_ms"),
            "ratio_p50": r.get("ratio_p50"),
            "ratio_p99": r.get("ratio_p99"),
        }
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
