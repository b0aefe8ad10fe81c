"""The FastAPI application factory: assembles the routers of each domain."""

from __future__ import annotations

import gc
import logging
import os
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from medscrm import __version__
from medscrm.api import collect, core, observe
from medscrm.api import dsr as dsr_api
from medscrm.api import events as events_api
from medscrm.api import journeys as journeys_api
from medscrm.api import outreach as outreach_api
from medscrm.api import persons as persons_api
from medscrm.api import retention as retention_api
from medscrm.api import scores as scores_api
from medscrm.api import segments as segments_api
from medscrm.api import sso as sso_api
from medscrm.api import tasks as tasks_api
from medscrm.api import webhooks as webhooks_api
from medscrm.api.audit_guard import AuditGuard
from medscrm.api.errors import declare_body_errors, from_medscrm_error, shape_of
from medscrm.common import MedscrmError
from medscrm.config import get_settings
from medscrm.db import get_engine
from medscrm.db.engine import POOL_OVERFLOW, POOL_SIZE, default_spool_dir
from medscrm.ingest.events import Ingestor
from medscrm.journeys import engine as _journeys
from medscrm.logs import REQUEST_ID
from medscrm.persons.follow import IdentityFollower
from medscrm.segments.fresh import Refresher
from medscrm.web import routes as web_routes
from medscrm.webhooks import dispatch as _webhooks
from medscrm.workers import WORKERS_ENV, orphan_spools, take_slot, take_slot_dir

log = logging.getLogger(__name__)


def drain_orphan_spools(engine: sa.Engine, root: Path, workers: int, *, fsync: bool = True) -> None:
    """Store the events left in the spools of worker slots that this run does not have."""
    for d in orphan_spools(root, workers):
        held = take_slot_dir(d)
        if held is None:
            continue
        try:
            ing = Ingestor(engine, d, fsync=fsync)
            n = ing.flush_pending()
            ing.spool.close()
            log.info("stored %d events left in %s by a run with more workers", n, d)
        finally:
            held.close()


def settle_heap() -> None:
    """Once the server has started: what is alive now (modules, the app, caches: some 200k objects)
    lives as long as the process, so it moves out of the cyclic collector's reach (``gc.freeze``) and
    young-generation collections run less often. Without this, every full collection walked the whole
    heap — 150-200 ms pauses holding the GIL, about 3 s per 20 s of a 1,000 events/s load on DuckDB
    (``benchmarks/segment_freshness.py``), stalling the API, the flusher and the refresher alike."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


#: young-generation threshold of a serving process (CPython's default is 700; 3.13 uses 2,000)
GC_GEN0_THRESHOLD = 5000


def _operation_id(route: APIRoute) -> str:
    return route.name


def _scores_batch_at():
    """``MEDSCRM_SCORES_BATCH_AT`` for the scheduled scores batch (None where the scores module is absent)."""
    try:
        from medscrm.scores.schedule import configured_at
    except ImportError:
        return None
    return configured_at()


def _retention_jobs(engine: sa.Engine) -> list:
    """The daily retention run (``MEDSCRM_RETENTION_AT``; off by default) for the refresher's slow lane."""
    from medscrm.privacy import retention

    at = retention.configured_at()
    return [lambda: retention.run_due(engine, at=at)] if at is not None else []


def create_served_app() -> FastAPI:
    """The app of one ``medscrm serve --workers N`` process (uvicorn's factory)."""
    return create_app(workers=int(os.environ.get(WORKERS_ENV, "1")))


def create_app(
    engine: sa.Engine | None = None,
    *,
    spool_dir: Path | None = None,
    fsync: bool = True,
    refresher: bool | dict | None = None,
    identity_follower: bool | None = None,
    workers: int = 1,
    span_exporter: Any = None,
) -> FastAPI:
    """The app. ``workers`` > 1: this is one of ``medscrm serve --workers N`` processes (see
    :mod:`medscrm.workers`: its own spool; the segment refresher only in the leader).
    ``span_exporter``: trace every request into it (an OpenTelemetry SDK exporter; tests), as
    ``MEDSCRM_OTEL=1`` does into OTLP."""
    # the segment refresher: on by default when the app owns its engine (`medscrm serve`;
    # MEDSCRM_SEGMENT_REFRESHER=0 turns it off); apps built on a given engine (tests) opt in
    if refresher is None:
        refresher = engine is None and get_settings().segment_refresher
    serving = engine is None  # `medscrm serve`: this process is the server, not a test's app
    if identity_follower is None:
        identity_follower = serving and get_settings().identity_follower
    follow_identity = identity_follower
    engine = engine or get_engine()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # sync endpoints run in AnyIO's thread pool (40 threads by default): no more threads than
        # database connections, so a request never waits for a connection while holding a thread
        to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE + POOL_OVERFLOW
        root = spool_dir or default_spool_dir(engine.url)
        slot = take_slot(root, workers) if workers > 1 else None
        if slot and slot.leader:
            drain_orphan_spools(engine, root, workers, fsync=fsync)
        app.state.ingestor = Ingestor(engine, slot.spool_dir if slot else root, fsync=fsync)
        app.state.ingestor.start()
        # a dict: the Refresher's options (e.g. {"tenant_id": …} to follow one tenant only)
        options = refresher if isinstance(refresher, dict) else {}
        if serving and "scores_batch_at" not in options:
            options = {**options, "scores_batch_at": _scores_batch_at()}
        if serving and "daily_jobs" not in options:
            options = {**options, "daily_jobs": _retention_jobs(engine)}
        app.state.refresher = (
            Refresher(engine, wake=lambda: app.state.ingestor.stored_events, **options)
            if refresher is not False and refresher is not None and (slot is None or slot.leader)
            else None
        )
        if app.state.refresher:
            app.state.refresher.start()
            # the persons of each stored batch go to the real-time tags and scores right after the commit
            app.state.ingestor.on_stored = app.state.refresher.notify_stored
        # identity resolution of new records (identify calls, imports): incremental, within seconds
        app.state.identity = (
            IdentityFollower(engine, wake=lambda: app.state.ingestor.stored_events)
            if follow_identity and (slot is None or slot.leader)
            else None
        )
        if app.state.identity:
            app.state.identity.start()
        # journeys: in-process runner when serving the configured DuckDB (PostgreSQL: `medscrm worker`)
        app.state.journeys = _journeys.start_background(engine) if engine is get_engine() else None
        # the webhook dispatcher beside it, under the same rule
        app.state.webhooks = _webhooks.start_background(engine) if engine is get_engine() else None
        # the Ingestor's and Refresher's figures into the Prometheus metrics, once a second
        app.state.metrics_sampler = observe.Sampler(app.state)
        app.state.metrics_sampler.start()
        if serving:
            settle_heap()
        try:
            yield
        finally:
            app.state.metrics_sampler.stop()
            if app.state.journeys:
                app.state.journeys.stop()
            if app.state.webhooks:
                app.state.webhooks.stop()
            if app.state.identity:
                app.state.identity.stop()
            if app.state.refresher:
                app.state.refresher.stop()
            app.state.ingestor.stop()
            if slot:
                slot.release()

    app = FastAPI(
        title="medscrm API",
        version=__version__,
        lifespan=lifespan,
        # operationId = the route function's name (unique across the app: tests/api/test_openapi_ids.py),
        # so that the generated client reads ``medscrm_client.api.webhooks.list_subscriptions``
        generate_unique_id_function=_operation_id,
        # OpenTelemetry only with MEDSCRM_OTEL=1: FastAPI otherwise re-reads its settings on every
        # request (~8% of a /v1/track)
        telemetry=observe.telemetry_config(span_exporter),
        description="SCRM + HCP360 for pharma and medtech in China. `/api/v1/*` needs "
        "`Authorization: Bearer <token>` (create one with `medscrm tokens create --role ROLE`). "
        "`/v1/*` is the Segment-spec collection API (write key as the HTTP Basic user).",
    )
    app.state.engine = engine
    app.state.sources = collect.SourceCache(engine)
    app.state.max_backlog = get_settings().spool_max_backlog_mb * 1024 * 1024
    app.state.ingest_stall_seconds = get_settings().ingest_stall_seconds  # read by /api/v1/health

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(x) for x in e["loc"] if x != "body"), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid_request",
                "errors": errors,
                "field": errors[0]["field"] if errors else None,
            },
        )

    @app.exception_handler(MedscrmError)
    async def _refused(request: Request, exc: MedscrmError) -> JSONResponse:
        # a domain error a route did not answer itself: 404, 422 (naming the field) or 409
        status, body = from_medscrm_error(
            exc,
            shape=shape_of(request.url.path, request.scope.get("endpoint")),
            path_params=request.path_params,
        )
        return JSONResponse(status_code=status, content=body)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug: logged with its traceback under a reference the answer names; the answer itself
        # carries neither the traceback nor the exception's text (it may hold SQL or personal data)
        ref = uuid.uuid4().hex[:12]
        log.error("unexpected error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
        rid = REQUEST_ID.get()  # this handler answers outside the request middleware: it adds the id
        return JSONResponse(
            status_code=500,
            headers={"X-Request-ID": rid} if rid else None,
            content={
                "error": "internal_error",
                "errors": [{"field": None, "reason": f"internal error; reference {ref} in the server log"}],
            },
        )

    app.include_router(core.public)
    app.include_router(core.router)
    app.include_router(events_api.router)
    app.include_router(persons_api.router)
    app.include_router(segments_api.router)
    app.include_router(collect.router)
    app.include_router(collect.callbacks)
    app.add_middleware(collect.FastLane)  # /v1/* collection answered before routing
    # --- routers of later modules (one line each): scores, outreach/content, journeys, web console ---
    app.include_router(scores_api.router)  # scores, behaviour tags, micro-segments
    app.include_router(journeys_api.router)  # journeys
    app.include_router(tasks_api.router)  # reps' tasks from journeys
    app.include_router(webhooks_api.router)
    app.include_router(dsr_api.router)  # data-subject requests (PIPL)
    app.include_router(retention_api.router)  # retention policies and runs
    app.include_router(sso_api.router)  # console single sign-on settings
    app.include_router(outreach_api.router)  # content, consents, sends, tracked links
    app.include_router(web_routes.router)  # the web console at /
    declare_body_errors(app)
    app.add_middleware(AuditGuard)  # every write and read of personal data leaves an audit row
    # request ids, latency by route template and /metrics; the middleware is the outermost, so the
    # fast lane's requests are counted too
    observe.install(app, engine, frozenset(f"/v1/{c}" for c in collect.FAST_CALLS))
    return app
