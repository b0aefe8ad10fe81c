"""The web console: server-rendered pages (Jinja2) with HTMX and ECharts, served at ``/``.

Registered in ``medscrm.app.create_app`` with one line. Every route goes through
:class:`ConsoleRoute`, which turns errors into friendly pages (never a stack trace), sends
unauthenticated visitors to the login page and adds a ``Server-Timing: app;dur=<ms>`` header.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from markupsafe import escape

from medscrm import access
from medscrm.accounts import service as accounts
from medscrm.accounts.throttle import LoginThrottle, ip_key, user_key
from medscrm.common import MedscrmError, NotFound
from medscrm.config import get_settings
from medscrm.db.schema import audit_log, imports, persons, sources
from medscrm.web import auth, data
from medscrm.web.auth import CSRF_FIELD, SESSION_COOKIE, CsrfFailed, Ctx, Forbidden, LoginRequired
from medscrm.web.i18n import LANG_COOKIE, LANGS, pick_lang, translator

log = logging.getLogger("medscrm.web")
HERE = Path(__file__).parent
STATIC = HERE / "static"
UPLOAD_SUFFIXES = (".csv", ".tsv", ".xlsx", ".jsonl", ".parquet")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "default": str}


def _fmt_dt(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        return value[:19].replace("T", " ")
    if isinstance(value, dt.datetime):
        if value.tzinfo:
            value = value.astimezone(dt.timezone(dt.timedelta(hours=8)))  # China time
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


_env.filters["dt"] = _fmt_dt
_STATIC_VERSION = str(int(max((p.stat().st_mtime for p in STATIC.rglob("*") if p.is_file()), default=0)))


# --- the route class: friendly errors, login redirect, Server-Timing ------------------------------------
def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _error_page(request: Request, status: int, message: str, reference: str | None = None) -> HTMLResponse:
    lang = pick_lang(request.cookies.get(LANG_COOKIE))
    t = translator(lang)
    if _is_htmx(request):  # swapped in place of the element the request targeted (htmx-config in base.html)
        ref = f" ({t('error.reference')}: {reference})" if reference else ""
        return HTMLResponse(
            f'<div class="card err htmx-error" role="alert">{escape(message)}{escape(ref)}</div>',
            status_code=status,
        )
    html = _env.get_template("error.html").render(
        t=t, lang=lang, status=status, message=message, reference=reference, static=_static_url
    )
    return HTMLResponse(html, status_code=status)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            t0 = time.perf_counter()
            t = translator(pick_lang(request.cookies.get(LANG_COOKIE)))
            try:
                response = await original(request)
            except LoginRequired:
                target = "/login?next=" + quote(request.url.path)
                if _is_htmx(request):
                    response = Response(status_code=200, headers={"HX-Redirect": target})
                else:
                    response = RedirectResponse(target, status_code=303)
            except CsrfFailed:
                response = _error_page(request, 403, t("error.csrf"))
            except Forbidden:
                response = _error_page(request, 403, t("error.403"))
            except NotFound as exc:
                response = _error_page(request, 404, f"{t('error.404')}: {exc}")
            except MedscrmError as exc:
                response = _error_page(request, 400, f"{t('error.400')}: {exc}")
            except RequestValidationError as exc:
                fields = ", ".join(".".join(str(x) for x in e["loc"][1:]) for e in exc.errors())
                response = _error_page(request, 400, f"{t('error.400')}: {fields}")
            except HTTPException as exc:
                response = _error_page(request, exc.status_code, str(exc.detail))
            except Exception:
                ref = uuid.uuid4().hex[:12]
                log.exception("console error %s on %s %s", ref, request.method, request.url.path)
                response = _error_page(request, 500, t("error.500"), reference=ref)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
            return response

        return handler


router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _engine(request: Request) -> sa.Engine:
    return request.app.state.engine


def _ctx(request: Request) -> Ctx:
    return auth.context(request, _engine(request))


def _ctx_anon(request: Request) -> Ctx:
    return auth.context(request, _engine(request), login=False)


async def _csrf(request: Request) -> None:
    session = auth.read_session(request)
    if "csrf" not in session:
        raise CsrfFailed()
    await auth.check_csrf(request, Ctx(request=request, session=session, lang="zh"))


Page = Annotated[Ctx, Depends(_ctx)]
Csrf = Annotated[None, Depends(_csrf)]


def _static_url(name: str) -> str:
    return f"/static/{name}?v={_STATIC_VERSION}"


NAV = (
    ("dashboard", "/", "data.read"),
    ("hcps", "/hcps", "data.read"),
    ("identity", "/identity", "identity.manage"),
    ("segments", "/segments", "segments.view"),
    ("journeys", "/journeys", "journeys.view"),
    ("content", "/content", "content.view"),
    ("imports", "/imports", "quarantine.manage"),
    ("audit", "/audit", "audit.read"),
)


def _can_page(ctx: Ctx, perm: str) -> bool:
    if perm == "segments.view":
        return ctx.can("data.read") and not ctx.is_rep
    if perm == "journeys.view":
        return (
            ctx.can("data.read") and not ctx.is_rep and data.optional_module("journeys.service") is not None
        )
    if perm == "content.view":
        return ctx.can("data.read") and data.optional_module("content.service") is not None
    if perm == "quarantine.manage":
        return ctx.can("quarantine.manage") or ctx.can("data.import")
    return ctx.can(perm)


def render(ctx: Ctx, name: str, status: int = 200, **kw: Any) -> HTMLResponse:
    nav = [(k, href) for k, href, perm in NAV if ctx.user and _can_page(ctx, perm)]
    html = _env.get_template(name).render(
        ctx=ctx,
        t=ctx.t,
        lang=ctx.lang,
        user=ctx.user,
        csrf=ctx.session.get("csrf", ""),
        csrf_field=CSRF_FIELD,
        nav=nav,
        path=ctx.request.url.path,
        static=_static_url,
        **kw,
    )
    resp = HTMLResponse(html, status_code=status)
    _finish(ctx, resp)
    return resp


def _finish(ctx: Ctx, resp: Response) -> Response:
    if ctx.set_session:
        resp.set_cookie(
            SESSION_COOKIE,
            auth.dump_session(ctx.session),
            max_age=auth.SESSION_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=ctx.request.url.scheme == "https",
        )
    return resp


def _redirect(ctx: Ctx, url: str) -> Response:
    if _is_htmx(ctx.request):
        return _finish(ctx, Response(status_code=200, headers={"HX-Redirect": url}))
    return _finish(ctx, RedirectResponse(url, status_code=303))


def _safe_next(target: str) -> str:
    """A local path to go back to after login / a language switch, never another site."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return "/"
    return target


def _scope(ctx: Ctx) -> sa.Select | None:
    return access.owned_person_ids(ctx.tenant_id, ctx.user) if ctx.is_rep else None  # type: ignore[arg-type]


# --- static files, language, login ----------------------------------------------------------------------
@router.get("/static/{name:path}")
def static_file(name: str) -> Response:
    try:
        path = (STATIC / name).resolve()
        found = STATIC.resolve() in path.parents and path.is_file()
    except (ValueError, OSError):  # a NUL byte in the name, a name too long for the file system
        found = False
    if not found:
        raise NotFound(repr(name) if any(ord(ch) < 32 for ch in name) else name)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/lang/{lang}")
def set_lang(lang: str, request: Request, next: str = "/") -> Response:
    resp = RedirectResponse(_safe_next(next), 303)
    resp.set_cookie(LANG_COOKIE, lang if lang in LANGS else "zh", max_age=365 * 86400, samesite="lax")
    return resp


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    ctx = _ctx_anon(request)
    return render(ctx, "login.html", next=next, tenant=get_settings().tenant, username="", error=None)


def _login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle (tests put one with their own clock on ``app.state``)."""
    t = getattr(request.app.state, "login_throttle", None)
    if t is None:
        t = request.app.state.login_throttle = LoginThrottle()
    return t


def _client_address(request: Request) -> str:
    """The peer address (the one uvicorn reports; behind a proxy, run uvicorn with its
    ``--forwarded-allow-ips`` so that this is the client's)."""
    return request.client.host if request.client else "unknown"


@router.post("/login")
def login(
    request: Request,
    _: Csrf,
    tenant: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    ctx = _ctx_anon(request)
    t = ctx.t
    if not (tenant.strip() and username.strip() and password):
        return render(
            ctx, "login.html", 400, next=next, tenant=tenant, username=username, error=t("login.required")
        )
    engine = _engine(request)
    throttle = _login_throttle(request)
    slug, name = tenant.strip(), username.strip()
    keys = [user_key(slug, name), ip_key(_client_address(request))]
    with engine.begin() as conn:
        ten = accounts.get_tenant(conn=conn, slug=slug)
        user = accounts.get_user(conn=conn, tenant_id=ten["id"], username=name) if ten else None

        def note(action: str, **detail: Any) -> None:
            if ten:  # the audit log is per tenant: an unknown tenant has none
                accounts.audit(
                    conn=conn,
                    tenant_id=ten["id"],
                    actor=f"user:{name[:80]}",
                    action=action,
                    object_type="user",
                    object_id=user["id"] if user else None,
                    detail={"client": _client_address(request), **detail} if detail else None,
                )

        with throttle.attempt(conn, keys) as attempt:
            refused = attempt.verdict
            if refused.retry_after:  # locked: the password is not even checked
                note("console.login_throttled", retry_after=refused.retry_after, locked=list(refused.locked))
                ok = False
            else:
                if user and not user.get("disabled_at"):
                    ok = accounts.verify_password(password, user["password_hash"])
                else:
                    accounts.burn_password_check(password)
                    ok = False
                if ok:
                    attempt.succeeded()
                    if accounts.password_needs_rehash(user["password_hash"]):  # type: ignore[index]
                        accounts.set_password_hash(
                            conn=conn,
                            user_id=user["id"],  # type: ignore[index]
                            password=password,
                            actor="system",
                            reason="upgraded at sign-in",
                        )
                    note("console.login")
                else:
                    refused = attempt.failed()
                    note("console.login_failed")
                    if refused.retry_after:
                        note("console.lockout", retry_after=refused.retry_after, locked=list(refused.locked))
    if refused.retry_after:
        resp = render(
            ctx,
            "login.html",
            429,
            next=next,
            tenant=tenant,
            username=username,
            error=t("login.locked", seconds=refused.retry_after),
        )
        resp.headers["Retry-After"] = str(refused.retry_after)
        return resp
    if not ok:
        return render(
            ctx, "login.html", 401, next=next, tenant=tenant, username=username, error=t("login.failed")
        )
    ctx.session = {"csrf": auth.new_csrf(), "uid": user["id"]}  # type: ignore[index]
    ctx.set_session = True
    target = _safe_next(next)
    return _finish(ctx, RedirectResponse(target, status_code=303))


@router.post("/logout")
def logout(request: Request, _: Csrf) -> Response:
    ctx = _ctx_anon(request)
    if ctx.user:
        with _engine(request).begin() as conn:
            accounts.audit(conn=conn, tenant_id=ctx.tenant_id, actor=ctx.actor, action="console.logout")
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


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
    params = {"q": q, "hospital": hospital, "department": department, "person_type": person_type}
    name = "hcps_results.html" if _is_htmx(ctx.request) else "hcps.html"
    return render(ctx, name, rows=rows[:limit], more=more, page=page, params=params)


@router.get("/hcps/{person_id}")
def profile(ctx: Page, person_id: str) -> Response:
    ctx.require("data.read")
    from medscrm.profiles import service as profiles

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
    tags = data.tag_views(prof.get("tags") or [], ctx.lang)
    scores = data.score_views(prof.get("scores") or {}, ctx.lang)
    stage_info = prof.get("stage") or {}
    tier = prof.get("tier") or prof["attributes"].get("crm_tier")
    stage = [stage_info[k] for k in ("aipl", "lifecycle") if stage_info.get(k)]
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


# --- identity review -------------------------------------------------------------------------------------
REVIEW_FIELDS = ("name", "gender", "hospital", "department", "title", "city", "phone", "email", "license_no")
EVIDENCE_KEY = {"license_no": "license"}


def _pair_view(pair: dict[str, Any], role: str) -> dict[str, Any]:
    a = access.visible_attributes(pair.get("a") or {}, role)
    b = access.visible_attributes(pair.get("b") or {}, role)
    detail = pair.get("detail") or {}
    if isinstance(detail, str):
        detail = json.loads(detail)
    rows = []
    for f in REVIEW_FIELDS:
        level = detail.get(EVIDENCE_KEY.get(f, f))
        if level is None or level == -1:
            verdict = "missing"
        elif level > 0:
            verdict = "agree"
        else:
            verdict = "differ"
        rows.append({"field": f, "a": a.get(f), "b": b.get(f), "level": level, "verdict": verdict})
    for extra in ("unionid", "wecom"):
        if detail.get(extra) not in (None, -1):
            rows.append(
                {
                    "field": extra,
                    "a": "",
                    "b": "",
                    "level": detail[extra],
                    "verdict": "agree" if detail[extra] > 0 else "differ",
                }
            )
    return {
        **pair,
        "rows": rows,
        "source_a": (pair.get("a") or {}).get("source"),
        "source_b": (pair.get("b") or {}).get("source"),
        "why": detail.get("reason"),
    }


@router.get("/identity")
def identity(ctx: Page, page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    ctx.require("identity.manage")
    from medscrm.db.schema import identity_review
    from medscrm.persons import review

    with _engine(ctx.request).connect() as conn:
        pairs = review.list_reviews(conn, tenant_id=ctx.tenant_id, limit=10, offset=(page - 1) * 10)
        open_n = conn.execute(
            sa.select(sa.func.count()).where(
                identity_review.c.tenant_id == ctx.tenant_id, identity_review.c.status == "open"
            )
        ).scalar_one()
        r = identity_review
        decided = [
            dict(x)
            for x in conn.execute(
                sa.select(r.c.id, r.c.status, r.c.decided_at, r.c.decided_by, r.c.record_a)
                .where(r.c.tenant_id == ctx.tenant_id, r.c.status != "open")
                .order_by(r.c.decided_at.desc())
                .limit(10)
            ).mappings()
        ]
        from medscrm.db.schema import person_records

        for x in decided:
            x["person_id"] = conn.execute(
                sa.select(person_records.c.person_id).where(
                    person_records.c.tenant_id == ctx.tenant_id,
                    person_records.c.source_record_id == x["record_a"],
                )
            ).scalar()
    return render(
        ctx,
        "identity.html",
        pairs=[_pair_view(p, ctx.role) for p in pairs],
        open_n=open_n,
        page=page,
        decided=decided,
    )


@router.post("/identity/{review_id}/decide")
def identity_decide(ctx: Page, _: Csrf, review_id: str, decision: Annotated[str, Form()] = "") -> Response:
    ctx.require("identity.manage")
    from medscrm.persons import review

    with _engine(ctx.request).begin() as conn:
        result = review.decide(
            conn, tenant_id=ctx.tenant_id, review_id=review_id, decision=decision, actor=ctx.actor
        )
    if _is_htmx(ctx.request):
        return render(ctx, "identity_decided.html", result=result)
    return _redirect(ctx, "/identity")


# --- segments --------------------------------------------------------------------------------------------
def _seg_ctx(ctx: Ctx) -> None:
    ctx.require("data.read")
    if ctx.is_rep:
        raise Forbidden("segments")


def node_paths(rule: Any, path: str = "") -> list[str]:
    """JSON paths of the group/leaf nodes of a rule, as the validator names them."""

    def join(p: str, k: str) -> str:
        return f"{p}.{k}" if p else k

    out = [path]
    if isinstance(rule, dict):
        for g in ("and", "or"):
            if isinstance(rule.get(g), list):
                for i, child in enumerate(rule[g]):
                    out += node_paths(child, join(path, f"{g}[{i}]"))
        if "not" in rule:
            out += node_paths(rule["not"], join(path, "not"))
    return out


def problems_by_node(rule: Any, problems: list[dict[str, str]]) -> dict[str, list[str]]:
    """Each problem placed at the deepest node whose path prefixes the problem's path."""
    nodes = sorted(set(node_paths(rule)), key=len, reverse=True)
    out: dict[str, list[str]] = {}
    for prob in problems:
        path = prob.get("path") or ""
        where = next(
            (n for n in nodes if path == n or not n or path.startswith(n + ".") or path.startswith(n + "[")),
            "",
        )
        detail = path[len(where) :].lstrip(".")
        out.setdefault(where, []).append(f"{detail}: {prob['reason']}" if detail else prob["reason"])
    return out


def _builder_meta(conn: sa.Connection, tenant_id: str) -> dict[str, Any]:
    from medscrm.db.schema import events
    from medscrm.tags.service import rule_context

    rc = rule_context(conn, tenant_id=tenant_id)
    ev_names = list(
        conn.execute(
            sa.select(events.c.event)
            .where(events.c.tenant_id == tenant_id, events.c.event.is_not(None))
            .group_by(events.c.event)
            .order_by(sa.func.count().desc())
            .limit(200)
        ).scalars()
    )
    return {"fields": rc.fields, "tags": rc.tags, "segments": sorted(rc.segments), "events": ev_names}


@router.get("/segments")
def segments_list(ctx: Page) -> Response:
    _seg_ctx(ctx)
    from medscrm.segments import service as segs

    with _engine(ctx.request).connect() as conn:
        rows = segs.list_segments(conn, tenant_id=ctx.tenant_id)
    return render(ctx, "segments.html", segments=rows)


def _builder(ctx: Ctx, *, seg: dict[str, Any] | None, rule: Any, status: int = 200, **kw: Any) -> Response:
    with _engine(ctx.request).connect() as conn:
        meta = _builder_meta(conn, ctx.tenant_id)
    return render(
        ctx,
        "segment_builder.html",
        status,
        seg=seg,
        rule=rule,
        meta=meta,
        can_save=ctx.can("data.import"),
        **kw,
    )


@router.get("/segments/new")
def segment_new(ctx: Page) -> Response:
    _seg_ctx(ctx)
    return _builder(ctx, seg=None, rule={"and": []}, problems={}, field_errors={}, form={})


@router.get("/segments/{key}")
def segment_edit(ctx: Page, key: str) -> Response:
    _seg_ctx(ctx)
    from medscrm.segments import service as segs

    with _engine(ctx.request).connect() as conn:
        seg = segs.get(conn, tenant_id=ctx.tenant_id, key=key)
        members = segs.members(conn, tenant_id=ctx.tenant_id, key=key, role=ctx.role, limit=20)
    return _builder(
        ctx,
        seg=seg,
        rule=seg["rule"],
        problems={},
        field_errors={},
        form={"key": seg["key"], "name": seg["name"], "kind": seg["kind"]},
        members=members,
        saved=ctx.request.query_params.get("saved"),
    )


def _parse_rule(text: str) -> tuple[Any, list[dict[str, str]]]:
    try:
        return json.loads(text), []
    except ValueError as exc:
        return None, [{"path": "", "reason": f"not valid JSON: {exc}"}]


@router.post("/segments/preview")
def segment_preview(ctx: Page, _: Csrf, rule: Annotated[str, Form()] = "") -> Response:
    _seg_ctx(ctx)
    from medscrm.rules import RuleError
    from medscrm.segments import service as segs

    parsed, problems = _parse_rule(rule)
    result, sample = None, []
    if not problems:
        with _engine(ctx.request).connect() as conn:
            try:
                result = segs.preview(conn, tenant_id=ctx.tenant_id, rule=parsed, sample=10)
            except RuleError as exc:
                problems = exc.as_list()
            if result and result["sample"]:
                rows = conn.execute(
                    sa.select(persons.c.id, persons.c.attributes).where(
                        persons.c.tenant_id == ctx.tenant_id, persons.c.id.in_(result["sample"])
                    )
                ).all()
                sample = [
                    {"person_id": pid, **access.visible_attributes(a or {}, ctx.role)} for pid, a in rows
                ]
    return render(
        ctx,
        "segment_preview.html",
        result=result,
        sample=sample,
        problems=problems_by_node(parsed, problems) if problems else {},
    )


@router.post("/segments/save")
def segment_save(
    ctx: Page,
    _: Csrf,
    key: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "dynamic",
    rule: Annotated[str, Form()] = "",
    original_key: Annotated[str, Form()] = "",
) -> Response:
    _seg_ctx(ctx)
    ctx.require("data.import")
    from medscrm.rules import RuleError
    from medscrm.segments import service as segs

    parsed, problems = _parse_rule(rule)
    form = {"key": key, "name": name, "kind": kind}
    field_errors: dict[str, list[str]] = {}
    if not problems:
        try:
            with _engine(ctx.request).begin() as conn:
                if original_key:
                    segs.update(
                        conn, tenant_id=ctx.tenant_id, key=original_key, rule=parsed, name=name or None
                    )
                    key = original_key
                else:
                    segs.create(
                        conn,
                        tenant_id=ctx.tenant_id,
                        key=key.strip(),
                        rule=parsed,
                        name=name.strip() or None,
                        kind=kind,
                        created_by=ctx.actor,
                    )
                accounts.audit(
                    conn=conn,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    action="segment.save",
                    object_type="segment",
                    object_id=key,
                    detail={"rule": parsed},
                )
            return _redirect(ctx, f"/segments/{quote(key)}?saved=1")
        except RuleError as exc:
            problems = []
            for p in exc.as_list():
                if p["path"] in ("key", "kind", "name"):
                    field_errors.setdefault(p["path"], []).append(p["reason"])
                else:
                    problems.append(
                        {"path": p["path"].removeprefix("rule.").removeprefix("rule"), "reason": p["reason"]}
                    )
    seg = None
    if original_key:
        with _engine(ctx.request).connect() as conn:
            seg = segs.get(conn, tenant_id=ctx.tenant_id, key=original_key)
    return _builder(
        ctx,
        seg=seg,
        rule=parsed if parsed is not None else {"and": []},
        status=422,
        problems=problems_by_node(parsed, problems) if problems else {},
        field_errors=field_errors,
        form=form,
        error=ctx.t("seg.invalid"),
    )


@router.get("/segments/{key}/export.csv")
def segment_export(ctx: Page, key: str) -> Response:
    _seg_ctx(ctx)
    from medscrm.segments import service as segs

    with _engine(ctx.request).begin() as conn:
        text = segs.export_csv(conn, tenant_id=ctx.tenant_id, key=key, role=ctx.role)
        accounts.audit(
            conn=conn,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            action="segment.export",
            object_type="segment",
            object_id=key,
            detail={"role": ctx.role},
        )
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
    )


# --- imports and quarantine ------------------------------------------------------------------------------
def _imports_ctx(ctx: Ctx) -> None:
    if not (ctx.can("data.import") or ctx.can("quarantine.manage")):
        raise Forbidden("imports")


def _imports_page(ctx: Ctx, status: int = 200, **kw: Any) -> Response:
    from medscrm.ingest import quarantine as qs

    with _engine(ctx.request).connect() as conn:
        recent = [
            dict(r)
            for r in conn.execute(
                sa.select(imports, sources.c.name.label("source_name"))
                .join(sources, sources.c.id == imports.c.source_id)
                .where(imports.c.tenant_id == ctx.tenant_id)
                .order_by(imports.c.started_at.desc())
                .limit(10)
            ).mappings()
        ]
        counts = qs.count_open(conn=conn, tenant_id=ctx.tenant_id)
        total = sum(counts.values())
        entries = (  # the newest 25 open entries, newest first
            qs.list_entries(
                conn=conn, tenant_id=ctx.tenant_id, status="open", limit=25, offset=max(0, total - 25)
            )[::-1]
            if ctx.can("quarantine.manage")
            else []
        )
        names = data.source_names(conn, tenant_id=ctx.tenant_id)
    for e in entries:
        if not ctx.can("pii.read"):
            e["payload"] = access.visible_attributes(e["payload"] or {}, ctx.role)
        e["current"] = e.get("fixed_payload") or e["payload"]
    kw.setdefault("report", None)
    kw.setdefault("upload_error", None)
    kw.setdefault("replay", None)
    return render(
        ctx,
        "imports.html",
        status,
        recent=recent,
        entries=entries,
        counts=counts,
        open_total=sum(counts.values()),
        source_names=names,
        max_bytes=get_settings().max_import_bytes,
        can_import=ctx.can("data.import"),
        can_fix=ctx.can("quarantine.manage"),
        **kw,
    )


@router.get("/imports")
def imports_page(ctx: Page) -> Response:
    _imports_ctx(ctx)
    return _imports_page(ctx, focus=ctx.request.query_params.get("focus"))


@router.post("/imports")
def upload(
    ctx: Page,
    _: Csrf,
    file: Annotated[UploadFile | None, File()] = None,
    source: Annotated[str, Form()] = "",
    mapping_mode: Annotated[str, Form()] = "auto",
    mapping_file: Annotated[UploadFile | None, File()] = None,
    person_type: Annotated[str, Form()] = "hcp",
) -> Response:
    ctx.require("data.import")
    from medscrm.ingest.importer import import_file
    from medscrm.ingest.mapping import Mapping, load_mapping

    t = ctx.t
    errors: dict[str, str] = {}
    fname = Path((file.filename if file else "") or "").name.replace("\x00", "")
    suffix = Path(fname).suffix.lower()
    if len(fname) > 120:  # keep the extension: the importer reads the format from it
        fname = fname[: 120 - len(suffix)] + suffix
    limit = get_settings().max_import_bytes
    if not file or not fname:
        errors["file"] = t("imp.no_file")
    elif suffix not in UPLOAD_SUFFIXES:
        errors["file"] = t("imp.bad_type", ext=suffix or "(none)")
    elif file.size is not None and file.size > limit:
        errors["file"] = t("imp.too_large", limit=f"{limit:,}")
    source = source.strip()
    if not source or len(source) > 100:
        errors["source"] = t("imp.bad_source")
    if mapping_mode == "file" and not (mapping_file and mapping_file.filename):
        errors["mapping"] = t("imp.mapping_needed")
    if errors:
        return _imports_page(ctx, 400, upload_error=errors, form={"source": source})
    tmp = Path(tempfile.mkdtemp(prefix="medscrm-upload-"))
    try:
        path = tmp / fname
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1024 * 1024)  # type: ignore[union-attr]
        if path.stat().st_size > limit:
            return _imports_page(
                ctx,
                400,
                upload_error={"file": t("imp.too_large", limit=f"{limit:,}")},
                form={"source": source},
            )
        mapping = None
        if mapping_mode == "file":
            mpath = tmp / "mapping.yaml"
            with mpath.open("wb") as out:
                shutil.copyfileobj(mapping_file.file, out, 1024 * 1024)  # type: ignore[union-attr]
            try:
                mapping = load_mapping(mpath)
            except MedscrmError as exc:
                msg = str(exc).replace(str(mpath), mapping_file.filename or "mapping.yaml")  # type: ignore[union-attr]
                return _imports_page(ctx, 400, upload_error={"mapping": msg}, form={"source": source})
        elif person_type in ("hcp", "patient"):
            mapping = Mapping(person_type=person_type)
        report = import_file(
            engine=_engine(ctx.request),
            tenant_id=ctx.tenant_id,
            source=source,
            path=path,
            mapping=mapping,
            actor=ctx.actor,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep = report.to_dict()
    if not ctx.can("pii.read"):
        for r in rep["rejections"]:
            r["value"] = "***" if r.get("value") else r.get("value")
    return _imports_page(
        ctx, 200 if report.status == "committed" else 400, report=rep, form={"source": source}
    )


@router.post("/quarantine/{entry_id}/fix")
async def quarantine_fix(entry_id: str, request: Request, _: Csrf) -> Response:
    form = await request.form()
    changes = {k[4:]: v for k, v in form.items() if k.startswith("col:") and isinstance(v, str)}
    return await _run_sync(_quarantine_fix, request, entry_id, changes)


def _quarantine_fix(request: Request, entry_id: str, changes: dict[str, str]) -> Response:
    ctx = _ctx(request)
    ctx.require("quarantine.manage")
    from medscrm.ingest import quarantine as qs

    with _engine(request).begin() as conn:
        entry = qs.get_entry(conn=conn, tenant_id=ctx.tenant_id, entry_id=entry_id)
        base = entry.get("fixed_payload") or entry["payload"]
        diff = {
            k: v
            for k, v in changes.items()
            if k in base and str(base.get(k) if base.get(k) is not None else "") != v
        }
        if diff:
            qs.fix(conn=conn, tenant_id=ctx.tenant_id, entry_id=entry_id, changes=diff, actor=ctx.actor)
    return _redirect(ctx, f"/imports?focus={entry_id}#q-{entry_id}")


async def _run_sync(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


@router.post("/quarantine/{entry_id}/replay")
def quarantine_replay_one(ctx: Page, _: Csrf, entry_id: str) -> Response:
    return _replay(ctx, [entry_id])


@router.post("/quarantine/replay")
def quarantine_replay_fixed(ctx: Page, _: Csrf) -> Response:
    from medscrm.db.schema import quarantine

    with _engine(ctx.request).connect() as conn:
        ids = list(
            conn.execute(
                sa.select(quarantine.c.id).where(
                    quarantine.c.tenant_id == ctx.tenant_id,
                    quarantine.c.status == "open",
                    quarantine.c.fixed_payload.is_not(None),
                )
            ).scalars()
        )
    return _replay(ctx, ids)


def _replay(ctx: Ctx, ids: list[str]) -> Response:
    ctx.require("quarantine.manage")
    from medscrm.ingest import quarantine as qs

    if not ids:
        return _imports_page(ctx, replay={"replayed": 0, "still_rejected": 0})
    with _engine(ctx.request).begin() as conn:
        result = qs.replay(conn=conn, tenant_id=ctx.tenant_id, entry_ids=ids, actor=ctx.actor)
    return _imports_page(ctx, replay=result)


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
    return render(
        ctx,
        "audit.html",
        rows=rows[:50],
        more=len(rows) > 50,
        page=page,
        params={"action": action, "actor": actor},
    )


# --- journeys (C4) and content library (C5): pages exist where those modules are installed -------------
def _journeys_svc(ctx: Ctx):
    ctx.require("data.read")
    if ctx.is_rep:
        raise Forbidden("journeys")
    svc = data.optional_module("journeys.service")
    if svc is None:
        raise NotFound("the journeys module is not installed")
    return svc


def journey_graph(definition: dict[str, Any], stats: list[dict[str, Any]], t) -> dict[str, Any]:
    """An ECharts graph of the journey: steps laid out by depth from the entry, edges labelled by the
    field that makes them (next, then, else, on_blocked, branches[i].next), per-step figures on nodes."""
    from medscrm.journeys.model import validate_definition

    journey = validate_definition(definition)
    by_id = {s["step_id"]: s for s in stats}
    edges = {s.id: s.targets() for s in journey.steps}
    depth = {journey.entry_step: 0}
    queue = [journey.entry_step]
    while queue:
        cur = queue.pop(0)
        for _, nxt in edges.get(cur, []):
            if nxt not in depth:
                depth[nxt] = depth[cur] + 1
                queue.append(nxt)
    for s in journey.steps:  # unreachable steps go last
        depth.setdefault(s.id, max(depth.values(), default=0) + 1)
    rows: dict[int, int] = {}
    nodes = []
    for s in journey.steps:
        d = depth[s.id]
        row = rows.get(d, 0)
        rows[d] = row + 1
        st = by_id.get(s.id, {})
        blocked = sum((st.get("blocked") or {}).values())
        label = f"{s.name or s.id}\n{s.type}"
        figures = f"{t('jr.entered')} {st.get('entered', 0)} · {t('jr.waiting')} {st.get('waiting', 0)}"
        if s.type == "send":
            figures += f"\n{t('jr.sent')} {st.get('sent', 0)} · {t('jr.blocked')} {blocked}"
        nodes.append(
            {
                "id": s.id,
                "name": s.id,
                "x": d * 260,
                "y": row * 120,
                "value": st.get("entered", 0),
                "label": {"show": True, "formatter": f"{label}\n{figures}"},
                "category": s.type,
            }
        )
    links = [
        {"source": sid, "target": nxt, "label": {"show": field != "next", "formatter": field}}
        for sid, targets in edges.items()
        for field, nxt in targets
    ]
    types = sorted({s.type for s in journey.steps})
    return {
        "tooltip": {},
        "legend": {"data": types, "bottom": 0},
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": True,
                "symbol": "roundRect",
                "symbolSize": [190, 70],
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 9,
                "categories": [{"name": n} for n in types],
                "label": {"fontSize": 11, "lineHeight": 15},
                "edgeLabel": {"fontSize": 11},
                "lineStyle": {"width": 1.5, "curveness": 0.15},
                "data": nodes,
                "links": links,
            }
        ],
    }


@router.get("/journeys")
def journeys_page(ctx: Page) -> Response:
    svc = _journeys_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        rows = svc.list_journeys(conn, tenant_id=ctx.tenant_id)
    return render(ctx, "journeys.html", journeys=rows, can_run=ctx.can("data.import"))


def _journey_page(ctx: Ctx, key: str, status: int = 200, error: str | None = None) -> Response:
    svc = _journeys_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        j = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=key)
        stats = svc.step_stats(conn, tenant_id=ctx.tenant_id, key=key)
    return render(
        ctx,
        "journey.html",
        status,
        j=j,
        stats=stats,
        graph=journey_graph(j["definition"], stats, ctx.t),
        can_run=ctx.can("data.import"),
        error=error,
    )


@router.get("/journeys/{key}")
def journey_detail(ctx: Page, key: str) -> Response:
    return _journey_page(ctx, key)


@router.post("/journeys/{key}/{action}")
def journey_action(ctx: Page, _: Csrf, key: str, action: str) -> Response:
    svc = _journeys_svc(ctx)
    ctx.require("data.import")
    if action not in ("start", "pause", "resume", "stop"):
        raise NotFound(f"action {action!r}")
    try:
        with _engine(ctx.request).begin() as conn:
            getattr(svc, action)(conn, tenant_id=ctx.tenant_id, key=key, actor=ctx.actor)
    except NotFound:
        raise
    except MedscrmError as exc:  # e.g. content not approved, no channel credentials: say so on the page
        return _journey_page(ctx, key, 400, error=str(exc))
    return _redirect(ctx, f"/journeys/{quote(key)}")


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
