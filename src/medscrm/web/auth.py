"""Console sessions: a signed cookie (itsdangerous), a CSRF token per session, role checks.

The session cookie holds only ids and the CSRF token, signed with ``MEDSCRM_SECRET_KEY``; the user
row is re-read on every request, so a disabled user or a changed role takes effect at once.
Every POST must carry the session's CSRF token: the form field ``csrf_token`` or, for HTMX
requests, the ``X-CSRF-Token`` header (set once on ``<body hx-headers=…>``).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from medscrm.accounts.audit_writer import audit_committed
from medscrm.accounts.roles import can
from medscrm.config import get_settings
from medscrm.db.schema import tenants, users
from medscrm.web.i18n import LANG_COOKIE, pick_lang, translator

SESSION_COOKIE = "medscrm_session"
SESSION_MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    pass


class CsrfFailed(Exception):
    pass


def _serializer() -> URLSafeTimedSerializer:
    # signs with the current key (the last one); sessions signed with an old key stay valid until
    # the old key is dropped from MEDSCRM_OLD_SECRET_KEYS
    s = get_settings()
    return URLSafeTimedSerializer([*reversed(s.old_keys), s.secret_key], salt="medscrm.console.session")


def read_session(request: Request) -> dict[str, Any]:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer().loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def dump_session(data: dict[str, Any]) -> str:
    return _serializer().dumps(data)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


#: a page's audit row names at most this many of the persons it showed (and how many there were)
AUDITED_IDS = 200


@dataclass
class Ctx:
    """What every console page knows about the request."""

    request: Request
    session: dict[str, Any]
    lang: str
    user: dict[str, Any] | None = None
    tenant: dict[str, Any] | None = None
    set_session: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def t(self):
        return translator(self.lang)

    @property
    def csrf(self) -> str:
        return self.session["csrf"]

    @property
    def role(self) -> str:
        return self.user["role"] if self.user else ""

    @property
    def tenant_id(self) -> str:
        return self.user["tenant_id"]  # type: ignore[index]

    @property
    def actor(self) -> str:
        return f"user:{self.user['username']}" if self.user else "anonymous"

    def can(self, permission: str) -> bool:
        return bool(self.user) and can(self.role, permission)

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(permission)

    def audit_read(
        self,
        action: str,
        *,
        object_type: str,
        object_id: str | None = None,
        persons: list[str] | None = None,
        **detail: Any,
    ) -> None:
        """Record that this page shows personal data, before it is answered (group commit, as the
        API's reads: :mod:`medscrm.accounts.audit_writer`). ``persons``: the ids of the persons shown
        (the first :data:`AUDITED_IDS`, and their count)."""
        if persons is not None:
            detail = {**detail, "count": len(persons), "person_ids": persons[:AUDITED_IDS]}
        audit_committed(
            self.request.app.state.engine,
            tenant_id=self.tenant_id,
            actor=self.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail={"role": self.role, "via": "console", **detail},
        )

    @property
    def is_rep(self) -> bool:
        return self.role == "rep"


def context(request: Request, engine: sa.Engine, *, login: bool = True) -> Ctx:
    session = read_session(request)
    changed = False
    if "csrf" not in session:
        session = {"csrf": new_csrf()}
        changed = True
    ctx = Ctx(request=request, session=session, lang=pick_lang(request.cookies.get(LANG_COOKIE)))
    ctx.set_session = changed
    uid = session.get("uid")
    if uid:
        with engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(users, tenants.c.slug.label("tenant_slug"), tenants.c.name.label("tenant_name"))
                    .join(tenants, tenants.c.id == users.c.tenant_id)
                    .where(users.c.id == uid, users.c.disabled_at.is_(None))
                )
                .mappings()
                .first()
            )
        if row:
            ctx.user = dict(row)
    if login and not ctx.user:
        raise LoginRequired()
    return ctx


async def check_csrf(request: Request, ctx: Ctx) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, ctx.csrf):
        raise CsrfFailed()
