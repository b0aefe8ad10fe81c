"""Console journey results: the A/B section of the journey page (per-variant figures, the test in
words, a chart; the conversion the user picks) and the persons behind a figure (a step's sends or
blocks by reason, a variant's persons), masked per role, paginated, exported as formula-safe CSV."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import Response

from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound
from medscrm.journeys import results as jr
from medscrm.web import data
from medscrm.web.auth import Ctx, Forbidden
from medscrm.web.routes.base import ConsoleRoute, Page, _engine, _scope, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50


def _journeys_svc(ctx: Ctx):
    """The journeys service, for roles that see journeys (as the journey pages: not reps)."""
    ctx.require("data.read")
    if ctx.is_rep:
        raise Forbidden("journeys")
    svc = data.optional_module("journeys.service")
    if svc is None:
        raise NotFound("the journeys module is not installed")
    return svc


def _pp(x: float) -> str:
    """A difference of proportions in percentage points, signed."""
    return f"{x * 100:+.1f}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def sentence(t, cmp: dict[str, Any], variant: str, control: str) -> str:
    """The comparison of a variant with the control, in words."""
    if not cmp["enough"]:
        return t("res.not_enough_" + (cmp["why"] or "too_few_entered"), n=jr.MIN_PER_VARIANT)
    lo, hi = cmp["ci"]
    verdict = t("res.significant") if cmp["p_value"] < 0.05 else t("res.not_significant")
    return t(
        "res.compare",
        variant=variant,
        control=control,
        diff=_pp(cmp["diff"]),
        lo=_pp(lo),
        hi=_pp(hi),
        test=t.label("test", cmp["test"]),
        p=_p(cmp["p_value"]),
        verdict=verdict,
    )


def _chart(split: dict[str, Any], t) -> dict[str, Any]:
    """Conversion rate per variant (bars, %), with the persons entered in the tooltip."""
    vs = split["variants"]
    return {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 16, "top": 28, "bottom": 28},
        "xAxis": {"type": "category", "data": [v["label"] for v in vs]},
        "yAxis": {"type": "value", "name": t("res.rate_axis"), "axisLabel": {"formatter": "{value}%"}},
        "series": [
            {
                "type": "bar",
                "name": t("res.rate"),
                "barMaxWidth": 48,
                "label": {"show": True, "position": "top", "formatter": "{c}%"},
                "data": [round((v["rate"] or 0) * 100, 1) for v in vs],
            }
        ],
    }


def _conversion(ctx: Ctx) -> tuple[jr.Conversion | None, str | None, dict[str, str]]:
    """The conversion the page's form asks for (None: the journey's default), an error naming the
    field, and the form's values."""
    q = ctx.request.query_params
    form = {k: (q.get(f"conv_{k}") or "").strip() for k in ("mode", "event", "property", "value", "days")}
    if not form["mode"]:
        return None, None, form
    try:
        days = int(form["days"] or jr.DEFAULT_DAYS)
    except ValueError:
        return None, f"{ctx.t('res.days')}: {form['days']}", form
    conv = jr.Conversion(
        mode=form["mode"],
        event=form["event"] or None,
        prop=form["property"] or None,
        value=form["value"] or None,
        days=days,
    )
    try:
        return conv.check(), None, form
    except InvalidInput as exc:
        return None, str(exc), form


def results_view(ctx: Ctx, conn: sa.Connection, key: str) -> dict[str, Any]:
    """What journey_results.html needs: the results with each comparison in words and a chart."""
    conv, error, form = _conversion(ctx)
    res = jr.split_results(conn, tenant_id=ctx.tenant_id, key=key, conversion=conv)
    if not form["mode"]:
        c = res["conversion"]
        form = {
            "mode": c["mode"],
            "event": c["event"] or "",
            "property": c["property"] or "",
            "value": c["value"] or "",
            "days": str(c["days"]),
        }
    for s in res["splits"]:
        control = s["variants"][0]["label"]
        for v in s["variants"][1:]:
            v["sentence"] = sentence(ctx.t, v["vs_control"], v["label"], control)
        s["chart"] = _chart(s, ctx.t)
        o = s["overall"]
        s["overall_sentence"] = (
            ctx.t("res.overall", p=_p(o["p_value"]), chi2=f"{o['statistic']:.2f}", dof=o["dof"])
            if o
            else None
        )
    return {"results": res, "conv_form": form, "conv_error": error}


def _drill(step: str, outcome: str, reason: str, split: str, variant: int | None) -> jr.Drill:
    return jr.Drill(
        step=step or None,
        outcome=outcome or None,
        reason=reason or None,
        split=split or None,
        variant=variant,
    )


@router.get("/journeys/{key}/persons")
def journey_persons(
    ctx: Page,
    key: str,
    step: str = "",
    outcome: str = "",
    reason: str = "",
    split: str = "",
    variant: Annotated[int | None, Query(ge=0, le=19)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    svc = _journeys_svc(ctx)
    drill = _drill(step, outcome, reason, split, variant)
    with _engine(ctx.request).connect() as conn:
        j = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=key)
        rows, total = jr.persons_behind(
            conn,
            tenant_id=ctx.tenant_id,
            key=key,
            drill=drill,
            role=ctx.role,
            scope=_scope(ctx),
            limit=PAGE,
            offset=(page - 1) * PAGE,
        )
    params = {
        k: v for k, v in {"step": step, "outcome": outcome, "reason": reason, "split": split}.items() if v
    }
    if variant is not None:
        params["variant"] = str(variant)
    label = None
    if split:
        branches = next((s for s in j["definition"]["steps"] if s["id"] == split), {}).get("branches", [])
        label = (
            branches[variant].get("label") if variant is not None and variant < len(branches) else None
        ) or (chr(ord("A") + (variant or 0)))
    return render(
        ctx,
        "journey_persons.html",
        j=j,
        rows=rows,
        total=total,
        page=page,
        more=page * PAGE < total,
        drill=drill,
        variant_label=label,
        query=urlencode(params),
        params=params,
    )


@router.get("/journeys/{key}/persons.csv")
def journey_persons_csv(
    ctx: Page,
    key: str,
    step: str = "",
    outcome: str = "",
    reason: str = "",
    split: str = "",
    variant: Annotated[int | None, Query(ge=0, le=19)] = None,
) -> Response:
    _journeys_svc(ctx)
    drill = _drill(step, outcome, reason, split, variant)
    with _engine(ctx.request).begin() as conn:
        text = jr.persons_csv(
            conn, tenant_id=ctx.tenant_id, key=key, drill=drill, role=ctx.role, scope=_scope(ctx)
        )
        accounts.audit(
            conn=conn,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            action="journey.export",
            object_type="journey",
            object_id=key,
            detail={"role": ctx.role, **{k: v for k, v in drill.__dict__.items() if v is not None}},
        )
    name = f"{key}-{split or step}-{variant if split else (reason or outcome)}.csv"
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
