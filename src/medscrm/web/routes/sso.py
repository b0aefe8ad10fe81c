"""Console single sign-on (OpenID Connect): ``/sso/start`` sends the browser to the tenant's identity
provider, ``/sso/callback`` comes back with the code; ``/sso`` is the admin page (``accounts.manage``)
that configures it.

Between the two legs of a sign-in the tenant, ``state``, ``nonce``, PKCE verifier and the page to go
back to live in a short-lived cookie signed with ``MEDSCRM_SECRET_KEY`` (nothing on the server). The
protocol and the user mapping are :mod:`medscrm.accounts.sso`; this module only carries the browser
and turns each refusal into a translated message and an audit row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from medscrm.accounts import service as accounts
from medscrm.accounts import sso
from medscrm.common import InvalidInput
from medscrm.config import get_settings
from medscrm.web import auth
from medscrm.web.auth import Ctx
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _ctx_anon, _engine, _finish, _safe_next, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FLOW_COOKIE = "medscrm_sso"
#: seconds a user has at the provider before the sign-in must start again
FLOW_MAX_AGE = 600


def _flow_serializer() -> URLSafeTimedSerializer:
    s = get_settings()
    return URLSafeTimedSerializer([*reversed(s.old_keys), s.secret_key], salt="medscrm.console.sso")


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _redirect_uri(request: Request) -> str:
    return str(request.url_for("sso_callback"))


def login_options(request: Request, slug: str) -> list[dict[str, str]]:
    """The "Sign in with <name>" buttons the login page shows for tenant ``slug`` (none when that
    tenant has no SSO on)."""
    if not slug:
        return []
    with _engine(request).connect() as conn:
        ten = accounts.get_tenant(conn=conn, slug=slug)
        cfg = sso.active(conn, ten["id"]) if ten else None
    return [{"tenant": slug, "label": cfg.label}] if cfg else []


def _login_error(ctx: Ctx, status: int, message: str, tenant: str = "", next: str = "/") -> Response:
    resp = render(
        ctx,
        "login.html",
        status,
        next=next,
        tenant=tenant,
        username="",
        error=message,
        sso_options=login_options(ctx.request, tenant),
    )
    resp.delete_cookie(FLOW_COOKIE)
    return resp


def _refused(
    ctx: Ctx, refused: sso.SsoRefused, *, tenant_id: str | None, slug: str, next: str = "/"
) -> Response:
    """Audit a refusal (when the tenant is known) and show its translated message on the login page."""
    if tenant_id:
        with _engine(ctx.request).begin() as conn:
            sso.audit_refusal(conn, tenant_id, refused, client=_client_address(ctx.request))
    status = (
        403 if refused.reason in ("no_mapped_group", "local_account", "no_account", "user_disabled") else 401
    )
    if refused.reason in ("provider_unreachable",):
        status = 502
    return _login_error(ctx, status, ctx.t("sso.refused." + refused.reason), slug, next)


@router.get("/sso/start")
def sso_start(request: Request, tenant: str = "", next: str = "/") -> Response:
    ctx = _ctx_anon(request)
    slug = tenant.strip()
    with _engine(request).connect() as conn:
        ten = accounts.get_tenant(conn=conn, slug=slug) if slug else None
        cfg = sso.active(conn, ten["id"]) if ten else None
    if ten is None:
        return _login_error(ctx, 404, ctx.t("login.unknown_tenant", slug=slug or "—"), slug, next)
    if cfg is None:
        return _refused(
            ctx,
            sso.SsoRefused("not_configured", "SSO is off for this tenant"),
            tenant_id=None,
            slug=slug,
            next=next,
        )
    try:
        start = sso.begin(cfg, _redirect_uri(request))
    except sso.SsoRefused as exc:
        return _refused(ctx, exc, tenant_id=ten["id"], slug=slug, next=next)
    flow = {
        "tenant_id": ten["id"],
        "slug": slug,
        "state": start.state,
        "nonce": start.nonce,
        "verifier": start.code_verifier,
        "next": _safe_next(next),
    }
    resp = RedirectResponse(start.url, status_code=303)
    resp.set_cookie(
        FLOW_COOKIE,
        _flow_serializer().dumps(flow),
        max_age=FLOW_MAX_AGE,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to the callback
        secure=request.url.scheme == "https",
    )
    return _finish(ctx, resp)


@router.get("/sso/callback", name="sso_callback")
def sso_callback(
    request: Request, code: str = "", state: str = "", error: str = "", error_description: str = ""
) -> Response:
    ctx = _ctx_anon(request)
    raw = request.cookies.get(FLOW_COOKIE, "")
    try:
        flow = _flow_serializer().loads(raw, max_age=FLOW_MAX_AGE) if raw else None
    except BadSignature:
        flow = None
    if not isinstance(flow, dict):
        # no sign-in of this browser is under way (expired, or a forged/replayed callback): the tenant
        # is unknown, so there is no tenant audit log to write to; the log line records it
        return _login_error(ctx, 400, ctx.t("sso.refused.wrong_state"))
    slug, tenant_id, next = flow["slug"], flow["tenant_id"], flow.get("next", "/")
    if not state or state != flow["state"]:
        refused = sso.SsoRefused(
            "wrong_state", "the callback's state is not this browser's sign-in", got=state[:80]
        )
        return _refused(ctx, refused, tenant_id=tenant_id, slug=slug, next=next)
    if error or not code:
        refused = sso.SsoRefused(
            "provider_error",
            f"the provider answered {error or 'no code'}",
            error=error[:80],
            description=error_description[:200],
        )
        return _refused(ctx, refused, tenant_id=tenant_id, slug=slug, next=next)
    engine = _engine(request)
    with engine.connect() as conn:
        cfg = sso.active(conn, tenant_id)
    if cfg is None:
        refused = sso.SsoRefused("not_configured", "SSO was turned off during the sign-in")
        return _refused(ctx, refused, tenant_id=tenant_id, slug=slug, next=next)
    try:
        claims = sso.complete(
            cfg,
            redirect_uri=_redirect_uri(request),
            code=code,
            code_verifier=flow["verifier"],
            nonce=flow["nonce"],
        )
        with engine.begin() as conn:
            user = sso.sign_in(conn, cfg, claims, client=_client_address(request))
    except sso.SsoRefused as exc:
        return _refused(ctx, exc, tenant_id=tenant_id, slug=slug, next=next)
    # the same console session a password sign-in starts
    ctx.session = {"csrf": auth.new_csrf(), "uid": user["id"], "via": "sso"}
    ctx.set_session = True
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.delete_cookie(FLOW_COOKIE)
    return _finish(ctx, resp)


# --- the admin page ------------------------------------------------------------------------------
def _admin_page(ctx: Ctx, status: int = 200, **kw: Any) -> Response:
    with _engine(ctx.request).connect() as conn:
        current = sso.show(conn, ctx.tenant_id)
    form = kw.pop("form", None) or (
        {
            **current,
            "scopes": " ".join(current["scopes"]),
            "role_map": sso.format_role_map(current["role_map"]),
        }
        if current
        else {
            "issuer": "",
            "client_id": "",
            "display_name": "",
            "scopes": "openid profile email",
            "groups_claim": "groups",
            "username_claim": "preferred_username",
            "role_map": "",
            "jit": True,
            "local_passwords": True,
        }
    )
    kw.setdefault("error", None)
    kw.setdefault("saved", False)
    return render(
        ctx,
        "sso.html",
        status,
        current=current,
        form=form,
        callback_url=_redirect_uri(ctx.request),
        roles=sso.ROLE_PRECEDENCE,
        **kw,
    )


@router.get("/sso")
def sso_page(ctx: Page) -> Response:
    ctx.require("accounts.manage")
    return _admin_page(ctx)


@router.post("/sso")
def sso_save(
    ctx: Page,
    _: Csrf,
    issuer: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
    client_secret: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    scopes: Annotated[str, Form()] = "openid",
    groups_claim: Annotated[str, Form()] = "groups",
    username_claim: Annotated[str, Form()] = "preferred_username",
    role_map: Annotated[str, Form()] = "",
    jit: Annotated[bool, Form()] = False,
    local_passwords: Annotated[bool, Form()] = False,
) -> Response:
    ctx.require("accounts.manage")
    form = {
        "issuer": issuer,
        "client_id": client_id,
        "display_name": display_name,
        "scopes": scopes,
        "groups_claim": groups_claim,
        "username_claim": username_claim,
        "role_map": role_map,
        "jit": jit,
        "local_passwords": local_passwords,
    }
    try:
        with _engine(ctx.request).begin() as conn:
            sso.configure(
                conn,
                ctx.tenant_id,
                actor=ctx.actor,
                issuer=issuer,
                client_id=client_id,
                # an empty field keeps the stored secret (it is never shown, so never re-sent)
                client_secret=client_secret or None,
                display_name=display_name.strip(),
                scopes=scopes.replace(",", " ").split(),
                groups_claim=groups_claim,
                username_claim=username_claim,
                role_map=sso.parse_role_map(role_map),
                jit=jit,
                local_passwords=local_passwords,
            )
    except InvalidInput as exc:
        return _admin_page(ctx, 400, form=form, error=f"{ctx.t('error.400')}: {exc}")
    return _admin_page(ctx, saved=True)


@router.post("/sso/disable")
def sso_disable(ctx: Page, _: Csrf) -> Response:
    ctx.require("accounts.manage")
    try:
        with _engine(ctx.request).begin() as conn:
            sso.disable(conn, ctx.tenant_id, actor=ctx.actor)
    except InvalidInput as exc:
        return _admin_page(ctx, 400, error=f"{ctx.t('error.400')}: {exc}")
    return _admin_page(ctx, saved=True)
