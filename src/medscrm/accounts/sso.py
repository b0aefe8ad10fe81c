"""Single sign-on to the console with OpenID Connect (Authlib), configured per tenant.

A tenant names its identity provider (the *issuer*; endpoints and signing keys come from its
``/.well-known/openid-configuration``), the client id and secret the provider gave medscrm, the scopes,
the claim that carries the user's groups and a map from those groups to medscrm roles.

Sign-in is the authorization code flow with PKCE (S256), ``state`` and ``nonce``
(:func:`begin` builds the provider's URL, :func:`complete` exchanges the code and validates the ID
token: signature against the provider's JWKS, issuer, audience = client id, expiry, nonce). Then
:func:`sign_in` maps the groups to a role and creates (just in time) or updates the console user.
Every refusal is an :class:`SsoRefused` with a reason code; the caller audits it (:func:`audit_refusal`).

Role precedence: when several groups map, the most privileged role wins, in the order of
:data:`ROLE_PRECEDENCE` (admin, compliance, marketer, analyst, rep). The role is set again at each SSO
sign-in, so a change of groups at the provider takes effect at the user's next sign-in.

A rep signed in by SSO is named in the sources by the username claim and the ``name`` claim (the
display name), exactly as :func:`medscrm.access.rep_keys` names a local rep: the provider's
``preferred_username`` (or the configured claim) must be what the CRM sources record as the owner.

Local passwords stay allowed unless the tenant turns them off (``local_passwords = false``); even
then an admin with a local password may still sign in with it (break-glass access when the provider
is down or misconfigured). An SSO sign-in never takes over a local account that has a password.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
import sqlalchemy as sa
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from medscrm.accounts import service as accounts
from medscrm.accounts.roles import ROLES
from medscrm.accounts.secrets import seal, unseal
from medscrm.common import InvalidInput, MedscrmError, utcnow
from medscrm.config import get_settings
from medscrm.db.schema import sso_configs, sso_identities, users

with warnings.catch_warnings():
    # Authlib 1.9 prefers the httpx2 fork and warns once when it falls back to httpx, which this
    # project already uses everywhere; the fallback is supported in the pinned release
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

#: most privileged first: when a user's groups map to several roles, the first of these wins
ROLE_PRECEDENCE = ("admin", "compliance", "marketer", "analyst", "rep")
assert set(ROLE_PRECEDENCE) == set(ROLES)

#: seconds of clock difference tolerated between medscrm and the provider (exp, iat)
LEEWAY = 60
#: seconds a discovery document and JWKS are reused before being fetched again
METADATA_TTL = 300.0
HTTP_TIMEOUT = 10.0

#: refusal reasons (codes; the console translates them, the audit row records them)
REASONS = (
    "not_configured",
    "provider_unreachable",
    "unknown_issuer",
    "wrong_state",
    "wrong_nonce",
    "wrong_audience",
    "expired",
    "bad_signature",
    "invalid_token",
    "provider_error",
    "no_mapped_group",
    "local_account",
    "no_account",
    "user_disabled",
)


class SsoRefused(MedscrmError):
    """A sign-in refused: ``reason`` is one of :data:`REASONS`; ``detail`` goes to the audit row."""

    def __init__(self, reason: str, message: str, **detail: Any):
        assert reason in REASONS, reason
        self.reason, self.detail = reason, detail
        super().__init__(f"sso: {reason}: {message}")


# --- configuration -----------------------------------------------------------------------------------
@dataclass
class SsoConfig:
    tenant_id: str
    issuer: str
    client_id: str
    client_secret: str | None = None
    #: the name on the login page's button ("Sign in with <display_name>")
    display_name: str = ""
    scopes: list[str] = field(default_factory=lambda: ["openid", "profile", "email"])
    #: the ID-token claim that lists the user's groups
    groups_claim: str = "groups"
    #: the claim that gives the console username (falls back to ``email``, then ``sub``)
    username_claim: str = "preferred_username"
    #: IdP group → medscrm role
    role_map: dict[str, str] = field(default_factory=dict)
    #: create a console user at the first SSO sign-in of a mapped user
    jit: bool = True
    #: whether local passwords still sign in (admins with a password always may: break-glass)
    local_passwords: bool = True
    enabled: bool = True

    @property
    def label(self) -> str:
        return self.display_name or urlparse(self.issuer).hostname or self.issuer


_SETTING_KEYS = (
    "issuer",
    "client_id",
    "display_name",
    "scopes",
    "groups_claim",
    "username_claim",
    "role_map",
    "jit",
    "local_passwords",
)


def parse_role_map(text: str) -> dict[str, str]:
    """``"group=role, other group=role"`` (or one pair per line) → ``{group: role}``; each role is
    checked."""
    out: dict[str, str] = {}
    for part in re.split(r"[,\n;]", text):
        part = part.strip()
        if not part:
            continue
        group, sep, role = part.rpartition("=")
        if not sep or not group.strip() or not role.strip():
            raise InvalidInput("role_map", f"{part!r} is not GROUP=ROLE")
        out[group.strip()] = role.strip()
    return out


def format_role_map(role_map: dict[str, str]) -> str:
    return ", ".join(f"{g}={r}" for g, r in role_map.items())


def _check_issuer(issuer: str) -> str:
    issuer = issuer.strip().rstrip("/")
    u = urlparse(issuer)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise InvalidInput("issuer", f"{issuer!r} is not an http(s) URL")
    if u.scheme == "http" and get_settings().is_production and u.hostname not in ("127.0.0.1", "localhost"):
        raise InvalidInput("issuer", "must use https in production")
    if u.query or u.fragment:
        raise InvalidInput("issuer", "may not have a query or fragment")
    return issuer


def _validate(cfg: SsoConfig) -> None:
    cfg.issuer = _check_issuer(cfg.issuer)
    cfg.client_id = cfg.client_id.strip()
    if not cfg.client_id or len(cfg.client_id) > 255:
        raise InvalidInput("client_id", "required (1–255 characters)")
    cfg.scopes = [s for s in dict.fromkeys(x.strip() for x in cfg.scopes) if s]
    if "openid" not in cfg.scopes:
        raise InvalidInput("scopes", "must include openid")
    for name in ("groups_claim", "username_claim"):
        value = getattr(cfg, name).strip()
        if not value or len(value) > 100:
            raise InvalidInput(name, "required (1–100 characters)")
        setattr(cfg, name, value)
    if not cfg.role_map:
        raise InvalidInput("role_map", "map at least one group to a role (GROUP=ROLE)")
    for group, role in cfg.role_map.items():
        if role not in ROLES:
            raise InvalidInput(
                "role_map", f"{group!r} maps to unknown role {role!r}; choose one of: {', '.join(ROLES)}"
            )
        if len(group) > 200:
            raise InvalidInput("role_map", "a group name is at most 200 characters")
    if len(cfg.display_name) > 100:
        raise InvalidInput("display_name", "at most 100 characters")


def _row(conn: sa.Connection, tenant_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(sso_configs).where(sso_configs.c.tenant_id == tenant_id)).mappings().first()
    return dict(row) if row else None


def load(conn: sa.Connection, tenant_id: str) -> SsoConfig | None:
    """The tenant's SSO settings with the opened client secret (None: never configured)."""
    row = _row(conn, tenant_id)
    if row is None:
        return None
    s = row["settings"] or {}
    return SsoConfig(
        tenant_id=tenant_id,
        client_secret=unseal(row["client_secret"]).get("client_secret") if row["client_secret"] else None,
        enabled=bool(row["enabled"]),
        **{k: s[k] for k in _SETTING_KEYS if k in s},
    )


def show(conn: sa.Connection, tenant_id: str) -> dict[str, Any] | None:
    """What may be shown: every setting, and whether a client secret is set (never the secret)."""
    cfg = load(conn, tenant_id)
    if cfg is None:
        return None
    row = _row(conn, tenant_id)
    out = {k: getattr(cfg, k) for k in _SETTING_KEYS}
    out.update(
        enabled=cfg.enabled,
        client_secret_set=bool(cfg.client_secret),
        updated_at=row["updated_at"],  # type: ignore[index]
        updated_by=row["updated_by"],  # type: ignore[index]
    )
    return out


def configure(conn: sa.Connection, tenant_id: str, *, actor: str, **changes: Any) -> dict[str, Any]:
    """Create or change the tenant's SSO settings (keys of :class:`SsoConfig`; None: unchanged) and
    enable it. ``client_secret`` is sealed; an empty string removes it (a public client). Audited
    with the names of the changed settings, never the secret."""
    unknown = set(changes) - {*_SETTING_KEYS, "client_secret"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "not an SSO setting")
    changes = {k: v for k, v in changes.items() if v is not None}
    cfg = load(conn, tenant_id)
    first = cfg is None
    if cfg is None:
        if not changes.get("issuer") or not changes.get("client_id"):
            raise InvalidInput("issuer", "the first configuration needs the issuer and the client_id")
        cfg = SsoConfig(tenant_id=tenant_id, issuer="", client_id="")
    for k, v in changes.items():
        setattr(cfg, k, v)
    if cfg.client_secret == "":
        cfg.client_secret = None
    cfg.enabled = True
    _validate(cfg)
    values = {
        "settings": {k: getattr(cfg, k) for k in _SETTING_KEYS},
        "client_secret": seal({"client_secret": cfg.client_secret}) if cfg.client_secret else None,
        "enabled": True,
        "updated_at": utcnow(),
        "updated_by": actor[:100],
    }
    if first:
        conn.execute(sso_configs.insert().values(tenant_id=tenant_id, **values))
    else:
        conn.execute(sso_configs.update().where(sso_configs.c.tenant_id == tenant_id).values(**values))
    detail = {k: changes[k] for k in changes if k != "client_secret"}
    if "client_secret" in changes:
        detail["client_secret"] = "set" if changes["client_secret"] else "removed"
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="sso.configure",
        object_type="sso_config",
        object_id=tenant_id,
        detail=detail,
    )
    _metadata_cache.pop(cfg.issuer, None)
    return show(conn, tenant_id)  # type: ignore[return-value]


def disable(conn: sa.Connection, tenant_id: str, *, actor: str) -> None:
    """Turn SSO off for the tenant (settings kept; ``configure`` turns it on again). Local passwords
    sign in again for everyone."""
    res = conn.execute(
        sso_configs.update()
        .where(sso_configs.c.tenant_id == tenant_id)
        .values(enabled=False, updated_at=utcnow(), updated_by=actor[:100])
    )
    if not res.rowcount:
        raise InvalidInput("sso", "single sign-on is not configured for this tenant")
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="sso.disable",
        object_type="sso_config",
        object_id=tenant_id,
    )


def active(conn: sa.Connection, tenant_id: str) -> SsoConfig | None:
    """The tenant's SSO settings when SSO is on."""
    cfg = load(conn, tenant_id)
    return cfg if cfg and cfg.enabled else None


def local_login_allowed(conn: sa.Connection, tenant_id: str, user: dict[str, Any]) -> bool:
    """Whether ``user`` may sign in with a local password: yes unless SSO is on with local passwords
    off, and then still for admins (break-glass)."""
    cfg = active(conn, tenant_id)
    return cfg is None or cfg.local_passwords or user.get("role") == "admin"


# --- the provider ---------------------------------------------------------------------------------
_metadata_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _get_json(url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
        resp.raise_for_status()
        data = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SsoRefused("provider_unreachable", f"cannot read {url}: {exc}", url=url) from exc
    if not isinstance(data, dict):
        raise SsoRefused("provider_unreachable", f"{url} did not answer a JSON object", url=url)
    return data


def discover(issuer: str, *, fresh: bool = False) -> dict[str, Any]:
    """The provider's metadata (OpenID Connect Discovery) with its JWKS under ``jwks``; the issuer it
    names must be the configured one."""
    hit = _metadata_cache.get(issuer)
    if hit and not fresh and hit[0] > time.monotonic():
        return hit[1]
    meta = _get_json(issuer + "/.well-known/openid-configuration")
    if str(meta.get("issuer", "")).rstrip("/") != issuer:
        raise SsoRefused(
            "unknown_issuer",
            f"the provider at {issuer} calls itself {meta.get('issuer')!r}",
            expected=issuer,
            got=meta.get("issuer"),
        )
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not meta.get(key):
            raise SsoRefused("provider_unreachable", f"the provider's metadata lacks {key}", missing=key)
    meta = {**meta, "jwks": _get_json(meta["jwks_uri"])}
    _metadata_cache[issuer] = (time.monotonic() + METADATA_TTL, meta)
    return meta


def _client(cfg: SsoConfig, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=cfg.client_id,
        client_secret=cfg.client_secret,
        scope=" ".join(cfg.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if cfg.client_secret else "none",
        timeout=HTTP_TIMEOUT,
    )


@dataclass
class LoginStart:
    url: str
    state: str
    nonce: str
    code_verifier: str


def begin(cfg: SsoConfig, redirect_uri: str) -> LoginStart:
    """The provider's authorization URL, and the state, nonce and PKCE verifier the caller keeps
    (in the browser's signed cookie) until the callback."""
    meta = discover(cfg.issuer)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    with _client(cfg, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
        )
    return LoginStart(url=url, state=state, nonce=nonce, code_verifier=verifier)


def _claim_error(exc: InvalidClaimError | MissingClaimError) -> SsoRefused:
    claim = getattr(exc, "claim", None) or str(exc)
    if "aud" in claim or "azp" in claim:
        return SsoRefused("wrong_audience", "the ID token was issued to another client", claim=claim)
    if "iss" in claim:
        return SsoRefused("unknown_issuer", "the ID token comes from another issuer", claim=claim)
    if "nonce" in claim:
        return SsoRefused("wrong_nonce", "the ID token's nonce is not the one this sign-in sent", claim=claim)
    return SsoRefused("invalid_token", f"the ID token's {claim} claim is missing or invalid", claim=claim)


def validate_id_token(
    cfg: SsoConfig, id_token: str, *, nonce: str, access_token: str | None = None
) -> dict[str, Any]:
    """The claims of ``id_token`` once its signature (provider's JWKS), issuer, audience, expiry and
    nonce hold (Authlib's ``CodeIDToken`` rules); otherwise :class:`SsoRefused`."""
    meta = discover(cfg.issuer)
    registry = JWSRegistry(algorithms=meta.get("id_token_signing_alg_values_supported") or ["RS256"])
    try:
        try:
            token = jwt.decode(id_token, KeySet.import_key_set(meta["jwks"]), registry=registry)
        except InvalidKeyIdError:  # the provider may have rotated its keys: fetch them once more
            meta = discover(cfg.issuer, fresh=True)
            token = jwt.decode(id_token, KeySet.import_key_set(meta["jwks"]), registry=registry)
        params: dict[str, Any] = {"nonce": nonce, "client_id": cfg.client_id}
        if access_token:
            params["access_token"] = access_token
        options = {
            "iss": {"essential": True, "values": [cfg.issuer, cfg.issuer + "/"]},
            "aud": {"essential": True, "values": [cfg.client_id]},
        }
        claims = CodeIDToken(token.claims, token.header, options, params)
        claims.validate(leeway=LEEWAY)
    except ExpiredTokenError as exc:
        raise SsoRefused("expired", "the ID token has expired") from exc
    except (BadSignatureError, InvalidKeyIdError) as exc:
        raise SsoRefused(
            "bad_signature", "the ID token's signature does not verify with the provider's keys"
        ) from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        raise _claim_error(exc) from exc
    except (JoseError, ValueError) as exc:
        raise SsoRefused("invalid_token", f"the ID token cannot be read: {exc}") from exc
    return dict(claims)


def complete(
    cfg: SsoConfig, *, redirect_uri: str, code: str, code_verifier: str, nonce: str
) -> dict[str, Any]:
    """Exchange the authorization code (with the PKCE verifier) and validate the ID token."""
    meta = discover(cfg.issuer)
    try:
        with _client(cfg, redirect_uri) as client:
            token = client.fetch_token(meta["token_endpoint"], code=code, code_verifier=code_verifier)
    except OAuth2Error as exc:
        raise SsoRefused(
            "provider_error", f"the provider refused the code: {exc.error}", error=exc.error
        ) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise SsoRefused("provider_unreachable", f"the token endpoint failed: {exc}") from exc
    if not token.get("id_token"):
        raise SsoRefused(
            "invalid_token", "the provider answered without an ID token (is 'openid' in the scopes?)"
        )
    return validate_id_token(cfg, token["id_token"], nonce=nonce, access_token=token.get("access_token"))


# --- the user ---------------------------------------------------------------------------------------
def groups_of(cfg: SsoConfig, claims: dict[str, Any]) -> list[str]:
    raw = claims.get(cfg.groups_claim)
    if isinstance(raw, str):
        raw = [raw]
    return [str(g) for g in raw] if isinstance(raw, list) else []


def map_role(role_map: dict[str, str], groups: list[str]) -> str | None:
    """The role of a user in ``groups``: the most privileged one any group maps to (None: none maps)."""
    mapped = {role_map[g] for g in groups if g in role_map}
    return next((r for r in ROLE_PRECEDENCE if r in mapped), None)


def username_of(cfg: SsoConfig, claims: dict[str, Any]) -> str:
    for key in (cfg.username_claim, "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:100]
    return str(claims["sub"])[:100]


def sign_in(
    conn: sa.Connection, cfg: SsoConfig, claims: dict[str, Any], *, client: str = ""
) -> dict[str, Any]:
    """The console user for validated ``claims``: linked by (issuer, sub), else matched by username
    (only a user without a local password) or created (when ``jit``); its role set from the groups.
    Audited as ``console.login`` with the method, groups and role."""
    sub = str(claims["sub"])
    groups = groups_of(cfg, claims)
    username = username_of(cfg, claims)
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    role = map_role(cfg.role_map, groups)
    if role is None:
        raise SsoRefused(
            "no_mapped_group", "none of the user's groups maps to a role", username=username, groups=groups
        )
    tid, now = cfg.tenant_id, utcnow()
    link = (
        conn.execute(
            sa.select(sso_identities).where(
                sso_identities.c.tenant_id == tid,
                sso_identities.c.issuer == cfg.issuer,
                sso_identities.c.subject == sub,
            )
        )
        .mappings()
        .first()
    )
    user: dict[str, Any] | None
    if link:
        row = (
            conn.execute(sa.select(users).where(users.c.id == link["user_id"], users.c.tenant_id == tid))
            .mappings()
            .first()
        )
        user = dict(row) if row else None
        if user is None:  # the linked user row is gone: link afresh, like a first sign-in
            conn.execute(
                sso_identities.delete().where(
                    sso_identities.c.tenant_id == tid,
                    sso_identities.c.issuer == cfg.issuer,
                    sso_identities.c.subject == sub,
                )
            )
            link = None
    if not link:
        user = accounts.get_user(conn=conn, tenant_id=tid, username=username)
        if user and user.get("password_hash"):
            raise SsoRefused(
                "local_account",
                f"a local account {username!r} exists; it is not taken over by SSO",
                username=username,
            )
    actor = f"sso:{username}"
    if user is None:
        if not cfg.jit:
            raise SsoRefused(
                "no_account",
                f"no console user {username!r} and just-in-time creation is off",
                username=username,
            )
        user = accounts.create_user(
            conn=conn, tenant_id=tid, username=username, role=role, display_name=name or username, actor=actor
        )
    if user.get("disabled_at"):
        raise SsoRefused("user_disabled", f"the console user {username!r} is disabled", username=username)
    changes: dict[str, Any] = {}
    if user["role"] != role:
        changes["role"] = role
    if name and user.get("display_name") != name:
        changes["display_name"] = name
    if changes:
        conn.execute(users.update().where(users.c.id == user["id"]).values(**changes))
        accounts.audit(
            conn=conn,
            tenant_id=tid,
            actor=actor,
            action="user.sso_update",
            object_type="user",
            object_id=user["id"],
            detail={"from": {k: user.get(k) for k in changes}, "to": changes, "groups": groups},
        )
        user = {**user, **changes}
    if link:
        conn.execute(
            sso_identities.update()
            .where(
                sso_identities.c.tenant_id == tid,
                sso_identities.c.issuer == cfg.issuer,
                sso_identities.c.subject == sub,
            )
            .values(groups=groups, last_login_at=now)
        )
    else:
        conn.execute(
            sso_identities.insert().values(
                tenant_id=tid,
                issuer=cfg.issuer,
                subject=sub,
                user_id=user["id"],
                groups=groups,
                created_at=now,
                last_login_at=now,
            )
        )
    accounts.audit(
        conn=conn,
        tenant_id=tid,
        actor=actor,
        action="console.login",
        object_type="user",
        object_id=user["id"],
        detail={"method": "sso", "issuer": cfg.issuer, "groups": groups, "role": role, "client": client},
    )
    return user


def audit_refusal(
    conn: sa.Connection, tenant_id: str, refused: SsoRefused, *, actor: str = "anonymous", client: str = ""
) -> None:
    """The audit row of a refused SSO sign-in: the reason code and what is known of who tried."""
    who = refused.detail.get("username")
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=f"sso:{who}" if who else actor,
        action="console.sso_refused",
        object_type="sso_config",
        object_id=tenant_id,
        detail={"reason": refused.reason, "message": str(refused), "client": client, **refused.detail},
    )
