"""Outreach API: the content library (MLR review), consents and do-not-contact, channels and the
sending policy, sends (list, rep-sent messages), and the public feedback endpoints: tracked links
``GET /r/{token}``, view beacons ``GET|POST /b/{token}``, SMS delivery receipts
``POST /callbacks/sms/aliyun|tencent``, SMS replies ``POST /callbacks/sms/aliyun|tencent/replies/
{tenant_id}/{token}`` (the tenant's callback token: providers do not sign these). Errors: ``{"error", "errors": [{"field", "reason"}]}``.

A rep token reaches only the HCPs the rep owns: consents, do-not-contact and sends of any other person
answer 404 as for a missing person, and the outbox lists sends to owned persons only."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from medscrm.accounts import service as accounts
from medscrm.accounts.secrets import check_callback_token
from medscrm.api.deps import EngineDep, Principal, check_person_visible, require
from medscrm.api.errors import AUTH, responses
from medscrm.common import NotFound
from medscrm.content import service as content
from medscrm.db.schema import tenants, users
from medscrm.outreach import compliance, consent, feedback
from medscrm.outreach import send as sending
from medscrm.outreach import settings as osettings

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["outreach"], responses=responses(*AUTH))
public = APIRouter(tags=["outreach feedback"])
Reader = Annotated[Principal, require("data.read")]
Writer = Annotated[Principal, require("data.import")]
Admin = Annotated[Principal, require("accounts.manage")]
Sender = Annotated[Principal, require("outreach.send")]
ContentWriter = Annotated[Principal, require("content.write")]
Reviewer = Annotated[Principal, require("content.review")]
Withdrawer = Annotated[Principal, require("content.withdraw")]
ConsentManager = Annotated[Principal, require("consent.manage")]
#: what the MedscrmError handler (app.py) answers besides 422: an unknown person, item or send;
#: a refused state change
REFUSED = responses(404, 409)
_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _actor(conn: sa.Connection, p: Principal) -> str:
    if p.user_id:
        name = conn.execute(sa.select(users.c.username).where(users.c.id == p.user_id)).scalar()
        if name:
            return name
    return p.actor


def _check_person(conn: sa.Connection, p: Principal, person_id: str) -> None:
    """NotFound, worded as for a missing person, unless ``p`` may see the person (a rep: their HCP)."""
    try:
        check_person_visible(conn, p, person_id)
    except NotFound:
        raise NotFound(f"person_id: person {person_id!r} not found in this tenant") from None


# --- content ---------------------------------------------------------------------------------
class ContentIn(BaseModel):
    key: str
    title: str
    kind: Literal[content.KINDS] = "article"  # type: ignore[valid-type]
    audience: Literal["hcp_only", "patient", "public"]
    therapy_area: str | None = None
    product: str | None = None
    prescription: bool = False
    topics: list[str] = Field(default_factory=list)
    subject: str | None = None
    body: str | None = None
    url: str | None = None
    template: dict[str, Any] | None = Field(
        None, description='provider templates, e.g. {"aliyun_template_code": "SMS_1", "params": ["name"]}'
    )
    valid_from: dt.datetime | None = None
    expires_at: dt.datetime | None = None


class ContentPatch(BaseModel):
    """Fields of a draft to change; those left out keep their values (the key never changes)."""

    title: str | None = None
    kind: Literal[content.KINDS] | None = None  # type: ignore[valid-type]
    audience: Literal["hcp_only", "patient", "public"] | None = None
    therapy_area: str | None = None
    product: str | None = None
    prescription: bool | None = None
    topics: list[str] | None = None
    subject: str | None = None
    body: str | None = None
    url: str | None = None
    template: dict[str, Any] | None = None
    valid_from: dt.datetime | None = None
    expires_at: dt.datetime | None = None


class ApproveIn(BaseModel):
    approval_code: str = Field(description="The MLR approval code (审批编号)")
    expires_at: dt.datetime | None = None


class ReasonIn(BaseModel):
    reason: str | None = None


@api.get("/content", summary="Content library items (expired items show as expired)", responses=REFUSED)
def list_content(
    engine: EngineDep,
    p: Reader,
    status: Literal[content.STATUSES] | None = None,  # type: ignore[valid-type]
) -> Any:
    with engine.begin() as conn:
        return {"items": content.list_items(conn, tenant_id=p.tenant_id, status=status)}


@api.post("/content", status_code=201, summary="Create a draft content item", responses=REFUSED)
def create_content(body: ContentIn, engine: EngineDep, p: ContentWriter) -> Any:
    with engine.begin() as conn:
        return content.create_item(conn, tenant_id=p.tenant_id, actor=_actor(conn, p), **body.model_dump())


@api.get("/content/{item_id}", summary="One content item (by id or key)", responses=REFUSED)
def get_content(item_id: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return content.get_item(conn, tenant_id=p.tenant_id, item_id=item_id)


@api.patch("/content/{item_id}", summary="Edit a draft (only the fields given change)", responses=REFUSED)
def update_content(item_id: str, body: ContentPatch, engine: EngineDep, p: ContentWriter) -> Any:
    with engine.begin() as conn:
        return content.update_item(
            conn,
            tenant_id=p.tenant_id,
            item_id=item_id,
            actor=_actor(conn, p),
            **body.model_dump(exclude_unset=True),
        )


@api.post("/content/{item_id}/submit", summary="Send a draft to MLR review", responses=REFUSED)
def submit_content(item_id: str, engine: EngineDep, p: ContentWriter) -> Any:
    with engine.begin() as conn:
        return content.submit_for_review(conn, tenant_id=p.tenant_id, item_id=item_id, actor=_actor(conn, p))


@api.post(
    "/content/{item_id}/approve", summary="Approve (compliance role; not the author)", responses=REFUSED
)
def approve_content(item_id: str, body: ApproveIn, engine: EngineDep, p: Reviewer) -> Any:
    with engine.begin() as conn:
        return content.approve(
            conn,
            tenant_id=p.tenant_id,
            item_id=item_id,
            approval_code=body.approval_code,
            expires_at=body.expires_at,
            actor=_actor(conn, p),
            actor_role=p.role,
        )


@api.post(
    "/content/{item_id}/reject",
    summary="Send back to draft with a reason (compliance role)",
    responses=REFUSED,
)
def reject_content(item_id: str, body: ReasonIn, engine: EngineDep, p: Reviewer) -> Any:
    with engine.begin() as conn:
        return content.reject(
            conn,
            tenant_id=p.tenant_id,
            item_id=item_id,
            reason=body.reason or "",
            actor=_actor(conn, p),
            actor_role=p.role,
        )


@api.post(
    "/content/{item_id}/withdraw", summary="Withdraw; cancels every queued send of it", responses=REFUSED
)
def withdraw_content(item_id: str, engine: EngineDep, p: Withdrawer, body: ReasonIn | None = None) -> Any:
    with engine.begin() as conn:
        return content.withdraw(
            conn,
            tenant_id=p.tenant_id,
            item_id=item_id,
            actor=_actor(conn, p),
            reason=(body.reason if body else None),
        )


# --- consents and do-not-contact ----------------------------------------------------------------
class ConsentIn(BaseModel):
    channel: Literal[consent.CHANNELS]  # type: ignore[valid-type]
    purpose: Literal[consent.PURPOSES]  # type: ignore[valid-type]
    status: Literal["granted", "withdrawn"]
    source: str = Field(description="where it came from, e.g. webinar_form, wecom_chat, hotline")
    evidence: dict[str, Any] | None = None


@api.get(
    "/persons/{person_id}/consents",
    summary="A person's consents, their history and do-not-contact",
    responses=REFUSED,
)
def get_consents(person_id: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        _check_person(conn, p, person_id)
        out = {
            "consents": consent.list_consents(conn, tenant_id=p.tenant_id, person_id=person_id),
            "history": consent.consent_log(conn, tenant_id=p.tenant_id, person_id=person_id),
            "do_not_contact": consent.get_dnc(conn, tenant_id=p.tenant_id, person_id=person_id),
        }
    p.audit_read(engine, "consent.read", object_type="person", object_id=person_id)
    return out


@api.put(
    "/persons/{person_id}/consents",
    summary="Grant or withdraw one consent (channel × purpose)",
    responses=REFUSED,
)
def put_consent(person_id: str, body: ConsentIn, engine: EngineDep, p: ConsentManager) -> Any:
    with engine.begin() as conn:
        _check_person(conn, p, person_id)
        consent.set_consent(
            conn, tenant_id=p.tenant_id, person_id=person_id, actor=_actor(conn, p), **body.model_dump()
        )
        return {"consents": consent.list_consents(conn, tenant_id=p.tenant_id, person_id=person_id)}


@api.post("/persons/{person_id}/dnc", summary="Put the person on the do-not-contact list", responses=REFUSED)
def add_dnc(person_id: str, engine: EngineDep, p: Reader, body: Annotated[ReasonIn, Body()]) -> Any:
    with engine.begin() as conn:
        _check_person(conn, p, person_id)
        consent.set_dnc(
            conn,
            tenant_id=p.tenant_id,
            person_id=person_id,
            reason=body.reason or "",
            actor=_actor(conn, p),
        )
        return consent.get_dnc(conn, tenant_id=p.tenant_id, person_id=person_id)


@api.delete(
    "/persons/{person_id}/dnc", summary="Remove the person from the do-not-contact list", responses=REFUSED
)
def remove_dnc(person_id: str, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        _check_person(conn, p, person_id)
        removed = consent.clear_dnc(conn, tenant_id=p.tenant_id, person_id=person_id, actor=_actor(conn, p))
        if not removed:  # nothing to remove: the request is still on record
            p.audit_write(conn, "dnc.remove", object_type="person", object_id=person_id, changed=False)
        return {"removed": removed}


# --- sends, channels, policy -----------------------------------------------------------------------
class SendIn(BaseModel):
    person_id: str
    channel: Literal[osettings.SEND_CHANNELS]  # type: ignore[valid-type]
    content_id: str | None = None
    purpose: Literal["marketing", "medical_info", "survey", "service"] = "marketing"
    idempotency_key: str = Field(description="unique per intended message; a repeat returns the first send")
    variables: dict[str, Any] = Field(default_factory=dict)


@api.post(
    "/sends",
    status_code=202,
    summary="Request a send (a rep's or a system's message); guardrails apply",
    responses=REFUSED,
)
def create_send(body: SendIn, engine: EngineDep, p: Sender) -> Any:
    with engine.begin() as conn:
        _check_person(conn, p, body.person_id)  # a rep messages their own HCPs only
        actor = _actor(conn, p)
        origin = f"rep:{actor}" if p.role == "rep" else f"api:{actor}"
        out = sending.request_send(
            conn, sending.SendRequest(tenant_id=p.tenant_id, origin=origin, **body.model_dump())
        )
        p.audit_write(
            conn,
            "send.request",
            object_type="send",
            object_id=out.send_id,
            person_id=body.person_id,
            channel=body.channel,
            status=out.status,
        )
    return {
        "status": out.status,
        "send_id": out.send_id,
        "reason": out.reason,
        "not_before": out.not_before,
        "detail": out.detail,
    }


@api.get("/sends", summary="The outbox: sends with status, reason, attempts and the provider's error")
def list_sends(
    engine: EngineDep,
    p: Reader,
    person_id: str | None = None,
    status: str | None = None,
    content_id: str | None = None,
    origin: Annotated[str | None, Query(description="origin prefix, e.g. journey:jr_123")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    with engine.connect() as conn:
        rows = sending.list_sends(
            conn,
            tenant_id=p.tenant_id,
            person_id=person_id,
            status=status,
            content_id=content_id,
            origin_prefix=origin,
            limit=limit,
            scope=p.person_scope(),
        )
        counts = sending.send_counts(
            conn, tenant_id=p.tenant_id, origin_prefix=origin, scope=p.person_scope()
        )
    p.audit_read(engine, "send.list", object_type="send", persons=sorted({r["person_id"] for r in rows}))
    return {"sends": rows, "count": len(rows), "totals": counts}


@api.get("/sends/{send_id}", summary="One send", responses=REFUSED)
def get_send(send_id: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        row = sending.get_send(conn, tenant_id=p.tenant_id, send_id=send_id)
        try:
            if row:
                _check_person(conn, p, row["person_id"])
        except NotFound:
            row = None
    if not row:
        raise NotFound(f"send_id: send {send_id!r} not found")
    p.audit_read(engine, "send.read", object_type="send", object_id=send_id, person_id=row["person_id"])
    return row


@api.get("/channels", summary="Configured channels (secrets redacted)")
def list_channels(engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return {"channels": osettings.list_channels(conn, tenant_id=p.tenant_id)}


class ChannelIn(BaseModel):
    provider: Literal[tuple(sorted({v for vs in osettings.PROVIDERS.values() for v in vs}))] = Field(  # type: ignore[valid-type]
        description="By channel: email smtp; sms aliyun or tencent; wecom wecom; wechat_template wechat; webhook hmac"
    )
    settings: dict[str, Any]


@api.put(
    "/channels/{channel}",
    summary="Configure a channel's provider, base URL and credentials (sealed)",
    responses=REFUSED,
)
def put_channel(
    channel: Literal[osettings.SEND_CHANNELS],  # type: ignore[valid-type]
    body: ChannelIn,
    engine: EngineDep,
    p: Admin,
) -> Any:
    with engine.begin() as conn:
        return osettings.configure_channel(
            conn,
            tenant_id=p.tenant_id,
            channel=channel,
            provider=body.provider,
            settings=body.settings,
            actor=_actor(conn, p),
        )


@api.get("/outreach/policy", summary="Frequency caps, quiet hours, retries")
def get_policy(engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return osettings.get_policy(conn, tenant_id=p.tenant_id)


@api.put(
    "/outreach/policy",
    summary="Change frequency caps, quiet hours, retries (merged into the current policy)",
    responses=REFUSED,
)
def put_policy(engine: EngineDep, p: Admin, body: Annotated[dict[str, Any], Body()]) -> Any:
    with engine.begin() as conn:
        return osettings.set_policy(conn, tenant_id=p.tenant_id, changes=body, actor=_actor(conn, p))


# --- public feedback endpoints ------------------------------------------------------------------------
@public.get(
    "/r/{token}",
    summary="Tracked link: records Content Clicked and redirects",
    response_class=RedirectResponse,
    responses=responses(
        404, extra={302: {"description": "Redirect to the link's target (the `Location` header)"}}
    ),
)
def tracked_link(token: str, request: Request, engine: EngineDep) -> Any:
    with engine.begin() as conn:
        url = feedback.record_click(conn, token, user_agent=request.headers.get("user-agent"))
    if not url:
        return JSONResponse(
            status_code=404,
            content={"error": "not_found", "errors": [{"field": "token", "reason": "unknown link"}]},
        )
    return RedirectResponse(url, status_code=302)


#: the beacon answers a 1×1 GIF, whatever the token (an unknown token records nothing)
BEACON = responses(
    422,
    extra={
        200: {
            "description": "A 1×1 transparent GIF",
            "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)


def _beacon(token: str, engine: sa.Engine, dwell: float | None) -> Response:
    with engine.begin() as conn:
        feedback.record_view(conn, token, dwell_seconds=dwell)
    return Response(content=_GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})


@public.get(
    "/b/{token}",
    summary="View beacon (1×1 GIF): records Content Viewed with dwell time",
    response_class=Response,
    responses=BEACON,
)
def beacon_get(
    token: str,
    engine: EngineDep,
    dwell: Annotated[float | None, Query(ge=0, le=86400, description="seconds")] = None,
) -> Response:
    return _beacon(token, engine, dwell)


@public.post(
    "/b/{token}",
    summary="View beacon for navigator.sendBeacon (dwell in the query)",
    response_class=Response,
    responses=BEACON,
)
def beacon_post(
    token: str, engine: EngineDep, dwell: Annotated[float | None, Query(ge=0, le=86400)] = None
) -> Response:
    return _beacon(token, engine, dwell)


def _cn_time(v: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(v or "", "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=dt.timezone(dt.timedelta(hours=8))
        )
    except ValueError:
        return None


@public.post(
    "/callbacks/sms/aliyun",
    summary="Alibaba Cloud SMS delivery reports (SmsReport push)",
    responses=responses(422),
)
def aliyun_receipts(engine: EngineDep, body: Annotated[list[dict[str, Any]], Body()]) -> Any:
    with engine.begin() as conn:
        for r in body:
            feedback.record_receipt(
                conn,
                send_id=r.get("out_id"),
                provider_message_id=r.get("biz_id"),
                delivered=bool(r.get("success")),
                code=r.get("err_code"),
                description=r.get("err_msg"),
                at=_cn_time(r.get("report_time")),
            )
    return {"code": 0, "msg": "成功"}


@public.post(
    "/callbacks/sms/tencent", summary="Tencent Cloud SMS status reports (push)", responses=responses(422)
)
def tencent_receipts(engine: EngineDep, body: Annotated[list[dict[str, Any]], Body()]) -> Any:
    with engine.begin() as conn:
        for r in body:
            feedback.record_receipt(
                conn,
                send_id=r.get("ext") or r.get("session_context") or None,
                provider_message_id=r.get("sid"),
                delivered=r.get("report_status") == "SUCCESS",
                code=r.get("errmsg"),
                description=r.get("description"),
                at=_cn_time(r.get("user_receive_time")),
            )
    return {"result": 0, "errmsg": "OK"}


def _reply_caller_refused(
    engine: sa.Engine, request: Request, provider: str, tenant_id: str, token: str | None
):
    """None if the caller holds the tenant's reply-callback token; else the 403 to answer, with an
    audit row in the tenant (when there is one) naming the client address. An unknown tenant is
    refused exactly like a wrong token."""
    if check_callback_token(tenant_id, osettings.SMS_REPLIES, token):
        with engine.connect() as conn:
            if conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is not None:
                return None
    with engine.begin() as conn:
        if conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is not None:
            accounts.audit(
                conn=conn,
                tenant_id=tenant_id,
                actor=f"callback:{provider}",
                action="callback.refused",
                object_type="callback",
                object_id=f"sms/{provider}/replies",
                detail={
                    "client": request.client.host if request.client else None,
                    "reason": "missing token" if not token else "wrong token",
                },
            )
    return JSONResponse(
        status_code=403,
        content={
            "error": "forbidden",
            "errors": [
                {
                    "field": "token",
                    "reason": "a valid callback token is required in the URL "
                    "(`medscrm channels callback-urls` prints it)",
                }
            ],
        },
    )


def _aliyun_replies(tenant_id: str, engine: sa.Engine, body: list[dict[str, Any]]) -> Any:
    with engine.begin() as conn:
        for r in body:
            feedback.record_reply(
                conn,
                tenant_id=tenant_id,
                phone=str(r.get("phone_number") or ""),
                text=str(r.get("content") or ""),
                provider="aliyun",
                at=_cn_time(r.get("send_time")),
                ref=str(r.get("sequence_id") or "") or None,
            )
    return {"code": 0, "msg": "成功"}


def _tencent_replies(tenant_id: str, engine: sa.Engine, body: list[dict[str, Any]] | dict[str, Any]) -> Any:
    with engine.begin() as conn:
        for r in body if isinstance(body, list) else [body]:
            ts = r.get("time")
            at = dt.datetime.fromtimestamp(int(ts), dt.UTC) if str(ts or "").isdigit() else None
            nation = str(r.get("nationcode") or "86")
            feedback.record_reply(
                conn,
                tenant_id=tenant_id,
                phone=f"+{nation}{r.get('mobile') or ''}",
                text=str(r.get("text") or ""),
                provider="tencent",
                at=at,
            )
    return {"result": 0, "errmsg": "OK"}


@public.post(
    "/callbacks/sms/aliyun/replies/{tenant_id}/{token}",
    summary="Alibaba Cloud SMS replies (SmsUp push) for one tenant; TD/退订 opts out. The URL carries "
    "the tenant's callback token (`medscrm channels callback-urls`)",
    responses=responses(403, 422),
)
def aliyun_replies(
    tenant_id: str,
    token: str,
    request: Request,
    engine: EngineDep,
    body: Annotated[list[dict[str, Any]], Body()],
) -> Any:
    refused = _reply_caller_refused(engine, request, "aliyun", tenant_id, token)
    return refused or _aliyun_replies(tenant_id, engine, body)


@public.post(
    "/callbacks/sms/tencent/replies/{tenant_id}/{token}",
    summary="Tencent Cloud SMS replies (push) for one tenant; TD/退订 opts out. The URL carries the "
    "tenant's callback token (`medscrm channels callback-urls`)",
    responses=responses(403, 422),
)
def tencent_replies(
    tenant_id: str,
    token: str,
    request: Request,
    engine: EngineDep,
    body: Annotated[list[dict[str, Any]] | dict[str, Any], Body()],
) -> Any:
    refused = _reply_caller_refused(engine, request, "tencent", tenant_id, token)
    return refused or _tencent_replies(tenant_id, engine, body)


@public.post(
    "/callbacks/sms/{provider}/replies/{tenant_id}",
    summary="Reply callbacks without a token (the URL of earlier versions): refused with 403, audited",
    responses=responses(403, 422),
)
def replies_without_token(
    provider: Literal["aliyun", "tencent"], tenant_id: str, request: Request, engine: EngineDep
) -> Any:
    return _reply_caller_refused(engine, request, provider, tenant_id, None)


router.include_router(api)
router.include_router(public)


# --- compliance: proof of every send -------------------------------------------------------------
Auditor = Annotated[Principal, require("audit.read")]
JourneyQuery = Annotated[str | None, Query(description="journey key (or id): the journey's sends")]
PersonQuery = Annotated[str | None, Query(description="person id: the person's sends")]


class SendCheck(BaseModel):
    name: str = Field(description="consent, content_approval, audience, frequency_cap, quiet_hours, …")
    result: str = Field(description="pass, fail or deferred (quiet hours: queued for the window's end)")
    values: dict[str, Any] = Field(description="the values the check compared")
    stage: str | None = Field(None, description="request (when asked) or dispatch (the re-check)")


class SendProof(BaseModel):
    send_id: str
    created_at: dt.datetime
    person_id: str
    person_name: str | None = Field(None, description="masked where the role may not read PII")
    contact: str | None = Field(None, description="e-mail or phone for the channel, masked likewise")
    channel: str
    purpose: str
    origin: str
    status: str
    reason: str | None = None
    content_id: str | None = None
    consent_history_id: str | None = Field(None, description="the consent change the send relied on")
    consent_version: int | None = Field(None, description="the how-many-th change of that consent")
    consent_hash: str | None = Field(None, description="SHA-256 of what the person agreed to")
    approval_code: str | None = Field(None, description="the content's MLR approval code at send time")
    approval_expires_at: dt.datetime | None = None
    checks: list[SendCheck]


class SendProofs(BaseModel):
    sends: list[SendProof]
    count: int


def _proofs(engine: sa.Engine, p: Principal, journey: str | None, person: str | None, limit: int) -> list:
    with engine.begin() as conn:
        if person:
            _check_person(conn, p, person)
        return compliance.send_proofs(
            conn,
            tenant_id=p.tenant_id,
            role=p.role,
            actor=_actor(conn, p),
            journey=journey,
            person_id=person,
            scope=p.person_scope(),
            limit=limit,
        )


@api.get(
    "/compliance/sends",
    summary="Proof of every send of a journey or a person (audited)",
    description="For each send, allowed or blocked: the consent it relied on (history id, version, "
    "SHA-256 of what was agreed), the content approval code and its expiry at send time, and each "
    "guardrail check with its result and the values compared. Give `journey`, `person` or both. "
    "Needs `audit.read` (compliance, admin); every read is written to the audit log.",
    response_model=SendProofs,
    responses=responses(404, 422),
)
def compliance_sends(
    engine: EngineDep,
    p: Auditor,
    journey: JourneyQuery = None,
    person: PersonQuery = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Any:
    rows = _proofs(engine, p, journey, person, limit)
    return {"sends": rows, "count": len(rows)}


@api.get(
    "/compliance/sends.csv",
    summary="Proof of every send as CSV (formula-safe; audited)",
    response_class=Response,
    responses=responses(404, 422, extra={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}),
)
def compliance_sends_csv(
    engine: EngineDep,
    p: Auditor,
    journey: JourneyQuery = None,
    person: PersonQuery = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Response:
    rows = _proofs(engine, p, journey, person, limit)
    return Response(
        compliance.to_csv(rows).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="send-proof.csv"'},
    )
