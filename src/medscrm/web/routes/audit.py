"""Console audit log."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import Response

from medscrm.db.schema import audit_log
from medscrm.web.routes.base import ConsoleRoute, Page, _engine, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


# --- audit log ---------------------------------------------------------------------------------------------
@router.get("/audit")
def audit_page(
    ctx: Page, action: str = "", actor: str = "", page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> Response:
    ctx.require("audit.read")
    a = audit_log
    stmt = sa.select(a).where(a.c.tenant_id == ctx.tenant_id)
    if action.strip():
        stmt = stmt.where(a.c.action.startswith(action.strip(), autoescape=True))
    if actor.strip():
        stmt = stmt.where(a.c.actor.contains(actor.strip(), autoescape=True))
    with _engine(ctx.request).connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                stmt.order_by(a.c.occurred_at.desc(), a.c.id).limit(51).offset((page - 1) * 50)
            ).mappings()
        ]
    ctx.audit_read("audit.read", object_type="audit_log", count=len(rows[:50]))
    return render(
        ctx,
        "audit.html",
        rows=rows[:50],
        more=len(rows) > 50,
        page=page,
        params={"action": action, "actor": actor},
    )
