"""Operability of the server: request ids and latency metrics for every request, ``/metrics``
(Prometheus), the gauges read at scrape time, the uvicorn logging options and opt-in tracing.

* :class:`Observe`, the outermost ASGI middleware: takes the request id from a well-formed incoming
  ``X-Request-ID`` (or makes one), sets it for the request's log lines, returns it in the response's
  ``X-Request-ID`` and times the request into ``medscrm_http_request_duration_seconds`` labelled by
  the route *template* (``/api/v1/persons/{person_id}``), never the raw path, so the number of series
  stays bounded. The event API's fast lane (``collect.FastLane``) answers below it, so its requests
  are counted too.
* :class:`Sampler`: a thread per process copies the Ingestor's and the Refresher's own counters into
  the Prometheus metrics once a second (and at each scrape), so neither the flusher nor the
  refresher pays anything per event.
* :class:`DatabaseGauges`: outbox depth and due journey steps, counted over all tenants at scrape
  time and cached for :data:`DB_GAUGE_TTL` seconds, so scrapes cannot load the database.
* ``/metrics``: loopback clients only, or any client with ``Authorization: Bearer
  $MEDSCRM_METRICS_TOKEN`` when that is set (then the token is required from loopback too: a reverse
  proxy on the same host would otherwise make every outside caller look local)."""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from medscrm import metrics
from medscrm.common import as_utc, utcnow
from medscrm.config import ConfigError, get_settings
from medscrm.db.schema import journey_enrollments, journeys, sends
from medscrm.logs import REQUEST_ID, accepted_request_id, logging_config

try:  # names a traced request's span after its route (FastAPI's own hook; absent: spans keep the method)
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - another FastAPI version
    _route_selected = None

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: seconds a scrape's database counts are reused
DB_GAUGE_TTL = 5.0
#: seconds between two samples of the in-process counters
SAMPLE_EVERY = 1.0
#: ``sends`` statuses that are work still to do (the outbox)
OUTBOX_STATUSES = ("queued", "sending")
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


# --- request ids and latency ---------------------------------------------------------------------
#: generated request ids: a random prefix per process and a counter (unique across processes and
#: restarts without a system call per request)
_ID_PREFIX = os.urandom(5).hex()
_ids = itertools.count(1)


class Observe:
    """ASGI middleware (the outermost): request id, ``X-Request-ID`` answer header, latency metric.

    ``fast_paths``: the paths the fast lane answers before routing (no route is set in the scope for
    them; they are their own template, a bounded set)."""

    def __init__(self, app: Any, fast_paths: frozenset[str] = frozenset()):
        self.app = app
        self.fast_paths = fast_paths
        # histogram children by (route, method, status class): labels() costs a lock and a dict
        # lookup per call; this dict lookup is all a request pays after the first of its kind
        self._children: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = accepted_request_id(v)
                break
        if rid is None:
            rid = f"{_ID_PREFIX}{next(_ids):06x}"
        token = REQUEST_ID.set(rid)
        extra = (b"x-request-id", rid.encode("ascii"))
        status = 500  # no answer started: the server answers 500

        def tagged_send(message: dict) -> Any:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # a new message and header list: a response object may reuse its own
                message = {**message, "headers": [*message.get("headers", ()), extra]}
            return send(message)

        if "fastapi.telemetry" in scope and scope["path"] in self.fast_paths and _route_selected:
            # tracing on: the fast lane's span gets its route as FastAPI's routing would give it
            _route_selected(scope=scope, path=scope["path"])
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, tagged_send)
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None:
                path = scope["path"] if scope["path"] in self.fast_paths else "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            key = (path, method, _STATUS_CLASSES.get(status // 100, "other"))
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = metrics.HTTP_REQUESTS.labels(*key)
            child.observe(elapsed)
        # only after an answer: when the app raised, the id stays set for the server's error handler
        # (it runs outside this middleware, in this request's own task) to log it and answer with it
        REQUEST_ID.reset(token)


# --- in-process counters -------------------------------------------------------------------------
class Sampler:
    """Copies the process's Ingestor and Refresher figures into the Prometheus metrics: the Ingestor's
    cumulative counts become counter increments (their deltas), its backlog and lag gauges; the
    refresher's lag is the time since its fast lane's cycle count last moved."""

    def __init__(self, state: Any):
        self.state = state
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {"stored": 0, "poison": 0, "refused": 0}
        self._cycles: int | None = None
        self._cycle_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        with self._lock:
            ingestor = getattr(self.state, "ingestor", None)
            if ingestor is not None:
                h = ingestor.health()
                metrics.SPOOL_BACKLOG.set(h["backlog_bytes"])
                metrics.FLUSHER_LAG.set(h["lag_seconds"])
                self._count("stored", ingestor.stored_events, metrics.EVENTS_STORED)
                self._count("poison", h["quarantined_poison"], metrics.EVENTS_QUARANTINED.labels("poison"))
                self._count("refused", h["quarantined_refused"], metrics.EVENTS_QUARANTINED.labels("refused"))
            refresher = getattr(self.state, "refresher", None)
            if refresher is not None:
                now = time.monotonic()
                cycles = refresher.stats.get("cycles", 0)
                if cycles != self._cycles:
                    self._cycles, self._cycle_at = cycles, now
                metrics.REFRESHER_LAG.set(round(now - self._cycle_at, 3))
                visible = refresher.stats.get("visible_lag_max_s")
                if visible is not None:
                    metrics.REFRESHER_VISIBLE_LAG.set(visible)

    def _count(self, name: str, total: int, counter: Any) -> None:
        if total > self._seen[name]:
            counter.inc(total - self._seen[name])
        self._seen[name] = total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="medscrm-metrics-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            try:
                self.sample()
            except Exception as exc:  # a metric must never take the server down
                log.warning("metrics sample failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread and take a last sample (what was stored since the last one is counted)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self.sample()
        except Exception as exc:
            log.warning("metrics sample failed: %s", exc)
        if multiprocess_dir():  # this process's live gauges stop counting in the sums
            # lazy: off the server's start-up path
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


# --- gauges read from the database -------------------------------------------------------------
class DatabaseGauges(Collector):
    """Outbox depth and due journey enrollments over all tenants (no tenant label: the number of
    series stays fixed however many tenants there are), read at scrape time and cached."""

    def __init__(self, engine: sa.Engine, ttl: float = DB_GAUGE_TTL):
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._cached: list[GaugeMetricFamily] = []

    def describe(self) -> list:
        return []  # registering must not query the database

    def collect(self) -> list[GaugeMetricFamily]:
        with self._lock:  # concurrent scrapes share one query
            now = time.monotonic()
            if now - self._at >= self.ttl:
                self._cached = self._read()
                self._at = now
            return self._cached

    def _read(self) -> list[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "medscrm_metrics_database_up", "1 when the last scrape-time database read succeeded, else 0"
        )
        try:
            counts, oldest, due = self._query()
        except Exception as exc:
            log.warning("metrics: database read failed: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        depth = GaugeMetricFamily(
            "medscrm_outbox_sends",
            "Sends waiting in the outbox, by status (queued, sending)",
            labels=["status"],
        )
        for status in OUTBOX_STATUSES:
            depth.add_metric([status], counts.get(status, 0))
        age = GaugeMetricFamily(
            "medscrm_outbox_oldest_due_seconds",
            "Age of the oldest queued send that is due now (0 when none waits)",
        )
        age.add_metric([], oldest)
        journeys_due = GaugeMetricFamily(
            "medscrm_journeys_due", "Active enrollments of running journeys whose next step is due now"
        )
        journeys_due.add_metric([], due)
        return [up, depth, age, journeys_due]

    def _query(self) -> tuple[dict[str, int], float, int]:
        now = utcnow()
        s, e, j = sends, journey_enrollments, journeys
        with self.engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.select(s.c.status, sa.func.count())
                    .where(s.c.status.in_(OUTBOX_STATUSES))
                    .group_by(s.c.status)
                ).all()
            )
            first = conn.execute(
                sa.select(sa.func.min(s.c.created_at)).where(
                    s.c.status == "queued", sa.or_(s.c.not_before.is_(None), s.c.not_before <= now)
                )
            ).scalar()
            due = conn.execute(
                sa.select(sa.func.count())
                .select_from(e.join(j, j.c.id == e.c.journey_id))
                .where(e.c.status == "active", e.c.next_run_at <= now, j.c.status == "running")
            ).scalar()
        oldest = 0.0
        if first is not None:
            first = as_utc(first)  # DuckDB hands naive UTC timestamps back
            oldest = max(0.0, (now - first).total_seconds())
        return {k: int(v) for k, v in counts.items()}, oldest, int(due or 0)


# --- /metrics ------------------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render(state: Any) -> bytes:
    """The exposition text: this process's (or, in multiprocess mode, every worker's) metrics, then
    the database gauges."""
    sampler = getattr(state, "metrics_sampler", None)
    if sampler is not None:
        sampler.sample()
    if multiprocess_dir():
        # lazy: off the server's start-up path
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    out = generate_latest(registry)
    db = getattr(state, "metrics_db", None)
    if db is not None:
        out += generate_latest(db)
    return out


def _client_is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics (see docs/operations.md); loopback only unless MEDSCRM_METRICS_TOKEN is set."""
    token = get_settings().metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse(
                {
                    "error": "unauthorized",
                    "field": "Authorization",
                    "reason": "/metrics needs Authorization: Bearer <MEDSCRM_METRICS_TOKEN>",
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not _client_is_loopback(request):
        return JSONResponse(
            {
                "error": "forbidden",
                "field": "client",
                "reason": "/metrics answers loopback clients only; set MEDSCRM_METRICS_TOKEN to scrape "
                "from elsewhere with a bearer token",
            },
            status_code=403,
        )
    body = await to_thread.run_sync(render, request.app.state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: Any, engine: sa.Engine, fast_paths: frozenset[str]) -> None:
    """``/metrics``, the database gauges and the request middleware (added last: the outermost)."""
    app.state.metrics_db = CollectorRegistry()
    app.state.metrics_db.register(DatabaseGauges(engine))
    app.include_router(router)
    app.add_middleware(Observe, fast_paths=fast_paths)


# --- uvicorn options of `medscrm serve` ----------------------------------------------------------
def prepare_multiprocess_dir(directory: Path) -> Path:
    """Remove the value files (``*.db``) an earlier run left in ``directory`` (they would be summed
    into this run's) and point prometheus-client's multiprocess mode at it for the worker processes
    about to start. Only those files go: the directory may be one the operator chose."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in directory.glob("*.db"):
        f.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def serve_options(workers: int, engine: sa.Engine, spool_root: Path) -> dict[str, Any]:
    """``uvicorn.run`` keyword arguments from the settings: the log format, the access log; with
    several workers (PostgreSQL: DuckDB refuses them), multiprocess metrics in an emptied directory
    (default: ``metrics`` in the spool directory)."""
    s = get_settings()
    if workers > 1 and engine.dialect.name == "postgresql":
        default = spool_root / "metrics"
        prepare_multiprocess_dir(Path(s.metrics_dir or os.environ.get(MULTIPROC_ENV) or default))
    return {
        "log_config": logging_config(s.log_style),
        "log_level": "info",
        "access_log": s.access_log == "on",
    }


# --- OpenTelemetry (opt-in) ----------------------------------------------------------------------
def telemetry_config(span_exporter: Any = None) -> dict[str, Any]:
    """FastAPI's native telemetry options: off, or with ``MEDSCRM_OTEL=1`` a tracer provider that
    exports a span per request (the fast lane's too) to ``span_exporter`` or, by default, to OTLP
    over HTTP as the standard ``OTEL_EXPORTER_OTLP_*`` variables configure it."""
    off = {"tracing": False, "metrics": False, "logs": False}
    if not get_settings().otel and span_exporter is None:
        return off
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if span_exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(
            "MEDSCRM_OTEL=1: OpenTelemetry tracing needs the optional packages of the `otel` extra "
            f"(missing: {exc.name}); install the package with its extra `otel` (pip: medscrm with "
            "extra otel; uv: `uv sync --extra otel`), or unset MEDSCRM_OTEL"
        ) from None
    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "medscrm"}
    provider = TracerProvider(resource=Resource.create(attrs))
    if span_exporter is None:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:  # tests: spans visible as soon as the request ends
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return {"tracing": True, "tracer_provider": provider, "metrics": False, "logs": False}
