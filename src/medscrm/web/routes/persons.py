"""Console dashboard, HCP search, the HCP 360 page and unmerge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from medscrm import access
from medscrm.accounts import service as accounts
from medscrm.common import NotFound
from medscrm.profiles import service as profiles
from medscrm.web import data
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _is_htmx, _redirect, _scope, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


# --- dashboard --------------------------------------------------------------------------------------------
@router.get("/")
def dashboard(ctx: Page) -> Response:
    ctx.require("data.read")
    with _engine(ctx.request).connect() as conn:
        d = data.dashboard(conn, tenant_id=ctx.tenant_id, scope=_scope(ctx))
    return render(ctx, "dashboard.html", d=d, charts=data.chart_options(d, ctx.t))


# --- HCP search and 360 ----------------------------------------------------------------------------------
@router.get("/hcps")
def hcps(
    ctx: Page,
    q: str = "",
    hospital: str = "",
    department: str = "",
    person_type: str = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    ctx.require("data.read")
    limit = 50
    with _engine(ctx.request).connect() as conn:
        rows = data.search(
            conn,
            tenant_id=ctx.tenant_id,
            role=ctx.role,
            scope=_scope(ctx),
            q=q[:200],
            hospital=hospital[:200],
            department=department[:200],
            person_type=person_type,
            limit=limit + 1,
            offset=(page - 1) * limit,
        )
    more = len(rows) > limit
    ctx.audit_read(
        "persons.search",
        object_type="person",
        persons=[r.get("person_id") or r.get("id") for r in rows[:limit]],
    )
    params = {"q": q, "hospital": hospital, "department": department, "person_type": person_type}
    name = "hcps_results.html" if _is_htmx(ctx.request) else "hcps.html"
    return render(ctx, name, rows=rows[:limit], more=more, page=page, params=params)


@router.get("/hcps/{person_id}")
def profile(ctx: Page, person_id: str) -> Response:
    ctx.require("data.read")

    engine = _engine(ctx.request)
    with engine.begin() as conn:
        person = profiles.resolve_person_id(conn, ctx.tenant_id, person_id)
        if person["id"] != person_id:
            return _redirect(ctx, f"/hcps/{person['id']}")
        records = data.records_of(conn, tenant_id=ctx.tenant_id, person_id=person["id"], role=ctx.role)
        prof = profiles.get_profile(
            conn, tenant_id=ctx.tenant_id, person_id=person["id"], role=ctx.role, actor=ctx.actor, audit=False
        )
        owners = access.owners_of(
            conn,
            tenant_id=ctx.tenant_id,
            person_id=person["id"],
            records=records,
            links=any(i["type"] == "wecom_external_userid" for i in prof["identities"]),
        )
        if ctx.is_rep and not set(access.rep_keys(ctx.user)) & {o["rep"] for o in owners}:  # type: ignore[arg-type]
            raise NotFound(f"person {person_id!r} not found among your HCPs")
        accounts.audit(  # what profiles.get_profile audits, written once the read is allowed
            conn=conn,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            **profiles.read_audit(person["id"], ctx.role, via="console"),
        )
        prof["attributes"] = access.visible_attributes(prof["attributes"], ctx.role)
        consents = data.consents_of(conn, tenant_id=ctx.tenant_id, person_id=person["id"])
        timeline = data.readable_timeline(
            conn, tenant_id=ctx.tenant_id, person_id=person["id"], records=records, t=ctx.t, role=ctx.role
        )
    tags = data.tag_views(prof.get("tags") or [], ctx.t)
    scores = data.score_views(prof.get("scores") or {}, ctx.t)
    stage_info = prof.get("stage") or {}
    tier = prof.get("tier") or prof["attributes"].get("crm_tier")
    stage = [ctx.t.label(k, stage_info[k]) for k in ("aipl", "lifecycle") if stage_info.get(k)]
    return render(
        ctx,
        "profile.html",
        p=prof,
        records=records,
        tags=tags,
        scores=scores,
        consents=consents,
        timeline=timeline,
        owners=owners,
        tier=tier,
        stage=stage,
        split=ctx.request.query_params.get("split"),
    )


@router.post("/hcps/{person_id}/unmerge")
def unmerge(
    ctx: Page, _: Csrf, person_id: str, record_ids: Annotated[list[str] | None, Form()] = None
) -> Response:
    ctx.require("identity.manage")
    # lazy: off the server's start-up path
    from medscrm.persons import review

    with _engine(ctx.request).begin() as conn:
        review.unmerge(
            conn,
            tenant_id=ctx.tenant_id,
            person_id=person_id,
            record_ids=record_ids or [],
            actor=ctx.actor,
            reason="console",
        )
    return _redirect(ctx, f"/hcps/{person_id}?split=1")
