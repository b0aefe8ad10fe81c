"""The web console: server-rendered pages (Jinja2) with HTMX and ECharts, served at ``/``.

Registered in ``medscrm.app.create_app`` with one line. The pages are grouped by domain, one module
each; :data:`router` gathers them in the order below (a path that two modules could match goes to
the first). Every route goes through :class:`~medscrm.web.routes.base.ConsoleRoute`, which turns
errors into friendly pages (never a stack trace), sends unauthenticated visitors to the login page and
adds a ``Server-Timing: app;dur=<ms>`` header.
"""

from __future__ import annotations

from fastapi import APIRouter

from medscrm.web.routes import (
    audit,
    auth,
    compliance,
    content,
    identity,
    imports,
    journey_results,
    journeys,
    outbox,
    persons,
    privacy,
    retention,
    segments,
    sso,
    static,
    tasks,
    webhooks,
)
from medscrm.web.routes.base import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
for _pages in (
    static,
    auth,
    persons,
    identity,
    segments,
    imports,
    audit,
    compliance,
    journey_results,
    journeys,
    content,
    tasks,
    webhooks,
    outbox,
    privacy,
    retention,
    sso,
):
    router.include_router(_pages.router)
