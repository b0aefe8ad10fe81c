"""Console sign-in and sign-out (sessions and CSRF live in ``medscrm.web.auth``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from medscrm.accounts import service as accounts
from medscrm.accounts import sso
from medscrm.accounts.throttle import LoginThrottle, ip_key, user_key
from medscrm.config import get_settings
from medscrm.web import auth
from medscrm.web.auth import SESSION_COOKIE
from medscrm.web.routes.base import ConsoleRoute, Csrf, _ctx_anon, _engine, _finish, _safe_next
from medscrm.web.routes.base import render as _render
from medscrm.web.routes.sso import login_options

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def render(ctx: auth.Ctx, name: str, status: int = 200, **kw: Any) -> Response:
    """The login page, with the "Sign in with <provider>" button of the tenant it names."""
    return _render(
        ctx, name, status, sso_options=login_options(ctx.request, kw.get("tenant", "").strip()), **kw
    )


@router.get("/login")
def login_page(request: Request, next: str = "/", tenant: str = "") -> Response:
    ctx = _ctx_anon(request)
    slug = tenant.strip() or _default_tenant(request)
    return render(ctx, "login.html", next=next, tenant=slug, username="", error=None)


def _default_tenant(request: Request) -> str:
    """The tenant the sign-in form starts with: MEDSCRM_TENANT, or, outside production, the only
    tenant of the workspace when that one does not exist (the demo's `demo`)."""
    slug = get_settings().tenant
    if get_settings().is_production:
        return slug
    with _engine(request).connect() as conn:
        if accounts.get_tenant(conn=conn, slug=slug) is None:
            known = accounts.list_tenants(conn=conn)
            if len(known) == 1:
                return known[0]["slug"]
    return slug


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
    local_off = False
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
                if ok and not sso.local_login_allowed(conn, ten["id"], user):  # type: ignore[index,arg-type]
                    # SSO is on with local passwords off: only admins (break-glass) use a password
                    attempt.succeeded()  # the password was right: no lockout for it
                    note("console.login_refused", reason="local_passwords_off")
                    ok, local_off = False, True
                elif ok:
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
    if local_off:
        return render(
            ctx, "login.html", 403, next=next, tenant=tenant, username=username, error=t("sso.local_off")
        )
    if not ok and ten is None and not refused.retry_after:
        # an unknown tenant is named (a typo is told apart from a wrong password); outside production
        # the known tenants are listed too, to help a newcomer to the demo's
        error = t("login.unknown_tenant", slug=slug)
        if not get_settings().is_production:
            with engine.connect() as conn:
                known = ", ".join(x["slug"] for x in accounts.list_tenants(conn=conn)) or "—"
            error += " · " + t("login.known_tenants", known=known)
        return render(ctx, "login.html", 401, next=next, tenant=tenant, username=username, error=error)
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
