"""Console content library (where the content module is installed): the list, a review queue, the
authoring form (create, edit a draft) with a live preview per channel, each item's page (status,
history, approval, where journeys use it, the actions the viewer's role may take) and the MLR
actions: submit, approve with code and expiry, reject with a reason, withdraw.

Every change goes through :mod:`medscrm.content.service`, which validates, enforces the status
machine and the four-eyes rule, and writes the audit row exactly as the API does (the actor is the
user name, as the API's). The service's errors carry a field and a code; the page shows them in the
reader's language next to the field (``cterr.<field>.<code>``), or as written when no translation
exists.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import Response
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from medscrm.common import InvalidInput, MedscrmError, NotFound
from medscrm.web import data
from medscrm.web.auth import Ctx
from medscrm.web.i18n import MESSAGES
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

CHINA = dt.timezone(dt.timedelta(hours=8))
#: the channels whose rendering the preview shows, by kind (a general kind may go out on any)
PREVIEW_CHANNELS = {
    "email_template": ("email",),
    "sms_template": ("sms",),
    "wecom_template": ("wecom",),
    "wechat_template": ("wecom",),
}
ALL_CHANNELS = ("email", "wecom", "sms")
#: the form's fields, in the order the service checks them (an error names one of these)
FORM_FIELDS = (
    "key",
    "title",
    "kind",
    "audience",
    "therapy_area",
    "product",
    "prescription",
    "topics",
    "subject",
    "body",
    "url",
    "template",
    "valid_from",
    "expires_at",
)
#: the withdrawable statuses (the service's state machine)
WITHDRAWABLE = ("draft", "in_review", "approved", "expired")
#: the sandbox the sends render with (outreach.send): unknown variables are errors, not blanks
_preview_jinja = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _svc():
    svc = data.optional_module("content.service")
    if svc is None:
        raise NotFound("the content module is not installed")
    return svc


def _actor(ctx: Ctx) -> str:
    """The user name, as the API and the CLI record content changes (created_by, approved_by)."""
    return ctx.user["username"] if ctx.user else "anonymous"


def _error_text(ctx: Ctx, exc: MedscrmError) -> tuple[str | None, str]:
    """(field, message in the reader's language) of a service error."""
    field = getattr(exc, "field", None)
    if field is None:
        head, colon, _ = str(exc).partition(":")
        field = head if colon and head.isidentifier() else None
    code = getattr(exc, "code", None)
    for key in (f"cterr.{field}.{code}", f"cterr.{code}"):
        if code and key in MESSAGES[ctx.lang]:
            return field, ctx.t(key)
    return field, str(exc)


def _china_date(v: str, field: str, *, end_of_day: bool) -> dt.datetime | None:
    """A date picker's ``YYYY-MM-DD`` as an aware time in China (an expiry lasts to the day's end)."""
    v = (v or "").strip()
    if not v:
        return None
    try:
        d = dt.date.fromisoformat(v)
    except ValueError:
        exc = InvalidInput(field, f"{v!r} is not a date (YYYY-MM-DD)")
        exc.code = "date"  # type: ignore[attr-defined]
        raise exc from None
    t = dt.time(23, 59, 59) if end_of_day else dt.time(0, 0)
    return dt.datetime.combine(d, t, tzinfo=CHINA)


def _as_date(v: Any) -> str:
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        return v.astimezone(CHINA).date().isoformat()
    return v or ""


def _form_from_item(item: dict[str, Any] | None) -> dict[str, Any]:
    item = item or {}
    tpl = item.get("template")
    return {
        "key": item.get("key") or "",
        "title": item.get("title") or "",
        "kind": item.get("kind") or "email_template",
        "audience": item.get("audience") or "hcp_only",
        "therapy_area": item.get("therapy_area") or "",
        "product": item.get("product") or "",
        "prescription": bool(item.get("prescription")),
        "topics": ", ".join(item.get("topics") or []),
        "subject": item.get("subject") or "",
        "body": item.get("body") or "",
        "url": item.get("url") or "",
        "template": json.dumps(tpl, ensure_ascii=False) if tpl else "",
        "valid_from": _as_date(item.get("valid_from")),
        "expires_at": _as_date(item.get("expires_at")),
    }


def _fields_of(form: dict[str, Any]) -> dict[str, Any]:
    """The service's keyword arguments from the form (dates in China time, topics split, the
    provider template parsed); a bad date or template raises naming its field."""
    tpl_text = (form.get("template") or "").strip()
    template = None
    if tpl_text:
        try:
            template = json.loads(tpl_text)
        except ValueError:
            exc = InvalidInput("template", "not valid JSON")
            exc.code = "json"  # type: ignore[attr-defined]
            raise exc from None
        if not isinstance(template, dict):
            exc = InvalidInput("template", "must be a JSON object")
            exc.code = "json"  # type: ignore[attr-defined]
            raise exc
    return {
        "title": form["title"],
        "kind": form["kind"],
        "audience": form["audience"],
        "therapy_area": form["therapy_area"].strip() or None,
        "product": form["product"].strip() or None,
        "prescription": bool(form["prescription"]),
        "topics": [x.strip() for x in form["topics"].replace("，", ",").split(",") if x.strip()],
        "subject": form["subject"].strip() or None,
        "body": form["body"].strip() or None,
        "url": form["url"].strip() or None,
        "template": template,
        "valid_from": _china_date(form["valid_from"], "valid_from", end_of_day=False),
        "expires_at": _china_date(form["expires_at"], "expires_at", end_of_day=True),
    }


def preview(ctx: Ctx, *, kind: str, title: str, subject: str, body: str, url: str) -> dict[str, Any]:
    """How each channel would show the item to a sample recipient, rendered as the dispatcher does
    (the same sandbox and variables: name, title, hospital, department, url). A template error (an
    unknown variable, a broken tag) is reported instead of the text."""
    sample = {
        "name": ctx.t("ct.sample_name"),
        "title": ctx.t("ct.sample_title"),
        "hospital": ctx.t("ct.sample_hospital"),
        "department": ctx.t("ct.sample_department"),
        "url": "https://t.example.com/r/…" if url else "",
    }
    out: dict[str, Any] = {"channels": PREVIEW_CHANNELS.get(kind, ALL_CHANNELS), "error": None}
    try:
        text = _preview_jinja.from_string(body or "").render(**sample)
        subj = _preview_jinja.from_string(subject or title or "").render(**sample)
    except TemplateError as exc:
        out["error"] = str(exc)
        return out
    if sample["url"] and sample["url"] not in text:
        text_with_link = f"{text}\n\n{sample['url']}"
    else:
        text_with_link = text
    out.update(
        subject=subj,
        paragraphs=[line for line in text.splitlines() if line.strip()],
        url=sample["url"],
        title=title,
        text=text_with_link,
        sms_chars=len(text_with_link),
        # one SMS holds 70 characters with any Chinese in it; longer ones go as 67-character parts
        sms_parts=1 if len(text_with_link) <= 70 else -(-len(text_with_link) // 67),
    )
    return out


def _uses(conn, tenant_id: str, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The journeys whose current version sends the item (by id or key), with the steps that do."""
    journeys = data.optional_module("journeys.service")
    if journeys is None:
        return []
    refs = {item["id"], item["key"]}
    out = []
    for j in journeys.list_journeys(conn, tenant_id=tenant_id):
        definition = journeys.definition_of(conn, journey_id=j["id"], version=j["current_version"])
        steps = [
            s
            for s in (definition or {}).get("steps") or []
            if s.get("type") == "send" and s.get("content") in refs
        ]
        if steps:
            out.append({"key": j["key"], "name": j["name"], "status": j["status"], "steps": steps})
    return out


def _actions(ctx: Ctx, item: dict[str, Any]) -> dict[str, bool]:
    st = item["status"]
    return {
        "edit": ctx.can("content.write") and st == "draft",
        "submit": ctx.can("content.write") and st == "draft",
        "review": ctx.can("content.review") and st == "in_review",
        "withdraw": ctx.can("content.withdraw") and st in WITHDRAWABLE,
    }


# --- the library and the review queue -------------------------------------------------------------------
@router.get("/content")
def content_page(ctx: Page, status: str = "") -> Response:
    ctx.require("data.read")
    svc = _svc()
    now = dt.datetime.now(dt.UTC)
    with _engine(ctx.request).begin() as conn:  # list_items persists expiry (approved → expired)
        items = svc.list_items(conn, tenant_id=ctx.tenant_id, status=status or None)
        perf = data.content_performance(conn, tenant_id=ctx.tenant_id)
        waiting = len(svc.list_items(conn, tenant_id=ctx.tenant_id, status="in_review"))
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
        ctx,
        "content.html",
        items=items,
        status_filter=status,
        statuses=getattr(svc, "STATUSES", ()),
        waiting=waiting,
        can_write=ctx.can("content.write"),
        can_review=ctx.can("content.review"),
    )


@router.get("/content/review")
def content_review_queue(ctx: Page) -> Response:
    """Items awaiting MLR review, oldest submission first (compliance)."""
    ctx.require("content.review")
    svc = _svc()
    with _engine(ctx.request).begin() as conn:
        items = svc.list_items(conn, tenant_id=ctx.tenant_id, status="in_review")
    items.sort(key=lambda it: str(it.get("submitted_at") or ""))
    me = _actor(ctx)
    for it in items:
        it["own"] = svc.same_person(it["created_by"], me) or svc.same_person(it.get("submitted_by"), me)
    return render(ctx, "content_review.html", items=items)


# --- authoring ------------------------------------------------------------------------------------------
def _form_page(
    ctx: Ctx,
    *,
    form: dict[str, Any],
    item: dict[str, Any] | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    svc = _svc()
    return render(
        ctx,
        "content_form.html",
        status,
        form=form,
        item=item,
        errors=errors or {},
        kinds=svc.KINDS,
        audiences=svc.AUDIENCES,
        pv=preview(
            ctx,
            kind=form["kind"],
            title=form["title"],
            subject=form["subject"],
            body=form["body"],
            url=form["url"],
        ),
    )


FormStr = Annotated[str, Form()]


def _form_field(field: str | None) -> str:
    """Where the form shows an error: beside its field, else above the form."""
    return field if field in FORM_FIELDS else "form"


def _posted(
    key: str,
    title: str,
    kind: str,
    audience: str,
    therapy_area: str,
    product: str,
    prescription: str,
    topics: str,
    subject: str,
    body: str,
    url: str,
    template: str,
    valid_from: str,
    expires_at: str,
) -> dict[str, Any]:
    return {
        "key": key.strip(),
        "title": title,
        "kind": kind,
        "audience": audience,
        "therapy_area": therapy_area,
        "product": product,
        "prescription": prescription in ("1", "on", "true"),
        "topics": topics,
        "subject": subject,
        "body": body,
        "url": url,
        "template": template,
        "valid_from": valid_from,
        "expires_at": expires_at,
    }


@router.get("/content/new")
def content_new(ctx: Page) -> Response:
    ctx.require("content.write")
    return _form_page(ctx, form=_form_from_item(None))


@router.post("/content/new")
def content_create(
    ctx: Page,
    _: Csrf,
    key: FormStr = "",
    title: FormStr = "",
    kind: FormStr = "",
    audience: FormStr = "",
    therapy_area: FormStr = "",
    product: FormStr = "",
    prescription: FormStr = "",
    topics: FormStr = "",
    subject: FormStr = "",
    body: FormStr = "",
    url: FormStr = "",
    template: FormStr = "",
    valid_from: FormStr = "",
    expires_at: FormStr = "",
) -> Response:
    ctx.require("content.write")
    svc = _svc()
    form = _posted(
        key, title, kind, audience, therapy_area, product, prescription, topics, subject, body, url,
        template, valid_from, expires_at,
    )  # fmt: skip
    try:
        fields = _fields_of(form)
        with _engine(ctx.request).begin() as conn:
            item = svc.create_item(
                conn, tenant_id=ctx.tenant_id, key=form["key"], actor=_actor(ctx), **fields
            )
    except InvalidInput as exc:
        field, msg = _error_text(ctx, exc)
        return _form_page(ctx, form=form, status=400, errors={_form_field(field): msg})
    return _redirect(ctx, f"/content/{quote(item['id'])}?done=created")


@router.get("/content/{item_id}/edit")
def content_edit(ctx: Page, item_id: str) -> Response:
    ctx.require("content.write")
    with _engine(ctx.request).connect() as conn:
        item = _svc().get_item(conn, tenant_id=ctx.tenant_id, item_id=item_id)
    if item["status"] != "draft":
        return _redirect(ctx, f"/content/{quote(item['id'])}")
    return _form_page(ctx, form=_form_from_item(item), item=item)


@router.post("/content/{item_id}/edit")
def content_update(
    ctx: Page,
    _: Csrf,
    item_id: str,
    title: FormStr = "",
    kind: FormStr = "",
    audience: FormStr = "",
    therapy_area: FormStr = "",
    product: FormStr = "",
    prescription: FormStr = "",
    topics: FormStr = "",
    subject: FormStr = "",
    body: FormStr = "",
    url: FormStr = "",
    template: FormStr = "",
    valid_from: FormStr = "",
    expires_at: FormStr = "",
) -> Response:
    ctx.require("content.write")
    svc = _svc()
    engine = _engine(ctx.request)
    with engine.connect() as conn:
        item = svc.get_item(conn, tenant_id=ctx.tenant_id, item_id=item_id)
    form = _posted(
        item["key"], title, kind, audience, therapy_area, product, prescription, topics, subject, body,
        url, template, valid_from, expires_at,
    )  # fmt: skip
    try:
        fields = _fields_of(form)
        with engine.begin() as conn:
            svc.update_item(conn, tenant_id=ctx.tenant_id, item_id=item["id"], actor=_actor(ctx), **fields)
    except MedscrmError as exc:
        field, msg = _error_text(ctx, exc)
        return _form_page(ctx, form=form, item=item, status=400, errors={_form_field(field): msg})
    return _redirect(ctx, f"/content/{quote(item['id'])}?done=updated")


@router.post("/content/preview")
def content_preview(
    ctx: Page,
    _: Csrf,
    kind: FormStr = "",
    title: FormStr = "",
    subject: FormStr = "",
    body: FormStr = "",
    url: FormStr = "",
) -> Response:
    """The preview panel alone, for the form's live update (HTMX)."""
    ctx.require("content.write")
    pv = preview(ctx, kind=kind, title=title, subject=subject, body=body, url=url)
    return render(ctx, "content_preview.html", pv=pv)


# --- one item and its review ----------------------------------------------------------------------------
def _detail(
    ctx: Ctx, item_id: str, *, status: int = 200, error: str | None = None, error_field: str | None = None,
    form: dict[str, str] | None = None, done: str = "",
) -> Response:  # fmt: skip
    svc = _svc()
    with _engine(ctx.request).begin() as conn:  # get/list persist expiry
        svc.expire_due(conn, tenant_id=ctx.tenant_id)
        item = svc.get_item(conn, tenant_id=ctx.tenant_id, item_id=item_id)
        hist = svc.history(conn, tenant_id=ctx.tenant_id, item_id=item["id"])
        uses = _uses(conn, ctx.tenant_id, item)
    me = _actor(ctx)
    own = svc.same_person(item["created_by"], me) or svc.same_person(item.get("submitted_by"), me)
    default_expiry = (dt.datetime.now(CHINA) + dt.timedelta(days=365)).date().isoformat()
    return render(
        ctx,
        "content_detail.html",
        status,
        item=item,
        history=hist,
        uses=uses,
        actions=_actions(ctx, item),
        own=own,
        sendable=svc.sendable_reason(item, None, None),
        error=error,
        error_field=error_field,
        form=form or {"approval_code": "", "expires_at": _as_date(item.get("expires_at")) or default_expiry},
        today=dt.datetime.now(CHINA).date().isoformat(),
        notice=_notice(ctx, done),
        pv=preview(
            ctx,
            kind=item["kind"],
            title=item["title"],
            subject=item.get("subject") or "",
            body=item.get("body") or "",
            url=item.get("url") or "",
        ),
    )


def _notice(ctx: Ctx, done: str) -> str | None:
    """What the last action did, after the redirect (``?done=approve``, ``?done=withdrawn_3``)."""
    if done.startswith("withdrawn_") and done[10:].isdigit():
        return ctx.t("ct.done_withdrawn", n=int(done[10:]))
    key = f"ct.done_{done}"
    return ctx.t(key) if done and key in MESSAGES[ctx.lang] else None


@router.get("/content/{item_id}")
def content_detail(ctx: Page, item_id: str, done: str = "") -> Response:
    ctx.require("data.read")
    return _detail(ctx, item_id, done=done)


def _act(
    ctx: Ctx,
    item_id: str,
    action: str,
    *,
    approval_code: str = "",
    expires_at: str = "",
    reason: str = "",
) -> Response:
    """One MLR action; a refusal shows on the item's page in the reader's language, the form kept."""
    svc = _svc()
    actor = _actor(ctx)
    done = action
    try:
        with _engine(ctx.request).begin() as conn:
            item = svc.get_item(conn, tenant_id=ctx.tenant_id, item_id=item_id)
            if action == "submit":
                svc.submit_for_review(conn, tenant_id=ctx.tenant_id, item_id=item["id"], actor=actor)
            elif action == "approve":
                svc.approve(
                    conn,
                    tenant_id=ctx.tenant_id,
                    item_id=item["id"],
                    approval_code=approval_code,
                    expires_at=_china_date(expires_at, "expires_at", end_of_day=True),
                    actor=actor,
                    actor_role=ctx.role,
                )
            elif action == "reject":
                svc.reject(
                    conn,
                    tenant_id=ctx.tenant_id,
                    item_id=item["id"],
                    reason=reason,
                    actor=actor,
                    actor_role=ctx.role,
                )
            else:
                res = svc.withdraw(
                    conn, tenant_id=ctx.tenant_id, item_id=item["id"], actor=actor, reason=reason or None
                )
                done = f"withdrawn_{int(res.get('cancelled_sends', 0))}"
    except NotFound:
        raise
    except MedscrmError as exc:
        field, msg = _error_text(ctx, exc)
        return _detail(
            ctx,
            item_id,
            status=400,
            error=msg,
            error_field=f"{action}.{field}" if field else action,
            form={"approval_code": approval_code, "expires_at": expires_at, "reason": reason},
        )
    return _redirect(ctx, f"/content/{quote(item['id'])}?done={done}")


@router.post("/content/{item_id}/submit")
def content_submit(ctx: Page, _: Csrf, item_id: str) -> Response:
    """draft → in review (writers)."""
    ctx.require("content.write")
    return _act(ctx, item_id, "submit")


@router.post("/content/{item_id}/approve")
def content_approve(
    ctx: Page, _: Csrf, item_id: str, approval_code: FormStr = "", expires_at: FormStr = ""
) -> Response:
    """in review → approved, with the MLR code and the approval's expiry (compliance; four-eyes)."""
    ctx.require("content.review")
    return _act(ctx, item_id, "approve", approval_code=approval_code, expires_at=expires_at)


@router.post("/content/{item_id}/reject")
def content_reject(ctx: Page, _: Csrf, item_id: str, reason: FormStr = "") -> Response:
    """in review → draft, with the reason the author reads (compliance)."""
    ctx.require("content.review")
    return _act(ctx, item_id, "reject", reason=reason)


@router.post("/content/{item_id}/withdraw")
def content_withdraw(ctx: Page, _: Csrf, item_id: str, reason: FormStr = "") -> Response:
    """Withdraw: never sent again, its queued sends cancelled (by the outreach hook)."""
    ctx.require("content.withdraw")
    return _act(ctx, item_id, "withdraw", reason=reason)
