"""The FastAPI application factory: assembles the routers of each domain."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from medscrm import __version__
from medscrm.api import core
from medscrm.db import get_engine


def create_app(engine: sa.Engine | None = None) -> FastAPI:
    app = FastAPI(
        title="medscrm API",
        version=__version__,
        description="SCRM + HCP360 for pharma and medtech in China. `/api/v1/*` needs "
        "`Authorization: Bearer <token>` (create one with `medscrm tokens create --role ROLE`).",
    )
    app.state.engine = engine or get_engine()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(x) for x in e["loc"] if x != "body"), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"error": "invalid_request", "errors": errors})

    app.include_router(core.public)
    app.include_router(core.router)
    return app
