"""Console single sign-on settings: ``/api/v1/sso`` (permission ``accounts.manage``: admin).

Read, set and turn off the tenant's OpenID Connect provider for the console (docs/sso.md). The client
secret is write-only: answers say whether one is set, never its value. Every change is audited with the
token as the actor. Errors: ``{"error", "errors": [{"field", "reason"}]}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from medscrm.accounts import sso
from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.common import NotFound

router = APIRouter(prefix="/api/v1/sso", tags=["sso"], responses=responses(*AUTH))
Admin = Annotated[Principal, require("accounts.manage")]


class SsoIn(BaseModel):
    """Settings to set; an omitted (null) field keeps its value. The first call needs issuer,
    client_id and role_map."""

    issuer: str | None = Field(
        None, max_length=300, description="Issuer URL; discovery reads its /.well-known"
    )
    client_id: str | None = Field(None, max_length=255)
    client_secret: str | None = Field(
        None, max_length=1000, description="Sealed at rest and never returned; an empty string removes it"
    )
    display_name: str | None = Field(None, max_length=100, description="The name on the login button")
    scopes: list[str] | None = Field(None, max_length=20, description="Must include openid")
    groups_claim: str | None = Field(None, max_length=100)
    username_claim: str | None = Field(None, max_length=100)
    role_map: dict[str, str] | None = Field(
        None, description="IdP group → role (admin, marketer, analyst, rep, compliance); most privileged wins"
    )
    jit: bool | None = Field(None, description="Create users at their first sign-in")
    local_passwords: bool | None = Field(
        None, description="Whether local passwords still sign in (admins with one always may: break-glass)"
    )


class SsoOut(BaseModel):
    enabled: bool
    issuer: str
    client_id: str
    client_secret_set: bool
    display_name: str
    scopes: list[str]
    groups_claim: str
    username_claim: str
    role_map: dict[str, str]
    jit: bool
    local_passwords: bool
    updated_at: dt.datetime
    updated_by: str


@router.get(
    "", summary="The tenant's single sign-on settings", response_model=SsoOut, responses=responses(404)
)
def get_sso_settings(engine: EngineDep, p: Admin) -> Any:
    with engine.connect() as conn:
        cfg = sso.show(conn, p.tenant_id)
    if cfg is None:
        raise NotFound("sso: single sign-on is not configured for this tenant")
    return cfg


@router.put("", summary="Set single sign-on and turn it on", response_model=SsoOut, responses=responses(422))
def configure_sso(body: SsoIn, engine: EngineDep, p: Admin) -> Any:
    with engine.begin() as conn:
        return sso.configure(conn, p.tenant_id, actor=p.actor, **body.model_dump())


@router.delete(
    "",
    summary="Turn single sign-on off (settings kept)",
    status_code=204,
    response_class=Response,
    responses=responses(422),
)
def disable_sso(engine: EngineDep, p: Admin) -> Response:
    with engine.begin() as conn:
        sso.disable(conn, p.tenant_id, actor=p.actor)
    return Response(status_code=204)
