"""Data-subject requests (PIPL Arts. 44–47): ``/api/v1/dsr`` (permission ``privacy.manage``: the DPO
— compliance — and admin).

Each request names ONE person by an identifier in the request body (never in the URL, which ends
up in logs): a person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence number,
source-record id or event user id; ``kind`` says which when the value is ambiguous (default
``auto``). An identifier that finds nobody answers 404 ("no person found for …") and changes
nothing. Every other request is logged (``GET /api/v1/dsr/requests``) and audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.privacy import service

router = APIRouter(prefix="/api/v1/dsr", tags=["privacy"], responses=responses(*AUTH))
Dpo = Annotated[Principal, require("privacy.manage")]
NOT_FOUND = responses(404)

Kind = Literal[
    "auto",
    "person_id",
    "source_record",
    "phone",
    "email",
    "license_no",
    "wecom",
    "openid",
    "unionid",
    "user_id",
]


class Subject(BaseModel):
    identifier: str = Field(
        min_length=1,
        max_length=300,
        description="Person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence number, "
        "source-record id or event user id",
    )
    kind: Kind = Field("auto", description="How to read the identifier (auto tries each)")
    reason: str | None = Field(None, max_length=2000, description="The request's reference or legal basis")


class EraseIn(Subject):
    confirm: bool = Field(description="Must be true: an erasure cannot be undone")


class CorrectIn(Subject):
    field: str = Field(description="A golden-record field: " + ", ".join(service.CORRECTABLE))
    value: str = Field(
        min_length=1, max_length=300, description="The corrected value (normalised like an import)"
    )


class RestrictIn(Subject):
    lift: bool = Field(False, description="Lift the restriction instead")


class HoldIn(Subject):
    release: bool = Field(False, description="Release the legal hold instead")


class DsrRequest(BaseModel):
    id: str
    kind: str = Field(description="export, correct, erase, restrict, lift, hold, release")
    status: str = Field(description="received, done, refused, failed")
    person_id: str | None = None
    identifier_type: str | None = None
    identifier_hash: str | None = Field(None, description="HMAC of the identifier as given (never in clear)")
    reason: str | None = None
    refusal_code: str | None = Field(None, description="legal_hold when an erasure was refused")
    result: dict[str, Any] | None = None
    certificate_sha256: str | None = None
    actor: str
    created_at: dt.datetime
    completed_at: dt.datetime | None = None


class Held(BaseModel):
    person_id: str
    person_ids: list[str] = Field(description="The person and every person merged into them")
    tables: dict[str, int] = Field(description="Rows about the person, per table")
    total_rows: int
    restricted: dict[str, Any] | None = None
    legal_hold: dict[str, Any] | None = None
    requests: list[DsrRequest]


class RequestList(BaseModel):
    requests: list[DsrRequest]


class Certificate(BaseModel):
    certificate: dict[str, Any] = Field(
        description="Request id, who, when, hashed identifiers, rows removed per table"
    )
    sha256: str = Field(description="sha256 of the certificate as canonical JSON (sorted keys, no spaces)")


@router.post(
    "/lookup",
    summary="What is held about a person (rows per table, restriction, hold)",
    response_model=Held,
    responses=NOT_FOUND,
)
def dsr_lookup(body: Subject, engine: EngineDep, p: Dpo) -> Any:
    with engine.begin() as conn:
        out = service.held(conn, tenant_id=p.tenant_id, identifier=body.identifier, kind=body.kind)
        from medscrm.accounts import service as accounts

        accounts.audit(
            conn=conn,
            tenant_id=p.tenant_id,
            actor=p.actor,
            action="dsr.lookup",
            object_type="person",
            object_id=out["person_id"],
        )
        return out


@router.post(
    "/export",
    summary="Export every row about a person (PIPL Art. 45): a zip of JSON and CSV per table with a manifest",
    response_class=Response,
    responses=responses(
        404, extra={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}}
    ),
)
def dsr_export(body: Subject, engine: EngineDep, p: Dpo) -> Response:
    with engine.begin() as conn:
        req, blob = service.export(
            conn,
            tenant_id=p.tenant_id,
            identifier=body.identifier,
            kind=body.kind,
            actor=p.actor,
            reason=body.reason,
        )
    return Response(
        blob,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="dsr-export-{req["id"]}.zip"',
            "X-DSR-Request-Id": req["id"],
        },
    )


@router.post(
    "/erase",
    summary="Erase a person (PIPL Art. 47); 409 with the request when refused (legal hold)",
    response_model=DsrRequest,
    responses=responses(404, 409),
)
def dsr_erase(body: EraseIn, engine: EngineDep, p: Dpo) -> Any:
    if not body.confirm:
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid_request",
                "errors": [{"field": "confirm", "reason": "an erasure cannot be undone: send confirm=true"}],
                "field": "confirm",
            },
        )
    with engine.begin() as conn:
        req = service.erase(
            conn,
            tenant_id=p.tenant_id,
            identifier=body.identifier,
            kind=body.kind,
            actor=p.actor,
            reason=body.reason,
        )
    if req["status"] == "refused":
        return JSONResponse(
            status_code=409,
            content={
                "error": "refused",
                "errors": [
                    {"field": "identifier", "reason": (req["result"] or {}).get("why", req["refusal_code"])}
                ],
                "field": "identifier",
            },
        )
    return req


@router.post(
    "/correct",
    summary="Correct a field of a person's golden record (PIPL Art. 46)",
    response_model=DsrRequest,
    responses=NOT_FOUND,
)
def dsr_correct(body: CorrectIn, engine: EngineDep, p: Dpo) -> Any:
    with engine.begin() as conn:
        return service.correct(
            conn,
            tenant_id=p.tenant_id,
            identifier=body.identifier,
            kind=body.kind,
            field=body.field,
            value=body.value,
            actor=p.actor,
            reason=body.reason,
        )


@router.post(
    "/restrict",
    summary="Restrict a person's processing (PIPL Art. 44): no segment, journey step or send; or lift it",
    response_model=DsrRequest,
    responses=NOT_FOUND,
)
def dsr_restrict(body: RestrictIn, engine: EngineDep, p: Dpo) -> Any:
    with engine.begin() as conn:
        return service.restrict(
            conn,
            tenant_id=p.tenant_id,
            identifier=body.identifier,
            kind=body.kind,
            actor=p.actor,
            reason=body.reason,
            lift=body.lift,
        )


@router.post(
    "/hold",
    summary="Put a person under legal hold (erasure refused), or release it",
    response_model=DsrRequest,
    responses=NOT_FOUND,
)
def dsr_hold(body: HoldIn, engine: EngineDep, p: Dpo) -> Any:
    with engine.begin() as conn:
        return service.hold(
            conn,
            tenant_id=p.tenant_id,
            identifier=body.identifier,
            kind=body.kind,
            actor=p.actor,
            reason=body.reason,
            release=body.release,
        )


@router.get("/requests", summary="The request log, newest first", response_model=RequestList)
def dsr_list_requests(engine: EngineDep, p: Dpo, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    with engine.connect() as conn:
        rows = service.list_requests(conn, tenant_id=p.tenant_id, limit=limit)
    p.audit_read(engine, "dsr.requests.read", object_type="dsr_request", count=len(rows))
    return {"requests": rows}


@router.get("/requests/{request_id}", summary="One request", response_model=DsrRequest, responses=NOT_FOUND)
def dsr_get_request(request_id: str, engine: EngineDep, p: Dpo) -> Any:
    with engine.connect() as conn:
        req = service.get_request(conn, tenant_id=p.tenant_id, request_id=request_id)
    p.audit_read(engine, "dsr.request.read", object_type="dsr_request", object_id=request_id)
    return req


@router.get(
    "/requests/{request_id}/certificate",
    summary="The erasure certificate of an erase request, with its sha256",
    response_model=Certificate,
    responses=NOT_FOUND,
)
def dsr_certificate(request_id: str, engine: EngineDep, p: Dpo) -> Any:
    with engine.connect() as conn:
        cert = service.certificate(conn, tenant_id=p.tenant_id, request_id=request_id)
    p.audit_read(engine, "dsr.certificate.read", object_type="dsr_request", object_id=request_id)
    return cert
