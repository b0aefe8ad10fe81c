"""Console content library (where the content module is installed)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import Response

from medscrm.common import NotFound
from medscrm.web import data
from medscrm.web.routes.base import ConsoleRoute, Page, _engine, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


# --- content library ------------------------------------------------------------------------------------
@router.get("/content")
def content_page(ctx: Page, status: str = "") -> Response:
    ctx.require("data.read")
    svc = data.optional_module("content.service")
    if svc is None:
        raise NotFound("the content module is not installed")
    now = dt.datetime.now(dt.UTC)
    with _engine(ctx.request).begin() as conn:  # list_items persists expiry (approved → expired)
        items = svc.list_items(conn, tenant_id=ctx.tenant_id, status=status or None)
        perf = data.content_performance(conn, tenant_id=ctx.tenant_id)
    soon = now + dt.timedelta(days=30)
    for it in items:
        exp = it.get("expires_at")
        if exp is not None and exp.tzinfo is None:
            exp = exp.replace(tzinfo=dt.UTC)
        it["expiry_state"] = (
            "expired"
            if it.get("status") == "expired" or (exp and exp <= now)
            else "soon"
            if exp and exp <= soon
            else ""
        )
        it["perf"] = perf.get(it["id"], {})
    return render(
        ctx, "content.html", items=items, status_filter=status, statuses=getattr(svc, "STATUSES", ())
    )
