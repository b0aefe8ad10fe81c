"""Keyword-only service functions; the caller owns the transaction (pass a Connection)."""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medscrm.accounts.purposes import check_purpose, purpose_of
from medscrm.accounts.roles import check_role
from medscrm.common import MedscrmError, NotFound, new_id, new_secret, sha256_hex, utcnow
from medscrm.db.schema import api_tokens, audit_log, sources, tenants, users


# --- tenants ---------------------------------------------------------------------------------
def get_tenant(*, conn: sa.Connection, slug: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(tenants).where(tenants.c.slug == slug)).mappings().first()
    return dict(row) if row else None


def list_tenants(*, conn: sa.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(tenants).order_by(tenants.c.slug)).mappings()]


class UnknownTenant(NotFound):
    """A tenant slug that names no tenant: the message names it and lists the known ones."""

    def __init__(self, slug: str, known: list[str]):
        self.slug, self.known = slug, known
        listed = ", ".join(known) if known else "none yet"
        super().__init__(
            f"tenant: no tenant {slug!r} (known tenants: {listed}); create it with "
            f"`medscrm tenants create {slug}`"
        )


def require_tenant(*, conn: sa.Connection, slug: str) -> dict[str, Any]:
    """The tenant ``slug``; an unknown slug is an error (tenants are only created explicitly, so that
    a typo never creates one)."""
    row = get_tenant(conn=conn, slug=slug)
    if row is None:
        raise UnknownTenant(slug, [t["slug"] for t in list_tenants(conn=conn)])
    return row


def create_tenant(
    *, conn: sa.Connection, slug: str, name: str | None = None, actor: str = "system"
) -> dict[str, Any]:
    """Create a tenant; an existing slug is an error."""
    if get_tenant(conn=conn, slug=slug):
        raise MedscrmError(f"tenant: {slug!r} already exists")
    return ensure_tenant(conn=conn, slug=slug, name=name, actor=actor)


def ensure_tenant(
    *, conn: sa.Connection, slug: str, name: str | None = None, actor: str = "system"
) -> dict[str, Any]:
    """The tenant ``slug``, created when missing (set-up code: the demo, tests, benchmarks)."""
    row = get_tenant(conn=conn, slug=slug)
    if row:
        return row
    if not slug.replace("-", "").replace("_", "").isalnum() or len(slug) > 64:
        raise MedscrmError(f"tenant: {slug!r} is not a valid slug (letters, digits, - and _; ≤ 64)")
    row = {"id": new_id("tn"), "slug": slug, "name": name or slug, "created_at": utcnow()}
    conn.execute(tenants.insert().values(**row))
    audit(
        conn=conn,
        tenant_id=row["id"],
        actor=actor,
        action="tenant.create",
        object_type="tenant",
        object_id=row["id"],
        detail={"slug": slug},
    )
    return row


# --- sources ---------------------------------------------------------------------------------
@dataclass
class CreatedSource:
    id: str
    name: str
    write_key: str


def create_source(
    *,
    conn: sa.Connection,
    tenant_id: str,
    name: str,
    kind: str = "file",
    priority: int = 100,
    actor: str = "cli",
) -> CreatedSource:
    name = name.strip()
    if not name or len(name) > 100:
        raise MedscrmError("name: a source needs a name of 1–100 characters")
    if get_source(conn=conn, tenant_id=tenant_id, name=name):
        raise MedscrmError(f"name: source {name!r} already exists in this tenant")
    key = new_secret("wk")
    sid = new_id("src")
    conn.execute(
        sources.insert().values(
            id=sid,
            tenant_id=tenant_id,
            name=name,
            kind=kind,
            priority=priority,
            write_key_hash=sha256_hex(key),
            write_key_hint=key[:7],
            created_at=utcnow(),
        )
    )
    audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="source.create",
        object_type="source",
        object_id=sid,
        detail={"name": name, "kind": kind},
    )
    return CreatedSource(id=sid, name=name, write_key=key)


def get_source(*, conn: sa.Connection, tenant_id: str, name: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(sources).where(sources.c.tenant_id == tenant_id, sources.c.name == name))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def ensure_source(*, conn: sa.Connection, tenant_id: str, name: str, kind: str = "file") -> dict[str, Any]:
    row = get_source(conn=conn, tenant_id=tenant_id, name=name)
    if row:
        return row
    create_source(conn=conn, tenant_id=tenant_id, name=name, kind=kind)
    return get_source(conn=conn, tenant_id=tenant_id, name=name)  # type: ignore[return-value]


def configure_source(
    *, conn: sa.Connection, tenant_id: str, name: str, changes: dict[str, Any], actor: str = "cli"
) -> dict[str, Any]:
    """Merge settings (credentials for callbacks, rate limits) into a source's sealed config."""
    # lazy: keeps `medscrm --help` light
    from medscrm.accounts.secrets import redact, seal, unseal

    src = get_source(conn=conn, tenant_id=tenant_id, name=name)
    if not src:
        raise NotFound(f"name: no source {name!r} in this tenant")
    cfg = unseal(src["config"])
    cfg.update({k: v for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        cfg.pop(k, None)
    conn.execute(sources.update().where(sources.c.id == src["id"]).values(config=seal(cfg)))
    audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="source.configure",
        object_type="source",
        object_id=src["id"],
        detail={"settings": redact(changes)},
    )
    return redact(cfg)


def source_config(source: dict[str, Any]) -> dict[str, Any]:
    # lazy: keeps `medscrm --help` light
    from medscrm.accounts.secrets import unseal

    return unseal(source.get("config"))


def get_source_by_id(*, conn: sa.Connection, source_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(sources).where(sources.c.id == source_id)).mappings().first()
    return dict(row) if row else None


def list_sources(*, conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    q = sa.select(sources).where(sources.c.tenant_id == tenant_id).order_by(sources.c.created_at)
    return [dict(r) for r in conn.execute(q).mappings()]


def source_by_write_key(*, conn: sa.Connection, write_key: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.select(sources).where(
                sources.c.write_key_hash == sha256_hex(write_key), sources.c.disabled_at.is_(None)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


# --- users and tokens ------------------------------------------------------------------------
#: Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: t=3, 64 MiB, p=4);
#: the parameters are stored in each hash, so raising them later rehashes on the next sign-in
_hasher = PasswordHasher()
#: scrypt hashes from before Argon2id ("scrypt$salt$digest", N=2^14, r=8, p=1 not stored):
#: still verified, and replaced by an Argon2id hash at the next successful sign-in
_SCRYPT = "scrypt$"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _legacy_scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    if stored.startswith(_SCRYPT):
        try:
            _, salt_b64, digest_b64 = stored.split("$")
            salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        except ValueError:
            return False
        return hmac.compare_digest(_legacy_scrypt(password, salt), digest)
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored: str | None) -> bool:
    """Whether a verified hash should be replaced (a legacy scrypt hash, or weaker Argon2 parameters)."""
    if not stored:
        return False
    if stored.startswith(_SCRYPT):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def burn_password_check(password: str) -> None:
    """Spend the time of one verification (for an unknown user: no timing difference to a known one)."""
    verify_password(password, _DUMMY_HASH)


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def set_password_hash(*, conn: sa.Connection, user_id: str, password: str, actor: str, reason: str) -> None:
    """Store a new hash of ``password`` for the user (e.g. an upgrade after a successful sign-in)."""
    row = conn.execute(sa.select(users.c.tenant_id).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"user {user_id!r} not found")
    conn.execute(users.update().where(users.c.id == user_id).values(password_hash=hash_password(password)))
    audit(
        conn=conn,
        tenant_id=row[0],
        actor=actor,
        action="user.password_rehash",
        object_type="user",
        object_id=user_id,
        detail={"reason": reason, "scheme": "argon2id"},
    )


def create_user(
    *,
    conn: sa.Connection,
    tenant_id: str,
    username: str,
    role: str,
    password: str | None = None,
    display_name: str | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    check_role(role)
    if conn.execute(
        sa.select(users.c.id).where(users.c.tenant_id == tenant_id, users.c.username == username)
    ).first():
        raise MedscrmError(f"username: user {username!r} already exists in this tenant")
    row = {
        "id": new_id("usr"),
        "tenant_id": tenant_id,
        "username": username,
        "role": role,
        "display_name": display_name or username,
        "password_hash": hash_password(password) if password else None,
        "created_at": utcnow(),
    }
    conn.execute(users.insert().values(**row))
    audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=row["id"],
        detail={"username": username, "role": role},
    )
    return row


def get_user(*, conn: sa.Connection, tenant_id: str, username: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(users).where(users.c.tenant_id == tenant_id, users.c.username == username))
        .mappings()
        .first()
    )
    return dict(row) if row else None


@dataclass
class CreatedToken:
    id: str
    role: str
    token: str


def create_token(
    *,
    conn: sa.Connection,
    tenant_id: str,
    role: str,
    user_id: str | None = None,
    name: str | None = None,
    actor: str = "cli",
) -> CreatedToken:
    check_role(role)
    token = new_secret("msk", 32)
    tid = new_id("tok")
    conn.execute(
        api_tokens.insert().values(
            id=tid,
            tenant_id=tenant_id,
            user_id=user_id,
            role=role,
            name=name,
            token_hash=sha256_hex(token),
            token_hint=token[:8],
            created_at=utcnow(),
        )
    )
    audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="token.create",
        object_type="api_token",
        object_id=tid,
        detail={"role": role, "name": name},
    )
    return CreatedToken(id=tid, role=role, token=token)


def revoke_token(*, conn: sa.Connection, tenant_id: str, token_id: str, actor: str = "cli") -> None:
    res = conn.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.tenant_id == tenant_id)
        .values(revoked_at=utcnow())
    )
    if not res.rowcount:
        raise NotFound(f"token {token_id!r} not found in this tenant")
    forget_cached_tokens()
    audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="token.revoke",
        object_type="api_token",
        object_id=token_id,
    )


def list_tokens(*, conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    q = (
        sa.select(
            api_tokens.c.id,
            api_tokens.c.role,
            api_tokens.c.name,
            api_tokens.c.token_hint,
            api_tokens.c.created_at,
            api_tokens.c.revoked_at,
        )
        .where(api_tokens.c.tenant_id == tenant_id)
        .order_by(api_tokens.c.created_at)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def token_principal(*, conn: sa.Connection, token: str) -> dict[str, Any] | None:
    """The tenant and role behind a bearer token, or None if unknown or revoked; with the username and
    display name of the user the token acts as (``tokens create --user``; None when it names no
    enabled user of its tenant): they name a rep in the sources (``access.rep_keys``)."""
    u = users
    row = (
        conn.execute(
            sa.select(
                api_tokens.c.id,
                api_tokens.c.tenant_id,
                api_tokens.c.role,
                api_tokens.c.user_id,
                tenants.c.slug.label("tenant_slug"),
                u.c.username,
                u.c.display_name.label("user_display_name"),
            )
            .join(tenants, tenants.c.id == api_tokens.c.tenant_id)
            .outerjoin(
                u,
                sa.and_(
                    u.c.id == api_tokens.c.user_id,
                    u.c.tenant_id == api_tokens.c.tenant_id,
                    u.c.disabled_at.is_(None),
                ),
            )
            .where(api_tokens.c.token_hash == sha256_hex(token), api_tokens.c.revoked_at.is_(None))
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


#: seconds a server trusts a looked-up token before asking the database again; a revocation from
#: another process (``medscrm tokens revoke``) takes effect within this time, in this one at once
TOKEN_CACHE_SECONDS = 5.0
_token_cache: dict[tuple[int, str], tuple[float, dict[str, Any] | None]] = {}
_token_cache_lock = threading.Lock()


NOT_CACHED: Any = object()


def token_from_cache(engine: sa.Engine, token: str) -> dict[str, Any] | None:
    """The cached principal of ``token`` (None: unknown or revoked), or :data:`NOT_CACHED`."""
    hit = _token_cache.get((id(engine), sha256_hex(token)))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return NOT_CACHED


def cached_token_principal(engine: sa.Engine, token: str) -> dict[str, Any] | None:
    """:func:`token_principal` with a short per-process cache (the API checks a token on every request)."""
    hit = token_from_cache(engine, token)
    if hit is not NOT_CACHED:
        return hit
    key, now = (id(engine), sha256_hex(token)), time.monotonic()
    with engine.connect() as conn:
        p = token_principal(conn=conn, token=token)
    with _token_cache_lock:
        if len(_token_cache) > 10_000:  # bounded: unknown tokens are cached too
            _token_cache.clear()
        _token_cache[key] = (now + TOKEN_CACHE_SECONDS, p)
    return p


def forget_cached_tokens() -> None:
    with _token_cache_lock:
        _token_cache.clear()


# --- audit -----------------------------------------------------------------------------------
#: the audit rows built during the current request (set by the presentation layer's audit guard)
_collected: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "medscrm_audit_rows", default=None
)


@contextlib.contextmanager
def collect_audit_rows():
    """Collect every audit row built in this context (and threads it hands work to) into a list."""
    rows: list[dict[str, Any]] = []
    token = _collected.set(rows)
    try:
        yield rows
    finally:
        _collected.reset(token)


def audit_row(
    *,
    tenant_id: str,
    actor: str,
    action: str,
    object_type: str | None = None,
    object_id: str | None = None,
    detail: dict[str, Any] | None = None,
    purpose: str | None = None,
) -> dict[str, Any]:
    """One ``audit_log`` row (``audit`` writes it in the caller's transaction; the profile API hands
    it to the group-committing :mod:`medscrm.accounts.audit_writer`). ``purpose``: why the
    processing happened (:mod:`medscrm.accounts.purposes`; by default from the action)."""
    row = {
        "id": new_id("aud"),
        "tenant_id": tenant_id,
        "occurred_at": utcnow(),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "purpose": check_purpose(purpose) if purpose else purpose_of(action),
        "detail": detail or {},
    }
    collected = _collected.get()
    if collected is not None:
        collected.append(row)
    return row


def audit(*, conn: sa.Connection, **row: Any) -> None:
    """Write an audit row (keywords of :func:`audit_row`) in the caller's transaction."""
    conn.execute(audit_log.insert().values(**audit_row(**row)))


def list_audit(*, conn: sa.Connection, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
    q = (
        sa.select(audit_log)
        .where(audit_log.c.tenant_id == tenant_id)
        .order_by(audit_log.c.occurred_at.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]
