"""Console page for the DPO (permission ``privacy.manage``): retention. The policy of every data
category (keep days, delete or anonymise, event-name patterns, on/off) with an edit form each, the
latest runs, a dry run that shows its report, and a real run behind a confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from medscrm.common import InvalidInput, MedscrmError, NotFound
from medscrm.privacy import retention
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _page(ctx, *, run_id: str = "", error: str | None = None, notice: str | None = None, status: int = 200):
    report = None
    with _engine(ctx.request).connect() as conn:
        pols = retention.policies(conn, tenant_id=ctx.tenant_id)
        runs = retention.list_runs(conn, tenant_id=ctx.tenant_id, limit=20)
        if run_id:
            try:
                report = retention.get_run(conn, tenant_id=ctx.tenant_id, run_id=run_id)
            except NotFound:
                error = error or ctx.t("retention.run_gone")
    at = retention.configured_at()
    return render(
        ctx,
        "retention.html",
        status=status,
        policies=pols,
        runs=runs,
        report=report,
        schedule=at.strftime("%H:%M") if at else None,
        error=error,
        notice=notice,
    )


@router.get("/retention")
def retention_page(ctx: Page, run: str = "", saved: str = "") -> Response:
    ctx.require("privacy.manage")
    notice = (
        ctx.t("retention.saved", category=ctx.t.label("retcat", saved))
        if saved in retention.CATEGORIES
        else None
    )
    return _page(ctx, run_id=run.strip(), notice=notice)


def _error_text(ctx, category: str, exc: MedscrmError) -> str:
    """The refusal in the page's language: the floor case names the category and the floor."""
    label = ctx.t.label("retcat", category)
    floor = retention.floors().get(category)
    if isinstance(exc, InvalidInput) and exc.field == "keep_days" and floor and "legal minimum" in exc.reason:
        return ctx.t("retention.err_floor", category=label, floor=floor)
    if isinstance(exc, InvalidInput):
        return ctx.t("retention.err_invalid", category=label, field=ctx.t.label("retfield", exc.field))
    return str(exc)


@router.post("/retention/policies/{category}")
def retention_save(
    ctx: Page,
    _: Csrf,
    category: str,
    keep_days: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    patterns: Annotated[str, Form()] = "",
    enabled: Annotated[str, Form()] = "",
) -> Response:
    ctx.require("privacy.manage")
    if category not in retention.CATEGORIES:
        return _page(ctx, error=ctx.t("retention.err_category"), status=404)
    try:
        days = int(keep_days.strip())
    except ValueError:
        return _page(ctx, error=_error_text(ctx, category, InvalidInput("keep_days", "a number")), status=422)
    try:
        with _engine(ctx.request).begin() as conn:
            retention.set_policy(
                conn,
                tenant_id=ctx.tenant_id,
                category=category,
                actor=ctx.actor,
                keep_days=days,
                action=action or None,
                enabled=bool(enabled),
                patterns=retention.parse_patterns(patterns)
                if retention.CATEGORIES[category].uses_patterns
                else None,
            )
    except MedscrmError as exc:
        return _page(ctx, error=_error_text(ctx, category, exc), status=422)
    return _redirect(ctx, f"/retention?saved={category}")


@router.post("/retention/dry-run")
def retention_dry_run(ctx: Page, _: Csrf) -> Response:
    ctx.require("privacy.manage")
    res = retention.run(_engine(ctx.request), tenant_id=ctx.tenant_id, actor=ctx.actor, dry_run=True)
    return _redirect(ctx, f"/retention?run={res['id']}")


@router.post("/retention/run")
def retention_run(ctx: Page, _: Csrf, confirm: Annotated[str, Form()] = "") -> Response:
    ctx.require("privacy.manage")
    if not confirm:
        return _page(ctx, error=ctx.t("retention.confirm_missing"), status=422)
    res = retention.run(_engine(ctx.request), tenant_id=ctx.tenant_id, actor=ctx.actor, dry_run=False)
    return _redirect(ctx, f"/retention?run={res['id']}")
