"""Dependencies: the engine, the bearer-token principal, role checks, which persons a principal may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from medscrm import access
from medscrm.accounts import service as accounts
from medscrm.accounts.audit_writer import audit_committed
from medscrm.accounts.roles import can

#: the largest ``offset`` a listing accepts: beyond it no listing has rows, and the databases' 64-bit
#: OFFSET would overflow (a 500) long before a Python int does
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip (paging)")]

bearer = HTTPBearer(auto_error=False, description="An API token from `medscrm tokens create --role ROLE`.")


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, one
# hop per dependency per request; these do no blocking work except a token cache miss (sent to a thread).


async def get_engine_dep(request: Request) -> sa.Engine:
    return request.app.state.engine


EngineDep = Annotated[sa.Engine, Depends(get_engine_dep)]

#: Roles that see only the persons they own (the rep-filing rules, PIPL), as in the web console.
SCOPED_ROLES = access.SCOPED_ROLES


#: a read's audit row names at most this many of the persons it showed (and how many there were)
AUDITED_IDS = 200


@dataclass(frozen=True)
class Principal:
    token_id: str
    tenant_id: str
    tenant_slug: str
    role: str
    user_id: str | None
    #: the user the token acts as (None: no user, or a disabled one); names a rep in the sources
    username: str | None = None
    display_name: str | None = None

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"

    def can(self, permission: str) -> bool:
        return can(self.role, permission)

    def audit_write(
        self,
        conn: sa.Connection,
        action: str,
        *,
        object_type: str,
        object_id: str | None = None,
        **detail: object,
    ) -> None:
        """Record a change in the caller's transaction (it commits with the change or not at all)."""
        accounts.audit(
            conn=conn,
            tenant_id=self.tenant_id,
            actor=self.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail,
        )

    def audit_read(
        self,
        engine: sa.Engine,
        action: str,
        *,
        object_type: str,
        object_id: str | None = None,
        persons: list[str] | None = None,
        **detail: object,
    ) -> None:
        """Record a read of personal data before it is answered (group commit: see
        :mod:`medscrm.accounts.audit_writer`; a read that cannot be audited is not answered).
        ``persons``: the ids of the persons shown (the first :data:`AUDITED_IDS`, and their count)."""
        if persons is not None:
            detail = {**detail, "count": len(persons), "person_ids": persons[:AUDITED_IDS]}
        audit_committed(
            engine,
            tenant_id=self.tenant_id,
            actor=self.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail={"role": self.role, **detail},
        )

    def person_scope(self) -> sa.Select | None:
        """A SELECT of the person ids this principal may see (use with ``.in_()``); None: the whole
        tenant (:func:`medscrm.access.person_scope`, matched by the username / display name of the
        user the token acts as)."""
        return access.person_scope(
            self.tenant_id, self.role, {"username": self.username, "display_name": self.display_name}
        )


async def current_principal(
    engine: EngineDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            detail={"field": "Authorization", "reason": "a Bearer token is required"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    p = accounts.token_from_cache(engine, creds.credentials)
    if p is accounts.NOT_CACHED:
        p = await anyio.to_thread.run_sync(accounts.cached_token_principal, engine, creds.credentials)
    if not p:
        raise HTTPException(
            401,
            detail={"field": "Authorization", "reason": "unknown or revoked token"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(
        token_id=p["id"],
        tenant_id=p["tenant_id"],
        tenant_slug=p["tenant_slug"],
        role=p["role"],
        user_id=p["user_id"],
        username=p.get("username"),
        display_name=p.get("user_display_name"),
    )


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: str):
    async def check(p: CurrentPrincipal) -> Principal:
        if not p.can(permission):
            raise HTTPException(
                403, detail={"field": "role", "reason": f"role {p.role!r} may not {permission}"}
            )
        return p

    check.permission = permission  # type: ignore[attr-defined]  # read by the role x route test
    return Depends(check)


def visible_person_id(conn: sa.Connection, p: Principal, person_id: str) -> str:
    """The id of the person ``person_id`` names (a merged id: its survivor), if ``p`` may see them;
    NotFound otherwise, worded as for a missing person (:func:`medscrm.access.visible_person_id`)."""
    return access.visible_person_id(conn, tenant_id=p.tenant_id, scope=p.person_scope(), person_id=person_id)


def check_person_visible(conn: sa.Connection, p: Principal, person_id: str) -> None:
    """:func:`visible_person_id` for the roles that see only their own persons; no query for the others."""
    if p.role in SCOPED_ROLES:
        visible_person_id(conn, p, person_id)
