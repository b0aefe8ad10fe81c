"""Event API benchmark: sustained ``/v1/batch`` throughput, single ``/v1/track`` latency, raw reference.

    uv run python benchmarks/ingest_events.py --quick     # ~15 s of batch load per engine
    uv run python benchmarks/ingest_events.py             # 60 s of batch load per engine
    uv run python benchmarks/ingest_events.py --engines duckdb --profile   # + py-spy profile of the server

For every engine (DuckDB file, PostgreSQL throwaway database), in the same run:

* ``batch``: ``medscrm serve`` runs as a subprocess; a load generator in a separate process posts
  batches of 100 realistic Segment messages (track / page / identify, Chinese properties, user ids
  from a pool, unique messageIds) over N keep-alive connections for T seconds. ``accepted_events_per_s``
  counts HTTP 200s × 100 at the client. The server is then stopped with SIGTERM (it flushes its spool
  into the database before exiting) and the ``events`` table is counted: ``stored_events_per_s`` is
  stored rows ÷ (server exit − load start), ``flush_lag_s`` is server exit − last 200. While the load
  runs the spool backlog (bytes between the flusher's checkpoint and the spool end) is sampled.
* ``reference``: in this process, the same request bodies are parsed with ``orjson`` +
  :func:`medscrm.ingest.protocol.segment.parse_batch` and appended to a fresh ``events`` table of the
  same engine with :func:`medscrm.db.bulk.insert_new` (messageId de-duplication, 5,000 rows per
  transaction, as the flusher does) — no HTTP, no spool. ``ratio`` = reference ÷ API events/s.
* ``track_latency``: 200 concurrent clients, each on its own connection, post single ``/v1/track``
  events for ~10 s: p50/p95/p99/max latency and requests/s.

The load generator is a minimal asyncio HTTP/1.1 client (no dependency), so that on a small machine
the client takes as little CPU from the server as possible. ``--profile`` attaches ``py-spy`` (run
through ``uvx``) to the server during an extra batch run and prints where the GIL-holding thread spends
its time. Figures go to ``benchmarks/results/ingest_events.json``; the last line of stdout is
``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BATCH_SIZE = 100
MEDSCRM = str(Path(sys.executable).parent / "medscrm")

# --- realistic messages -----------------------------------------------------------------------------

TITLES = (
    "2024 ESC 指南解读：心力衰竭的规范化管理", "非小细胞肺癌靶向治疗最新进展", "2 型糖尿病合并 CKD 的降糖策略",
    "高血压患者的长期随访与依从性", "慢阻肺急性加重的早期识别", "PD-1 抑制剂免疫相关不良反应的处理",
    "房颤抗凝治疗：出血风险评估", "骨质疏松症的筛查与干预", "儿童哮喘吸入装置的正确使用",
    "类风湿关节炎达标治疗病例分享",
)  # fmt: skip
CONTENT_TYPES = ("文章", "视频", "直播回放", "病例", "指南", "问卷")
HOSPITALS = (
    "北京协和医院", "复旦大学附属中山医院", "四川大学华西医院", "中山大学附属第一医院", "浙江大学医学院附属第一医院",
    "华中科技大学同济医学院附属同济医院", "首都医科大学附属北京安贞医院", "上海交通大学医学院附属瑞金医院",
)  # fmt: skip
DEPTS = ("心内科", "呼吸与危重症医学科", "肿瘤内科", "内分泌科", "神经内科", "消化内科", "儿科", "风湿免疫科")
CITIES = ("北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "南京", "西安", "重庆")
TRACK_EVENTS = (
    "文章阅读",
    "视频播放",
    "会议报名",
    "资料下载",
    "问卷提交",
    "Article Viewed",
    "Webinar Joined",
)
NAMES = ("王伟", "李娜", "张敏", "刘洋", "陈静", "杨帆", "黄磊", "赵丽", "吴杰", "周婷", "欧阳明", "司马嘉")
UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
USER_POOL = 20_000


def make_batch(tag: str, seq: int, size: int = BATCH_SIZE) -> dict:
    """Batch ``seq`` of run ``tag``: deterministic, messageIds ``{tag}-{seq}-{i}`` (unique per run)."""
    rng = random.Random(f"{tag}:{seq}")
    now = dt.datetime.now(dt.UTC)
    sent = now.isoformat().replace("+00:00", "Z")
    items = []
    for i in range(size):
        u = rng.randrange(USER_POOL)
        ts = (now - dt.timedelta(seconds=rng.uniform(0, 30))).isoformat().replace("+00:00", "Z")
        ctx = {
            "library": {"name": "analytics.js", "version": "4.1.0"},
            "ip": f"10.{u % 250}.{u // 250 % 250}.{rng.randrange(1, 250)}",
            "userAgent": UA,
            "locale": "zh-CN",
            "page": {"url": f"https://hcp.example.cn/content/{rng.randrange(5000)}", "referrer": ""},
        }
        base: dict[str, Any] = {
            "messageId": f"{tag}-{seq}-{i}",
            "anonymousId": f"anon-{u:06d}",
            "timestamp": ts,
            "context": ctx,
        }
        if rng.random() < 0.85:
            base["userId"] = f"hcp-{u:06d}"
        r = rng.random()
        if r < 0.70:
            title = rng.choice(TITLES)
            base.update(
                type="track",
                event=rng.choice(TRACK_EVENTS),
                properties={
                    "文章标题": title,
                    "内容类型": rng.choice(CONTENT_TYPES),
                    "阅读时长秒": rng.randrange(5, 900),
                    "科室": rng.choice(DEPTS),
                    "渠道": rng.choice(("服务号", "企业微信", "小程序", "邮件")),
                    "tags": ["学术", title[:4]],
                },
            )
        elif r < 0.90:
            base.update(
                type="page",
                name=rng.choice(("内容详情", "会议列表", "个人中心", "首页")),
                category="hcp-portal",
                properties={"title": rng.choice(TITLES), "path": f"/content/{rng.randrange(5000)}"},
            )
        else:
            base.update(
                type="identify",
                userId=f"hcp-{u:06d}",
                traits={
                    "name": rng.choice(NAMES),
                    "hospital": rng.choice(HOSPITALS),
                    "department": rng.choice(DEPTS),
                    "city": rng.choice(CITIES),
                    "title": rng.choice(("主任医师", "副主任医师", "主治医师", "住院医师")),
                },
            )
        items.append(base)
    return {"batch": items, "sentAt": sent}


def make_track(tag: str, seq: int) -> dict:
    rng = random.Random(f"{tag}:{seq}")
    u = rng.randrange(USER_POOL)
    return {
        "messageId": f"{tag}-{seq}",
        "userId": f"hcp-{u:06d}",
        "event": "文章阅读",
        "properties": {
            "文章标题": rng.choice(TITLES),
            "科室": rng.choice(DEPTS),
            "阅读时长秒": rng.randrange(900),
        },
        "context": {"library": {"name": "analytics-python", "version": "2.3.2"}, "locale": "zh-CN"},
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
    }


# --- minimal asyncio HTTP/1.1 client -----------------------------------------------------------------


class HttpConn:
    """One keep-alive connection; ``post`` returns the status (raises on a broken connection)."""

    def __init__(self, host: str, port: int, auth: str):
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
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


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


# --- load generator (runs in a separate process) -------------------------------------------------------


PLACEHOLDER = b"@@@@"


def batch_templates(count: int = 64) -> list[bytes]:
    """Request bodies made once; each request swaps the placeholder in every messageId for a unique
    ``{tag}.{seq}``, so the client spends its (shared) CPU on sending, not on building messages."""
    return [orjson.dumps(make_batch(PLACEHOLDER.decode(), k)) for k in range(count)]


def _batch_load(port: int, write_key: str, tag: str, conns: int, seconds: float, out: Any) -> None:
    templates = batch_templates()

    async def main() -> dict:
        auth = basic_auth(write_key)
        seq = iter(range(10**9))
        statuses: collections.Counter = collections.Counter()
        acked = 0
        last_ok = 0.0
        lat: list[float] = []
        t0 = time.time()
        stop = t0 + seconds

        async def worker() -> None:
            nonlocal acked, last_ok
            c = HttpConn("127.0.0.1", port, auth)
            while time.time() < stop:
                n = next(seq)
                body = templates[n % len(templates)].replace(PLACEHOLDER, f"{tag}.{n}".encode())
                t = time.perf_counter()
                try:
                    st = await c.post("/v1/batch", body)
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    c.close()
                    statuses["conn_error"] += 1
                    await asyncio.sleep(0.05)
                    continue
                lat.append(time.perf_counter() - t)
                statuses[str(st)] += 1
                if st == 200:
                    acked += BATCH_SIZE
                    last_ok = time.time()
            c.close()

        await asyncio.gather(*[worker() for _ in range(conns)])
        return {
            "t_start": t0,
            "t_end": time.time(),
            "t_last_200": last_ok,
            "acked_events": acked,
            "statuses": dict(statuses),
            "batch_latency": percentiles(lat),
        }

    out.put(asyncio.run(main()))


def _track_load(port: int, write_key: str, tag: str, clients: int, seconds: float, out: Any) -> None:
    async def main() -> dict:
        auth = basic_auth(write_key)
        seq = iter(range(10**9))
        statuses: collections.Counter = collections.Counter()
        lat: list[float] = []
        conns = [HttpConn("127.0.0.1", port, auth) for _ in range(clients)]
        await asyncio.gather(*[c.connect() for c in conns])
        t0 = time.time()
        stop = t0 + seconds

        async def worker(c: HttpConn) -> None:
            while time.time() < stop:
                body = orjson.dumps(make_track(tag, next(seq)))
                t = time.perf_counter()
                try:
                    st = await c.post("/v1/track", body)
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
            "t_last_200": time.time(),
        }

    out.put(asyncio.run(main()))


def percentiles(lat: list[float]) -> dict:
    if not lat:
        return {}
    s = sorted(lat)

    def p(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2)

    return {"p50_ms": p(0.50), "p95_ms": p(0.95), "p99_ms": p(0.99), "max_ms": round(s[-1] * 1000, 2)}


def run_in_child(target: Any, *args: Any, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q), daemon=True)
    p.start()
    try:
        return q.get(timeout=timeout)
    finally:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()


# --- databases and the server ---------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class Database:
    """A throwaway database: a DuckDB file in ``workdir`` or a fresh PostgreSQL database (dropped on exit)."""

    def __init__(self, engine_kind: str, workdir: Path, pg_url: str, label: str):
        self.kind, self.workdir, self.pg_url = engine_kind, workdir, pg_url
        self.name = f"medscrm_bench_{label}_{os.getpid()}_{random.randrange(10**6)}"
        self.url = ""

    def __enter__(self) -> Database:
        if self.kind == "duckdb":
            self.url = f"duckdb:///{self.workdir / (self.name + '.duckdb')}"
        else:
            import psycopg
            from psycopg import sql

            with psycopg.connect(_pg_conninfo(self.pg_url), autocommit=True) as con:
                con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            self.url = f"{self.pg_url.rpartition('/')[0]}/{self.name}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kind == "postgresql":
            import psycopg
            from psycopg import sql

            with psycopg.connect(_pg_conninfo(self.pg_url), autocommit=True) as con:
                con.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                )

    @property
    def spool_dir(self) -> Path:
        if self.kind == "duckdb":
            return Path(self.url.removeprefix("duckdb:///") + ".spool")
        return self.workdir / f"{self.name}.spool"

    refresher = True  # the segment refresher thread of `medscrm serve`; --refresher off stops it
    server_src = ""  # --server-src: run the server from another source tree (an A/B against a baseline)

    def env(self, server: bool = False) -> dict[str, str]:
        env = {**os.environ, "MEDSCRM_DATABASE_URL": self.url, "MEDSCRM_SPOOL_DIR": str(self.spool_dir)}
        if not self.refresher:
            env["MEDSCRM_SEGMENT_REFRESHER"] = "0"
        # the server's nightly scores batch would start at once on a tenant never scored (a bulk
        # loaded benchmark tenant) and compete with the load measured: off unless asked for
        env.setdefault("MEDSCRM_SCORES_BATCH_AT", "off")
        if server and self.server_src:
            env["PYTHONPATH"] = self.server_src
        return env

    def cli(self, *args: str) -> str:
        """Run ``medscrm ARGS`` against this database; returns the last line of stdout."""
        res = subprocess.run(
            [MEDSCRM, *args],
            env=self.env(server=True),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        )
        return res.stdout.strip().splitlines()[-1].strip()

    def setup(self) -> tuple[str, str]:
        """Schema, a source and an admin token: (write key, token)."""
        write_key = self.cli("sources", "create", "--name", "bench-web")
        token = self.cli("tokens", "create", "--role", "admin")
        return write_key, token

    def query(self, sql_text: str) -> list[tuple]:
        if self.kind == "duckdb":
            import duckdb

            con = duckdb.connect(self.url.removeprefix("duckdb:///"), read_only=True)
            try:
                return con.execute(sql_text).fetchall()
            finally:
                con.close()
        import psycopg

        with psycopg.connect(_pg_conninfo(self.url)) as con:
            return con.execute(sql_text).fetchall()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``medscrm serve`` as a subprocess (its log goes to a file: a pipe nobody reads would block it)."""

    def __init__(self, db: Database, log_name: str = "server.log", extra_args: tuple[str, ...] = ()):
        self.db = db
        self.extra_args = extra_args  # e.g. ("--workers", "2")
        self.port = free_port()
        self.log_path = db.workdir / log_name
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> float:
        t0 = time.time()
        logf = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [MEDSCRM, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args],
            env=self.db.env(server=True),
            cwd=self.db.workdir,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        logf.close()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.time() - t0
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s: {self.tail()}")

    def tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n:]
        return ""

    def stop(self, timeout: float = 600) -> float:
        """SIGTERM, wait for the exit (the spool is flushed first); returns the exit time."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not exit after SIGTERM") from None
        return time.time()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def spool_backlog(spool_dir: Path) -> int:
    """Bytes in the spool beyond the flusher's checkpoint (approximate, racy but monotone enough)."""
    try:
        ck = orjson.loads((spool_dir / "checkpoint.json").read_bytes())
    except (OSError, ValueError):
        ck = {"segment": 1, "offset": 0}
    total = 0
    for p in spool_dir.glob("spool-*.log"):
        with contextlib.suppress(OSError, ValueError):
            seg = int(p.stem.split("-")[1])
            size = p.stat().st_size
            if seg > ck["segment"]:
                total += size
            elif seg == ck["segment"]:
                total += max(0, size - ck["offset"])
    return total


# --- measurements -----------------------------------------------------------------------------------------


def measure_batch(
    db: Database, write_key: str, conns: int, seconds: float, tag: str, profile_s: float = 0
) -> dict:
    server = Server(db, f"server-{tag}.log")
    startup = server.start()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    gen = ctx.Process(target=_batch_load, args=(server.port, write_key, tag, conns, seconds, q), daemon=True)
    gen.start()
    backlog: list[tuple[float, int]] = []
    spy = None
    if profile_s:
        time.sleep(min(3.0, seconds / 4))
        spy = start_pyspy(server.proc.pid, profile_s, db.workdir / f"pyspy-{tag}.txt")
    deadline = time.time() + seconds + 120
    res = None
    t_begin = time.time()
    while res is None and time.time() < deadline:
        try:
            res = q.get(timeout=1.0)
        except Exception:
            backlog.append((round(time.time() - t_begin, 1), spool_backlog(db.spool_dir)))
    gen.join(timeout=10)
    if res is None:
        server.kill()
        raise RuntimeError("load generator did not finish")
    end_backlog = spool_backlog(db.spool_dir)
    t_exit = server.stop()
    profile = finish_pyspy(spy, db.workdir / f"pyspy-{tag}.txt") if spy else None
    stored = db.query("SELECT count(*) FROM events")[0][0]
    load_s = res["t_end"] - res["t_start"]
    out = {
        "connections": conns,
        "batch_size": BATCH_SIZE,
        "seconds": round(load_s, 2),
        "server_startup_s": round(startup, 2),
        "acked_events": res["acked_events"],
        "statuses": res["statuses"],
        "accepted_events_per_s": round(res["acked_events"] / load_s, 1),
        "batch_request_latency": res["batch_latency"],
        "stored_events": stored,
        "stored_events_per_s": round(stored / (t_exit - res["t_start"]), 1),
        "flush_lag_s": round(t_exit - res["t_last_200"], 2),
        "spool_backlog_mib_at_end_of_load": round(end_backlog / 2**20, 2),
        "spool_backlog_mib_max": round(max([b for _, b in backlog] + [end_backlog]) / 2**20, 2),
        "spool_backlog_mib_samples": [
            (t, round(b / 2**20, 2)) for t, b in backlog[:: max(1, len(backlog) // 12)]
        ],
        "stored_all_acked": stored >= res["acked_events"],
    }
    if profile:
        out["profile"] = profile
    return out


def measure_track(db: Database, write_key: str, clients: int, seconds: float, tag: str) -> dict:
    server = Server(db, f"server-{tag}.log")
    server.start()
    try:
        res = run_in_child(_track_load, server.port, write_key, tag, clients, seconds, timeout=seconds + 120)
    finally:
        t_exit = server.stop()
    res["flush_lag_s"] = round(t_exit - res.pop("t_last_200"), 2)
    return res


def measure_reference(db: Database, tag: str, batches: int, flush_bytes: int = 16 * 2**20) -> dict:
    """The same pipeline as the server, in this process, without HTTP or spool: the fast decoder
    (msgspec + per-message rules → spool lines) and the flusher's set-based store (``store_lines``:
    the database parses the lines, de-duplicates against the window, appends), in batches of the
    flusher's size."""
    from medscrm.db import make_engine, upgrade_to_head
    from medscrm.ingest.events import LINES, store_lines, tune_for_ingest
    from medscrm.ingest.protocol.segment import decode_fast, encode_lines

    engine = make_engine(db.url)
    upgrade_to_head(engine)
    tune_for_ingest(engine)  # as the server's Ingestor does

    def parse(body: bytes) -> bytes:
        d = decode_fast(body, is_batch=True)
        assert d is not None
        lines, n, bad = encode_lines(d, received_at=dt.datetime.now(dt.UTC), tags=("t_bench", "src_bench"))
        assert n == BATCH_SIZE and not bad, bad[:1]
        return LINES + lines

    # warm up (imports, the first connection, the first insert) outside the timing
    with engine.begin() as conn:
        store_lines(conn, [parse(orjson.dumps(make_batch("warmup", 0)))], workdir=db.workdir)
    bodies = [orjson.dumps(make_batch(tag, s)) for s in range(batches)]
    t0 = time.perf_counter()
    parse_s = 0.0
    chunks: list[bytes] = []
    size = stored = 0

    def flush() -> int:
        with engine.begin() as conn:
            n = store_lines(conn, chunks, workdir=db.workdir)
        chunks.clear()
        return n

    for body in bodies:
        tp = time.perf_counter()
        rec = parse(body)
        chunks.append(rec)
        size += len(rec)
        parse_s += time.perf_counter() - tp
        if size >= flush_bytes:
            stored += flush()
            size = 0
    if chunks:
        stored += flush()
    total = time.perf_counter() - t0
    engine.dispose()
    spool_bytes = (len(parse(bodies[0])) + 8) / BATCH_SIZE
    n = batches * BATCH_SIZE
    return {
        "events": n,
        "stored": stored,
        "seconds": round(total, 3),
        "events_per_s": round(n / total, 1),
        "parse_events_per_s": round(n / parse_s, 1),
        "insert_events_per_s": round(n / (total - parse_s), 1),
        "request_body_bytes_avg": round(sum(map(len, bodies)) / len(bodies)),
        "spool_record_bytes_avg": round(spool_bytes),
    }


# --- profiling --------------------------------------------------------------------------------------------


def start_pyspy(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    uvx = shutil.which("uvx")
    if not uvx:
        log("uvx not found: no profile")
        return None
    cmd = [uvx, "py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    cmd += ["--format", "raw", "--output", str(out), "--threads", "--gil", "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_pyspy(proc: subprocess.Popen, path: Path, top: int = 25) -> dict:
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": "py-spy timed out"}
    if not path.exists():
        return {"error": (err or b"").decode(errors="replace")[-800:]}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, RESULTS_DIR / f"ingest_events.{path.stem}.collapsed.txt")
    return summarize_collapsed(path.read_text(), top)


def summarize_collapsed(text: str, top: int = 25) -> dict:
    """py-spy raw (collapsed) stacks → self and inclusive shares by function, and by thread."""
    self_c: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        c = int(n)
        total += c
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]  # "thread (0x..): MainThread" → "MainThread"
        threads[thread] += c
        funcs = [f"{thread}: {_short(f)}" for f in frames[1:]] or [thread]
        self_c[funcs[-1]] += c
        for f in set(funcs):
            incl[f] += c
    if not total:
        return {"samples": 0}

    def pct(counter: collections.Counter) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "threads_pct": pct(threads),
        "self_pct": pct(self_c),
        "inclusive_pct": pct(incl),
    }


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" → "func (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if parts else file
    return f"{name} ({short})"


# --- driver ----------------------------------------------------------------------------------------------


def run_engine(kind: str, args: argparse.Namespace, workdir: Path) -> dict:
    out: dict[str, Any] = {}
    with Database(kind, workdir, args.pg_url, "api") as db:
        write_key, _token = db.setup()
        log(f"{kind}: batch load, {args.connections} connections × {args.seconds}s ...")
        out["batch"] = b = measure_batch(db, write_key, args.connections, args.seconds, f"b{kind[:2]}")
        log(
            f"{kind}: accepted {b['accepted_events_per_s']:,.0f} ev/s, stored {b['stored_events_per_s']:,.0f} ev/s, "
            f"flush lag {b['flush_lag_s']}s, statuses {b['statuses']}"
        )
        log(f"{kind}: /v1/track latency, {args.clients} clients × {args.track_seconds}s ...")
        out["track_latency"] = t = measure_track(
            db, write_key, args.clients, args.track_seconds, f"t{kind[:2]}"
        )
        log(f"{kind}: track {t.get('requests_per_s')} req/s p50 {t.get('p50_ms')} p99 {t.get('p99_ms')} ms")
        if args.profile:
            log(f"{kind}: profiled batch run (py-spy) ...")
            p = measure_batch(
                db,
                write_key,
                args.connections,
                max(12.0, args.profile_seconds + 5),
                f"p{kind[:2]}",
                args.profile_seconds,
            )
            out["profiled_batch"] = p
    batches = min(args.reference_batches, max(50, out["batch"]["acked_events"] // BATCH_SIZE))
    with Database(kind, workdir, args.pg_url, "ref") as db:
        log(f"{kind}: reference, {batches * BATCH_SIZE:,} events ...")
        out["reference"] = r = measure_reference(db, f"b{kind[:2]}", batches)
        log(f"{kind}: reference {r['events_per_s']:,.0f} ev/s")
    api = out["batch"]["accepted_events_per_s"]
    out["ratio_reference_to_api_accepted"] = round(r["events_per_s"] / api, 2) if api else None
    st = out["batch"]["stored_events_per_s"]
    out["ratio_reference_to_api_stored"] = round(r["events_per_s"] / st, 2) if st else None
    bl = out["batch"]["spool_backlog_mib_at_end_of_load"] * 2**20
    out["batch"]["spool_backlog_events_at_end_of_load_est"] = round(bl / r["spool_record_bytes_avg"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="15 s of batch load (default 60 s)")
    ap.add_argument("--engines", default="duckdb,postgresql")
    ap.add_argument("--pg-url", default=os.environ.get("MEDSCRM_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--connections", type=int, default=8, help="concurrent /v1/batch connections")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--clients", type=int, default=200, help="concurrent /v1/track clients")
    ap.add_argument("--track-seconds", type=float, default=10.0)
    ap.add_argument("--reference-batches", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="an extra batch run under py-spy (via uvx)")
    ap.add_argument("--profile-seconds", type=float, default=10.0)
    ap.add_argument(
        "--refresher",
        choices=("on", "off"),
        default="on",
        help="the segment refresher thread in the server (on: as `medscrm serve` runs by default)",
    )
    ap.add_argument(
        "--server-src",
        default="",
        help="run the server from this source tree (e.g. an exported baseline: git archive HEAD src)",
    )
    ap.add_argument("--floor", type=float, default=20_000.0, help="events/s the embedded engine must reach")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    if args.seconds is None:
        args.seconds = 15.0 if args.quick else 60.0
    if args.reference_batches is None:
        args.reference_batches = 500 if args.quick else 2000
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    Database.refresher = args.refresher == "on"
    Database.server_src = args.server_src
    result: dict[str, Any] = {
        "benchmark": "ingest_events",
        "mode": mode,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "segment_refresher": args.refresher,
        "server_src": args.server_src or None,
        "engines": {},
    }
    with tempfile.TemporaryDirectory(prefix="medscrm-ingest-bench-") as tmp:
        for kind in engines:
            try:
                result["engines"][kind] = run_engine(kind, args, Path(tmp))
            except Exception as exc:  # report the engine as failed, keep the others
                log(f"{kind}: FAILED {type(exc).__name__}: {exc}")
                result["engines"][kind] = {"error": f"{type(exc).__name__}: {exc}"}
    duck = result["engines"].get("duckdb", {}).get("batch", {})
    if duck:
        result["floor_events_per_s"] = args.floor
        result["floor_met_accepted"] = duck["accepted_events_per_s"] >= args.floor
        result["floor_met_stored"] = duck["stored_events_per_s"] >= args.floor
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "ingest_events.json").write_text(text + "\n")
    (RESULTS_DIR / f"ingest_events.{mode}.json").write_text(text + "\n")
    summary: dict[str, Any] = {"mode": mode, "refresher": args.refresher}
    for kind, r in result["engines"].items():
        if "error" in r:
            summary[kind] = {"error": r["error"]}
            continue
        b, t, ref = r["batch"], r["track_latency"], r["reference"]
        summary[kind] = {
            "accepted_ev_s": b["accepted_events_per_s"],
            "stored_ev_s": b["stored_events_per_s"],
            "flush_lag_s": b["flush_lag_s"],
            "stored_all_acked": b["stored_all_acked"],
            "reference_ev_s": ref["events_per_s"],
            "ratio": r["ratio_reference_to_api_accepted"],
            "track_rps": t.get("requests_per_s"),
            "track_p50_ms": t.get("p50_ms"),
            "track_p99_ms": t.get("p99_ms"),
            "track_max_ms": t.get("max_ms"),
        }
    for k in ("floor_met_accepted", "floor_met_stored"):
        if k in result:
            summary[k] = result[k]
    print("RESULT " + json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
