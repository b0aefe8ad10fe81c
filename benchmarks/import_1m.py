"""Import benchmark: medscrm's file importer against each engine's raw bulk load, on a Chinese CRM export.

    uv run python benchmarks/import_1m.py            # 1,000,000 rows, DuckDB and PostgreSQL
    uv run python benchmarks/import_1m.py --quick    # 200,000 rows (+ a 50,000-row memory check)
    uv run python benchmarks/import_1m.py --rows 50000 --engines duckdb

For every engine, in the same run and on the same file:

* ``medscrm``: :func:`medscrm.ingest.importer.import_file` (read → map → normalise → stage → commit,
  bad rows quarantined) into a fresh database;
* ``reference``: the engine's own bulk load of the file as text columns (DuckDB ``read_csv``, PostgreSQL
  ``COPY ... FROM STDIN``) into a fresh database; ``ratio`` = medscrm seconds / reference seconds.

Each measurement runs in its own spawned child process, so that the peak RSS (the child's
``getrusage`` high-water mark) belongs to that one load. The time is that of the load alone (schema
setup excluded). For PostgreSQL the server backend is another process: its peak RSS, sampled with
psutil, is reported separately (``server_peak_rss_mib``) when it can be read.

The generated CSV is deterministic and cached under ``$TMPDIR/medscrm-bench`` keyed by the row count.
Figures go to ``benchmarks/results/import_1m.json`` (and ``import_1m.<mode>.json``); the last line of
stdout is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import psutil

GENERATOR_VERSION = 1
SEED = 20240601
COLUMNS = ["客户编号", "姓名", "性别", "医院", "科室", "职称", "城市", "省份", "手机", "邮箱", "执业证书编码"]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MIB = 1024 * 1024

# --- synthetic CRM export ------------------------------------------------------------------------------

SURNAMES = (
    ("王", 712), ("李", 700), ("张", 674), ("刘", 538), ("陈", 453), ("杨", 308), ("黄", 223), ("赵", 215),
    ("吴", 205), ("周", 190), ("徐", 145), ("孙", 138), ("马", 129), ("朱", 125), ("胡", 116), ("郭", 115),
    ("何", 106), ("林", 106), ("高", 100), ("罗", 95), ("郑", 90), ("梁", 86), ("谢", 75), ("宋", 70),
    ("唐", 70), ("许", 65), ("韩", 60), ("冯", 60), ("邓", 58), ("曹", 55), ("彭", 55), ("曾", 53),
    ("肖", 50), ("田", 50), ("董", 48), ("袁", 45), ("潘", 44), ("于", 44), ("蒋", 43), ("蔡", 42),
    ("余", 42), ("杜", 40), ("叶", 40), ("程", 38), ("苏", 37), ("魏", 36), ("吕", 35), ("丁", 35),
    ("任", 34), ("沈", 33), ("姚", 32), ("卢", 32), ("姜", 30), ("崔", 30), ("钟", 30), ("谭", 29),
    ("陆", 28), ("汪", 27), ("范", 27), ("金", 26), ("石", 26), ("廖", 25), ("贾", 25), ("夏", 24),
    ("单", 4), ("覃", 13), ("欧阳", 4), ("司马", 1), ("诸葛", 1), ("上官", 1),
)  # fmt: skip
GIVEN_MALE = "伟强磊洋勇军杰涛超明刚平辉鹏华飞鑫波斌宇浩凯健俊峰建国志文博晨昊天宏亮东海林永"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英玲燕婷雪慧颖琳晶倩瑶欣怡佳梅兰红洁丹萍莉蓉悦琪雯璐"
GIVEN_ANY = "子一思嘉雨晓文明志春秋云新国家小金海德安宁正永"
DEPARTMENTS = (
    "心内科", "心血管内科", "呼吸与危重症医学科", "呼吸内科", "肿瘤内科", "肿瘤科", "内分泌科", "神经内科",
    "消化内科", "普外科", "骨科", "儿科", "妇产科", "急诊科", "肾内科", "血液科", "风湿免疫科", "眼科",
)  # fmt: skip
TITLES = (
    ("主任医师", 12), ("副主任医师", 20), ("主治医师", 35), ("住院医师", 25), ("医师", 4),
    ("主任医师、教授", 2), ("副教授/副主任医师", 2),
)  # fmt: skip
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157",
    "158", "159", "166", "177", "180", "181", "182", "185", "186", "187", "188", "189", "198", "199",
)  # fmt: skip
EMAIL_DOMAINS = ("163.com", "126.com", "qq.com", "sina.com", "139.com", "hotmail.com", "gmail.com")
FALLBACK_HOSPITALS = (
    {"name": "中国医学科学院北京协和医院", "aliases": ["北京协和医院", "协和医院"], "city": "北京", "province": "北京"},
    {"name": "复旦大学附属中山医院", "aliases": ["中山医院"], "city": "上海", "province": "上海"},
    {"name": "四川大学华西医院", "aliases": ["华西医院"], "city": "成都", "province": "四川"},
    {"name": "中山大学附属第一医院", "aliases": ["中山一院"], "city": "广州", "province": "广东"},
    {"name": "浙江大学医学院附属第一医院", "aliases": ["浙大一院"], "city": "杭州", "province": "浙江"},
    {"name": "华中科技大学同济医学院附属同济医院", "aliases": ["同济医院"], "city": "武汉", "province": "湖北"},
    {"name": "中南大学湘雅医院", "aliases": ["湘雅医院"], "city": "长沙", "province": "湖南"},
    {"name": "山东大学齐鲁医院", "aliases": ["齐鲁医院"], "city": "济南", "province": "山东"},
)  # fmt: skip
MUNICIPALITIES = {"北京", "上海", "天津", "重庆"}


def _hospitals() -> list[dict[str, Any]]:
    try:
        from medscrm.reference import load_hospitals

        hs = [h for h in load_hospitals() if h.get("name") and h.get("city")]
        if hs:
            return hs
    except Exception:  # the reference module is optional here: fall back to a built-in list
        pass
    return [dict(h) for h in FALLBACK_HOSPITALS]


def _phone(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.02:
        return ""
    digits = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
    if r < 0.03:  # ~1% invalid: letter O for zero, truncated, or trailing digits
        kind = rng.randrange(3)
        if kind == 0:
            return digits[:3] + "OO" + digits[5:]
        if kind == 1:
            return digits[:7]
        return digits + f"{rng.randrange(100):02d}"
    fmt = rng.randrange(6)
    if fmt == 0:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if fmt == 1:
        return "+86-" + digits
    if fmt == 2:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if fmt == 3:
        return f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    return digits  # the plain form is the most common


def _rows(n: int, rng: random.Random) -> Any:
    hospitals = _hospitals()
    surnames = [s for s, _ in SURNAMES]
    surname_cum = []
    acc = 0
    for _, w in SURNAMES:
        acc += w
        surname_cum.append(acc)
    titles = [t for t, _ in TITLES]
    title_w = [w for _, w in TITLES]
    choice, rand, randrange = rng.choice, rng.random, rng.randrange
    for i in range(n):
        female = rand() < 0.48
        pool = GIVEN_FEMALE if female else GIVEN_MALE
        given = choice(pool) if rand() < 0.35 else choice(GIVEN_ANY + pool) + choice(pool)
        name = rng.choices(surnames, cum_weights=surname_cum)[0] + given
        h = choice(hospitals)
        aliases = h.get("aliases") or []
        hospital = choice(aliases) if aliases and rand() < 0.3 else h["name"]
        province = h.get("province") or ""
        if province and province not in MUNICIPALITIES and rand() < 0.5:
            province += "省"
        r = rand()
        if r < 0.4:
            email = ""
        elif r < 0.6:
            email = f"{randrange(10_000, 3_000_000_000)}@qq.com"
        else:
            handle = "".join(choice("abcdefghijklmnopqrstuvwxyz") for _ in range(randrange(4, 9)))
            email = f"{handle}{randrange(1000)}@{choice(EMAIL_DOMAINS)}"
        license_no = f"1{randrange(10, 66)}{randrange(10**11, 10**12)}" if rand() < 0.85 else ""
        yield (
            f"KH{i + 1:08d}",
            name,
            "女" if female else "男",
            hospital,
            choice(DEPARTMENTS),
            rng.choices(titles, title_w)[0],
            h["city"],
            province,
            _phone(rng),
            email,
            license_no,
        )


def generate_csv(n: int, cache_dir: Path) -> tuple[Path, float, bool]:
    """Return (path, seconds spent generating, whether it came from the cache)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"crm_export_{n}_v{GENERATOR_VERSION}.csv"
    if path.exists() and path.stat().st_size > 0:
        return path, 0.0, True
    t0 = time.perf_counter()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    rng = random.Random(SEED)
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        chunk: list[tuple[str, ...]] = []
        for row in _rows(n, rng):
            chunk.append(row)
            if len(chunk) >= 10_000:
                w.writerows(chunk)
                chunk.clear()
        w.writerows(chunk)
    tmp.replace(path)
    return path, time.perf_counter() - t0, False


# --- child processes -----------------------------------------------------------------------------------


def _maxrss_mib() -> float:
    # Linux reports KiB, macOS bytes
    v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return v / MIB if sys.platform == "darwin" else v / 1024


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _child_medscrm(engine_kind: str, url: str, csv_path: str, q: Any) -> dict[str, Any]:
    from medscrm.accounts.service import ensure_tenant
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.ingest.importer import import_file
    from medscrm.ingest.mapping import Mapping

    engine = make_engine(url)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        tenant = ensure_tenant(conn=conn, slug="bench")
    if engine_kind == "postgresql":
        with engine.connect() as conn:
            q.put(("server_pid", conn.exec_driver_sql("select pg_backend_pid()").scalar()))
    rss_before = _rss_mib()
    maxrss_before = _maxrss_mib()

    def progress(done: int, _bytes: int) -> None:
        q.put(("progress", done))

    t0 = time.perf_counter()
    report = import_file(
        engine=engine,
        tenant_id=tenant["id"],
        source="crm-export",
        path=csv_path,
        mapping=Mapping(source="crm-export", person_type="hcp", record_key="客户编号"),
        on_progress=progress,
    )
    seconds = time.perf_counter() - t0
    peak = _maxrss_mib()
    import sqlalchemy as sa

    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from source_records")).scalar()
        quarantined = conn.execute(sa.text("select count(*) from quarantine")).scalar()
    engine.dispose()
    if report.status != "committed":
        raise RuntimeError(f"import failed: {report.error}")
    return {
        "seconds": seconds,
        "rows_total": report.rows_total,
        "accepted": report.rows_accepted,
        "rejected": report.rows_rejected,
        "duplicate": report.rows_duplicate,
        "stored": stored,
        "quarantined": quarantined,
        "rss_before_mib": rss_before,
        "maxrss_before_mib": maxrss_before,
        "peak_rss_mib": peak,
    }


def _child_reference(engine_kind: str, url: str, csv_path: str, q: Any) -> dict[str, Any]:
    if engine_kind == "duckdb":
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb:///"))
        rss_before, maxrss_before = _rss_mib(), _maxrss_mib()
        path_sql = csv_path.replace("'", "''")
        t0 = time.perf_counter()
        con.execute(
            f"CREATE TABLE raw AS SELECT * FROM read_csv('{path_sql}', all_varchar=true, header=true)"
        )
        seconds = time.perf_counter() - t0
        peak = _maxrss_mib()
        rows = con.execute("select count(*) from raw").fetchone()[0]
        con.close()
    else:
        import psycopg
        from psycopg import sql

        with psycopg.connect(_pg_conninfo(url)) as con:
            q.put(("server_pid", con.execute("select pg_backend_pid()").fetchone()[0]))
            cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in COLUMNS)
            con.execute(sql.SQL("CREATE TABLE raw ({})").format(cols))
            con.commit()
            rss_before, maxrss_before = _rss_mib(), _maxrss_mib()
            t0 = time.perf_counter()
            with con.cursor() as cur:
                with (
                    cur.copy("COPY raw FROM STDIN (FORMAT csv, HEADER true)") as cp,
                    open(csv_path, "rb") as fh,
                ):
                    while chunk := fh.read(1 << 20):
                        cp.write(chunk)
                rows = cur.rowcount
            con.commit()
            seconds = time.perf_counter() - t0
            peak = _maxrss_mib()
    return {
        "seconds": seconds,
        "rows_total": rows,
        "rss_before_mib": rss_before,
        "maxrss_before_mib": maxrss_before,
        "peak_rss_mib": peak,
    }


def _child_main(kind: str, engine_kind: str, url: str, csv_path: str, q: Any) -> None:
    try:
        fn = _child_medscrm if kind == "medscrm" else _child_reference
        q.put(("result", fn(engine_kind, url, csv_path, q)))
    except BaseException:
        q.put(("error", traceback.format_exc()))


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_child(kind: str, engine_kind: str, url: str, csv_path: Path, timeout: float) -> dict[str, Any]:
    """Run one load in a spawned child; sample the child's (and the PG backend's) RSS meanwhile."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child_main, args=(kind, engine_kind, url, str(csv_path), q), daemon=True)
    t_start = time.perf_counter()
    p.start()
    child = psutil.Process(p.pid)
    server: psutil.Process | None = None
    sampled_peak = server_peak = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    last_log = 0.0
    while result is None and error is None:
        try:
            msg, payload = q.get(timeout=0.05)
        except queue.Empty:
            msg, payload = None, None
        if msg == "result":
            result = payload
        elif msg == "error":
            error = payload
        elif msg == "server_pid":
            try:
                server = psutil.Process(payload)
            except psutil.Error:
                server = None
        elif msg == "progress" and time.perf_counter() - last_log > 5:
            last_log = time.perf_counter()
            _log(f"  {engine_kind}/{kind}: {payload:,} rows")
        with contextlib.suppress(psutil.Error):
            sampled_peak = max(sampled_peak, child.memory_info().rss / MIB)
        if server is not None:
            try:
                server_peak = max(server_peak, server.memory_info().rss / MIB)
            except psutil.Error:
                server = None
        if result is None and error is None:
            if not p.is_alive() and q.empty():
                error = f"child exited with code {p.exitcode} without a result"
            elif time.perf_counter() - t_start > timeout:
                p.kill()
                error = f"timed out after {timeout:.0f}s"
    p.join(30)
    if error:
        raise RuntimeError(f"{engine_kind}/{kind}: {error}")
    assert result is not None
    rows = result["rows_total"]
    result["rows_per_s"] = rows / result["seconds"] if result["seconds"] else None
    result["sampled_peak_rss_mib"] = sampled_peak
    if server_peak:
        result["server_peak_rss_mib"] = server_peak
    result["child_wall_s"] = time.perf_counter() - t_start
    return result


# --- databases -----------------------------------------------------------------------------------------


class Target:
    """A fresh, throwaway database for one load."""

    def __init__(self, engine_kind: str, label: str, workdir: Path, pg_url: str):
        self.engine_kind, self.workdir, self.pg_url = engine_kind, workdir, pg_url
        self.name = f"medscrm_bench_{os.getpid()}_{label}"
        self.url = ""

    def __enter__(self) -> str:
        if self.engine_kind == "duckdb":
            path = self.workdir / f"{self.name}.duckdb"
            for p in (path, path.with_suffix(".duckdb.wal")):
                p.unlink(missing_ok=True)
            self.url = f"duckdb:///{path}"
        else:
            import psycopg
            from psycopg import sql

            with psycopg.connect(_pg_conninfo(self.pg_url), autocommit=True) as con:
                con.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                )
                con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            base, _, _ = self.pg_url.rpartition("/")
            self.url = f"{base}/{self.name}"
        return self.url

    def __exit__(self, *exc: object) -> None:
        if self.engine_kind == "duckdb":
            path = self.workdir / f"{self.name}.duckdb"
            for p in (path, path.with_suffix(".duckdb.wal")):
                p.unlink(missing_ok=True)
        else:
            import psycopg
            from psycopg import sql

            with psycopg.connect(_pg_conninfo(self.pg_url), autocommit=True) as con:
                con.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                )


def measure(kind: str, engine_kind: str, csv_path: Path, workdir: Path, pg_url: str, label: str) -> dict:
    with Target(engine_kind, f"{engine_kind}_{label}", workdir, pg_url) as url:
        _log(f"{engine_kind}/{kind} ({label}) ...")
        res = run_child(kind, engine_kind, url, csv_path, timeout=3600)
        _log(
            f"{engine_kind}/{kind} ({label}): {res['seconds']:.1f}s, {res['rows_per_s']:,.0f} rows/s, "
            f"peak RSS {res['peak_rss_mib']:.0f} MiB"
        )
        return res


# --- main ----------------------------------------------------------------------------------------------


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200,000 rows (and a 50,000-row memory check)")
    ap.add_argument("--rows", type=int, help="row count (overrides --quick)")
    ap.add_argument("--engines", default="duckdb,postgresql", help="comma-separated: duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "medscrm-bench")
    ap.add_argument("--no-memory-check", action="store_true", help="skip the medscrm import at N/4")
    ap.add_argument("--memory-check", action="store_true", help="also run the N/4 import outside --quick")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=200)
    n = args.rows or (200_000 if args.quick else 1_000_000)
    mode = "custom" if args.rows else ("quick" if args.quick else "full")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ("duckdb", "postgresql"):
            ap.error(f"unknown engine {e!r}")
    mem_check = (args.quick or args.memory_check) and not args.no_memory_check and n >= 8

    t_all = time.perf_counter()
    csv_path, gen_s, cached = generate_csv(n, args.cache_dir)
    _log(f"{csv_path} ({csv_path.stat().st_size / MIB:.0f} MiB, {'cached' if cached else f'{gen_s:.1f}s'})")
    small_path = None
    if mem_check:
        small_path, _, _ = generate_csv(n // 4, args.cache_dir)

    workdir = Path(tempfile.mkdtemp(prefix="medscrm-bench-db-", dir=args.cache_dir))
    figures: dict[str, Any] = {}
    try:
        for eng in engines:
            try:
                med = measure("medscrm", eng, csv_path, workdir, args.pg_url, "medscrm")
                ref = measure("reference", eng, csv_path, workdir, args.pg_url, "ref")
                small = None
                if small_path is not None:
                    small = measure("medscrm", eng, small_path, workdir, args.pg_url, "medscrm_quarter")
            except Exception as exc:
                _log(f"{eng}: FAILED: {exc}")
                figures[eng] = {"error": str(exc)}
                continue
            fig = {
                "medscrm": med,
                "reference": ref,
                "ratio": med["seconds"] / ref["seconds"] if ref["seconds"] else None,
            }
            if small is not None:
                fig["medscrm_quarter"] = {"rows": n // 4, **small}
                base = med["maxrss_before_mib"]
                fig["memory_check"] = {
                    "rows": [n // 4, n],
                    "peak_rss_mib": [small["peak_rss_mib"], med["peak_rss_mib"]],
                    "peak_growth_mib": med["peak_rss_mib"] - small["peak_rss_mib"],
                    "growth_per_100k_rows_mib": (med["peak_rss_mib"] - small["peak_rss_mib"])
                    / ((n - n // 4) / 100_000),
                    "baseline_rss_mib": base,
                }
            figures[eng] = fig
    finally:
        with contextlib.suppress(OSError):
            workdir.rmdir()

    table = Table(title=f"medscrm import vs raw bulk load — {n:,} rows ({mode}), {os.cpu_count()} CPUs")
    for col in (
        "engine",
        "medscrm s",
        "medscrm rows/s",
        "peak RSS MiB",
        "accepted",
        "rejected",
        "ref s",
        "ref rows/s",
        "ref peak RSS MiB",
        "ratio",
        f"peak RSS @ {n // 4:,}",
    ):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for eng, fig in figures.items():
        if "error" in fig:
            table.add_row(eng, "error", fig["error"][:60], *[""] * 8)
            continue
        m, r = fig["medscrm"], fig["reference"]
        quarter = fig.get("medscrm_quarter")
        table.add_row(
            eng,
            f"{m['seconds']:.1f}",
            f"{m['rows_per_s']:,.0f}",
            f"{m['peak_rss_mib']:.0f}"
            + (f" (+srv {m['server_peak_rss_mib']:.0f})" if "server_peak_rss_mib" in m else ""),
            f"{m['accepted']:,}",
            f"{m['rejected']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['peak_rss_mib']:.0f}"
            + (f" (+srv {r['server_peak_rss_mib']:.0f})" if "server_peak_rss_mib" in r else ""),
            f"{fig['ratio']:.1f}×",
            f"{quarter['peak_rss_mib']:.0f}" if quarter else "-",
        )
    console.print(table)
    for eng, fig in figures.items():
        mc = fig.get("memory_check")
        if mc:
            console.print(
                f"{eng}: importer peak RSS {mc['peak_rss_mib'][0]:.0f} MiB at {mc['rows'][0]:,} rows, "
                f"{mc['peak_rss_mib'][1]:.0f} MiB at {mc['rows'][1]:,} rows "
                f"({mc['growth_per_100k_rows_mib']:+.1f} MiB per 100k rows; process baseline "
                f"{mc['baseline_rss_mib']:.0f} MiB)"
            )

    vm = psutil.virtual_memory()
    doc = {
        "benchmark": "import_1m",
        "mode": mode,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "memory_total_mib": round(vm.total / MIB),
        },
        "rows": n,
        "file": {
            "path": str(csv_path),
            "size_bytes": csv_path.stat().st_size,
            "generate_s": _r(gen_s, 2),
            "cached": cached,
        },
        "notes": [
            "seconds = the load alone, in a spawned child process (schema setup excluded)",
            "peak_rss_mib = the child's getrusage ru_maxrss (includes interpreter + library baseline, "
            "maxrss_before_mib); server_peak_rss_mib = the PostgreSQL backend, psutil-sampled every 50 ms",
            "ratio = medscrm seconds / reference seconds",
        ],
        "engines": figures,
        "total_s": _r(time.perf_counter() - t_all, 1),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n"
    (RESULTS_DIR / "import_1m.json").write_text(text, encoding="utf-8")
    (RESULTS_DIR / f"import_1m.{mode}.json").write_text(text, encoding="utf-8")
    console.print(f"wrote {RESULTS_DIR / 'import_1m.json'} and import_1m.{mode}.json")

    summary: dict[str, Any] = {"rows": n, "mode": mode}
    for eng, fig in figures.items():
        if "error" in fig:
            summary[eng] = {"error": fig["error"]}
            continue
        m, r = fig["medscrm"], fig["reference"]
        s = {
            "rows_per_s": _r(m["rows_per_s"], 0),
            "seconds": _r(m["seconds"], 2),
            "peak_rss_mib": _r(m["peak_rss_mib"]),
            "accepted": m["accepted"],
            "rejected": m["rejected"],
            "ref_rows_per_s": _r(r["rows_per_s"], 0),
            "ref_seconds": _r(r["seconds"], 2),
            "ref_peak_rss_mib": _r(r["peak_rss_mib"]),
            "ratio": _r(fig["ratio"], 2),
        }
        if "server_peak_rss_mib" in m:
            s["server_peak_rss_mib"] = _r(m["server_peak_rss_mib"])
        if "medscrm_quarter" in fig:
            s["peak_rss_mib_quarter"] = _r(fig["medscrm_quarter"]["peak_rss_mib"])
        summary[eng] = s
    sys.stdout.flush()
    print("RESULT " + json.dumps(summary, ensure_ascii=False, separators=(",", ":")), flush=True)
    return 0 if all("error" not in f for f in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
