"""What every console page shares: the templates, the route class, the session dependencies and
``render``.

Every route goes through :class:`ConsoleRoute`, which turns errors into friendly pages (never a stack
trace), sends unauthenticated visitors to the login page and adds a ``Server-Timing: app;dur=<ms>``
header. The pages themselves live in the sibling modules, one per domain.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from markupsafe import Markup, escape

from medscrm import access
from medscrm.common import MedscrmError, NotFound
from medscrm.web import auth, data
from medscrm.web.auth import CSRF_FIELD, SESSION_COOKIE, CsrfFailed, Ctx, Forbidden, LoginRequired
from medscrm.web.i18n import LANG_COOKIE, pick_lang, translator

log = logging.getLogger("medscrm.web")
HERE = Path(__file__).parent.parent  # medscrm/web: templates/ and static/
STATIC = HERE / "static"

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
_env.filters["one_language"] = data.one_language
_env.globals["field_label"] = data.field_label
_env.globals["data_value"] = lambda v: Markup('<span translate="no">{}</span>').format(v)  # never translated
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
    ("tasks", "/tasks", "data.read"),
    ("content", "/content", "content.view"),
    ("imports", "/imports", "quarantine.manage"),
    ("audit", "/audit", "audit.read"),
    ("compliance", "/compliance", "audit.read"),
    ("privacy", "/privacy", "privacy.manage"),
    ("retention", "/retention", "privacy.manage"),
    ("webhooks", "/webhooks", "webhooks.manage"),
    ("sso", "/sso", "accounts.manage"),
    ("outbox", "/outbox", "outbox.demo"),
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
    if perm == "outbox.demo":  # a demo workspace only (its providers file), for roles that read PII
        if not ctx.can("pii.read"):
            return False
        # lazy: off the server's start-up path
        from medscrm.devtools.demo_providers import providers_file

        return providers_file(_engine(ctx.request).url.render_as_string(hide_password=False)).exists()
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
