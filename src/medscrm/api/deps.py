"""Dependencies: the engine, the bearer-token principal, role checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from medscrm.accounts import service as accounts
from medscrm.accounts.roles import can

bearer = HTTPBearer(auto_error=False, description="An API token from `medscrm tokens create --role ROLE`.")


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, one
# hop per dependency per request; these do no blocking work except a token cache miss (sent to a thread).


async def get_engine_dep(request: Request) -> sa.Engine:
    return request.app.state.engine


EngineDep = Annotated[sa.Engine, Depends(get_engine_dep)]


@dataclass(frozen=True)
class Principal:
    token_id: str
    tenant_id: str
    tenant_slug: str
    role: str
    user_id: str | None

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"

    def can(self, permission: str) -> bool:
        return can(self.role, permission)


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
    )


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: str):
    async def check(p: CurrentPrincipal) -> Principal:
        if not p.can(permission):
            raise HTTPException(
                403, detail={"field": "role", "reason": f"role {p.role!r} may not {permission}"}
            )
        return p

    return Depends(check)
