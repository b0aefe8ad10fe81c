"""Console tasks (/tasks): a rep's inbox of the tasks journeys left them (about their own HCPs), with
done / dismiss (with a note), audited; other roles see the tenant's tasks with filters (assignee,
status, journey) and the counts per assignee. Marketers and admins may close any task."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from medscrm.common import MedscrmError
from medscrm.db.schema import journeys
from medscrm.journeys import tasks as task_svc
from medscrm.web.auth import Ctx
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, _safe_next, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50


def _can_close(ctx: Ctx) -> bool:
    return ctx.can("outreach.send")  # reps (their own tasks), marketers, admins


def _page(
    ctx: Ctx,
    status: str,
    assignee: str | None,
    journey: str,
    page: int,
    error: str | None = None,
    code: int = 200,
) -> Response:
    ctx.require("data.read")

    with _engine(ctx.request).connect() as conn:
        kw = {"tenant_id": ctx.tenant_id, "role": ctx.role, "user": ctx.user}
        rows, total = task_svc.list_tasks(
            conn,
            status=None if status == "all" else status,
            assignee=None if ctx.is_rep else assignee,
            journey=journey or None,
            limit=PAGE,
            offset=(page - 1) * PAGE,
            **kw,
        )
        counts = task_svc.counts_by_assignee(conn, journey=journey or None, **kw)
        jlist = conn.execute(
            sa.select(journeys.c.key, journeys.c.name)
            .where(journeys.c.tenant_id == ctx.tenant_id)
            .order_by(journeys.c.key)
        ).all()
    params = {"status": status}
    if assignee is not None:
        params["assignee"] = assignee
    if journey:
        params["journey"] = journey
    return render(
        ctx,
        "tasks.html",
        code,
        rows=rows,
        total=total,
        counts=counts,
        journeys=jlist,
        params=params,
        page=page,
        more=page * PAGE < total,
        can_close=_can_close(ctx),
        back="/tasks?" + urlencode({**params, "page": page}),
        statuses=("open", "done", "dismissed", "all"),
        error=error,
    )


@router.get("/tasks")
def tasks_page(
    ctx: Page,
    status: str = "open",
    assignee: str | None = None,
    journey: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if status not in (*task_svc.STATUSES, "all"):
        status = "open"
    return _page(ctx, status, assignee, journey, page)


@router.post("/tasks/{task_id}/close")
def task_close(
    ctx: Page,
    _: Csrf,
    task_id: str,
    action: Annotated[str, Form()] = "done",
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/tasks",
) -> Response:
    ctx.require("outreach.send")
    try:
        with _engine(ctx.request).begin() as conn:
            task_svc.close_task(
                conn,
                tenant_id=ctx.tenant_id,
                task_id=task_id,
                action=action,
                note=note,
                actor=ctx.actor,
                role=ctx.role,
                user=ctx.user,
            )
    except MedscrmError as exc:  # a dismissal without a note, a task already closed: say so on the page
        msg = ctx.t("tasks.note_required") if getattr(exc, "field", None) == "note" else str(exc)
        return _page(ctx, "open", None, "", 1, error=msg, code=400)
    return _redirect(ctx, _safe_next(back) if back.startswith("/tasks") else "/tasks")
