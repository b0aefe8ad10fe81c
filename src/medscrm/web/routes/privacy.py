"""Console page for the DPO (permission ``privacy.manage``): data-subject requests under PIPL
Arts. 44–47. Look a person up by any identifier, see what is held (rows per table), download the
export, restrict / lift, hold / release, erase (confirmed), download certificates, read the log.

The identifier is posted, never put in a URL (URLs end up in logs and browser history); the page
then shows the person by their pseudonymous id (``/privacy?person=per_…``)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from medscrm.accounts import service as accounts
from medscrm.common import MedscrmError, NotFound
from medscrm.privacy import service
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
KINDS = tuple(service.KINDS)


def _page(
    ctx,
    *,
    person: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    erased: str = "",
    audit_read: bool = False,
):
    held = None
    with _engine(ctx.request).begin() as conn:
        if person:
            try:
                held = service.held(conn, tenant_id=ctx.tenant_id, identifier=person, kind="person_id")
            except NotFound:
                error = error or ctx.t("privacy.person_gone")
            if held is not None and audit_read:  # looking at what is held is a read of personal data
                accounts.audit(
                    conn=conn,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    action="dsr.lookup",
                    object_type="person",
                    object_id=held["person_id"],
                    detail={"via": "console"},
                )
        requests = service.list_requests(conn, tenant_id=ctx.tenant_id, limit=50)
    return render(
        ctx,
        "privacy.html",
        status=status,
        held=held,
        requests=requests,
        kinds=KINDS,
        labels={
            "kinds": {k: ctx.t(f"privacy.kind_{k}") for k in KINDS},
            "requests": {k: ctx.t(f"privacy.kind_req_{k}") for k in service.REQUEST_KINDS},
            "statuses": {k: ctx.t(f"privacy.status_{k}") for k in ("received", "done", "refused", "failed")},
        },
        error=error,
        notice=notice,
        erased=erased,
    )


@router.get("/privacy")
def privacy_page(ctx: Page, person: str = "", done: str = "", erased: str = "") -> Response:
    ctx.require("privacy.manage")
    notice = ctx.t(f"privacy.done_{done}") if done in service.REQUEST_KINDS else None
    if erased:
        notice = ctx.t("privacy.done_erase")
    return _page(ctx, person=person.strip(), notice=notice, erased=erased, audit_read=True)


@router.post("/privacy/lookup")
def privacy_lookup(
    ctx: Page, _: Csrf, identifier: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "auto"
) -> Response:
    ctx.require("privacy.manage")
    try:
        with _engine(ctx.request).connect() as conn:
            pid = service.find_person(conn, tenant_id=ctx.tenant_id, identifier=identifier, kind=kind)
    except MedscrmError as exc:
        return _page(
            ctx,
            error=ctx.t("privacy.not_found", detail=str(exc)),
            status=404 if isinstance(exc, NotFound) else 422,
        )
    return _redirect(ctx, f"/privacy?person={pid}")


def _act(ctx, person: str, fn) -> Response | None:
    """Run one request on the person shown; an error re-renders the page with the reason."""
    try:
        with _engine(ctx.request).begin() as conn:
            return fn(conn)
    except MedscrmError as exc:
        return _page(ctx, person=person, error=str(exc), status=404 if isinstance(exc, NotFound) else 422)


@router.post("/privacy/export")
def privacy_export(
    ctx: Page, _: Csrf, person: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = ""
) -> Response:
    ctx.require("privacy.manage")
    out = _act(
        ctx,
        person,
        lambda c: service.export(
            c,
            tenant_id=ctx.tenant_id,
            identifier=person,
            kind="person_id",
            actor=ctx.actor,
            reason=reason or None,
        ),
    )
    if isinstance(out, Response):
        return out
    req, blob = out
    return Response(
        blob,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="dsr-export-{req["id"]}.zip"'},
    )


@router.post("/privacy/restrict")
def privacy_restrict(
    ctx: Page,
    _: Csrf,
    person: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    lift: Annotated[str, Form()] = "",
) -> Response:
    ctx.require("privacy.manage")
    out = _act(
        ctx,
        person,
        lambda c: service.restrict(
            c,
            tenant_id=ctx.tenant_id,
            identifier=person,
            kind="person_id",
            actor=ctx.actor,
            reason=reason or None,
            lift=bool(lift),
        ),
    )
    if isinstance(out, Response):
        return out
    return _redirect(ctx, f"/privacy?person={person}&done={out['kind']}")


@router.post("/privacy/hold")
def privacy_hold(
    ctx: Page,
    _: Csrf,
    person: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    release: Annotated[str, Form()] = "",
) -> Response:
    ctx.require("privacy.manage")
    out = _act(
        ctx,
        person,
        lambda c: service.hold(
            c,
            tenant_id=ctx.tenant_id,
            identifier=person,
            kind="person_id",
            actor=ctx.actor,
            reason=reason or None,
            release=bool(release),
        ),
    )
    if isinstance(out, Response):
        return out
    return _redirect(ctx, f"/privacy?person={person}&done={out['kind']}")


@router.post("/privacy/erase")
def privacy_erase(
    ctx: Page,
    _: Csrf,
    person: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    ctx.require("privacy.manage")
    if confirm.strip() != person.strip() or not person.strip():
        return _page(ctx, person=person, error=ctx.t("privacy.confirm_mismatch"), status=422)
    out = _act(
        ctx,
        person,
        lambda c: service.erase(
            c,
            tenant_id=ctx.tenant_id,
            identifier=person,
            kind="person_id",
            actor=ctx.actor,
            reason=reason or None,
        ),
    )
    if isinstance(out, Response):
        return out
    if out["status"] == "refused":
        return _page(
            ctx,
            person=person,
            error=ctx.t("privacy.refused_hold", why=(out["result"] or {}).get("why", "")),
            status=409,
        )
    return _redirect(ctx, f"/privacy?erased={out['id']}")


@router.get("/privacy/requests/{request_id}/certificate")
def privacy_certificate(ctx: Page, request_id: str) -> Response:
    ctx.require("privacy.manage")
    with _engine(ctx.request).connect() as conn:
        cert = service.certificate(conn, tenant_id=ctx.tenant_id, request_id=request_id)
    ctx.audit_read("dsr.certificate.read", object_type="dsr_request", object_id=request_id)
    return Response(
        json.dumps(cert, ensure_ascii=False, indent=2).encode("utf-8"),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="erasure-certificate-{request_id}.json"'},
    )
