"""The FastAPI application factory: assembles the routers of each domain."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from medscrm import __version__
from medscrm.api import collect, core
from medscrm.api import events as events_api
from medscrm.api import persons as persons_api
from medscrm.api import segments as segments_api
from medscrm.config import get_settings
from medscrm.db import get_engine
from medscrm.ingest.events import Ingestor


def default_spool_dir(engine: sa.Engine) -> Path:
    configured = get_settings().spool_dir
    if configured:
        return Path(configured)
    if engine.dialect.name == "duckdb" and engine.url.database:
        return Path(engine.url.database + ".spool")
    return Path.cwd() / "medscrm-spool"


def create_app(
    engine: sa.Engine | None = None, *, spool_dir: Path | None = None, fsync: bool = True
) -> FastAPI:
    engine = engine or get_engine()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.ingestor = Ingestor(engine, spool_dir or default_spool_dir(engine), fsync=fsync)
        app.state.ingestor.start()
        try:
            yield
        finally:
            app.state.ingestor.stop()

    app = FastAPI(
        title="medscrm API",
        version=__version__,
        lifespan=lifespan,
        description="SCRM + HCP360 for pharma and medtech in China. `/api/v1/*` needs "
        "`Authorization: Bearer <token>` (create one with `medscrm tokens create --role ROLE`). "
        "`/v1/*` is the Segment-spec collection API (write key as the HTTP Basic user).",
    )
    app.state.engine = engine
    app.state.sources = collect.SourceCache(engine)
    app.state.max_backlog = get_settings().spool_max_backlog_mb * 1024 * 1024

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

    app.include_router(core.public)
    app.include_router(core.router)
    app.include_router(events_api.router)
    app.include_router(persons_api.router)
    app.include_router(segments_api.router)
    app.include_router(collect.router)
    app.include_router(collect.callbacks)
    # --- routers of later modules (one line each): scores, outreach/content, journeys, web console ---
    return app
