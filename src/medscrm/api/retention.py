"""Retention: ``/api/v1/retention`` (permission ``privacy.manage``: the DPO — compliance — and admin).

Policies per data category (keep days, delete or anonymise, event-name patterns), each change
audited with the old and the new value; a policy below a legal floor (the audit log's
``MEDSCRM_RETENTION_AUDIT_FLOOR_DAYS``) answers 422 naming the category and the floor. A run
(``dry_run`` true: the report only, nothing changes) reports per category the rows deleted or
anonymised, the oldest and newest affected, and the rows of persons under legal hold that were kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.privacy import retention

router = APIRouter(prefix="/api/v1/retention", tags=["privacy"], responses=responses(*AUTH))
Dpo = Annotated[Principal, require("privacy.manage")]
CategoryKey = Literal[
    "events", "health", "source_records", "quarantine", "webhook_deliveries", "sends", "audit"
]


class Policy(BaseModel):
    category: str
    keep_days: int = Field(description="Rows older than this many days are deleted or anonymised")
    action: str = Field(description="delete, or anonymise (the row stays without personal fields)")
    enabled: bool
    patterns: list[str] = Field(description="Event-name globs (events: empty = every event; health)")
    source: str = Field(description="tenant (the tenant's own) or default (the shipped default)")
    floor_days: int | None = Field(None, description="The legal minimum of keep_days, where there is one")
    actions: list[str] = Field(description="The actions this category allows")
    uses_patterns: bool
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


class PolicyList(BaseModel):
    policies: list[Policy]


class PolicyIn(BaseModel):
    keep_days: int | None = Field(None, ge=1, le=36500, description="Days to keep (unchanged when absent)")
    action: Literal["delete", "anonymise"] | None = None
    enabled: bool | None = None
    patterns: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=100, description="Event-name globs (* any run, ? one character)"
    )


class RunIn(BaseModel):
    dry_run: bool = Field(True, description="Only report what would be deleted or anonymised")
    confirm: bool = Field(False, description="Must be true for a real run: deleting cannot be undone")


class Run(BaseModel):
    id: str
    dry_run: bool
    status: str = Field(description="running, done, failed")
    actor: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    result: dict[str, Any] | None = Field(
        None,
        description="Per category: action, keep_days, cutoff, rows, done, held, oldest, newest "
        "(or skipped/refused with the reason)",
    )
    error: str | None = None


class RunList(BaseModel):
    runs: list[Run]


@router.get("/policies", summary="The retention policy of every data category", response_model=PolicyList)
def list_retention_policies(engine: EngineDep, p: Dpo) -> Any:
    with engine.connect() as conn:
        return {"policies": list(retention.policies(conn, tenant_id=p.tenant_id).values())}


@router.put(
    "/policies/{category}",
    summary="Change a category's retention policy (audited; refused below a legal floor)",
    response_model=Policy,
)
def set_retention_policy(
    category: Annotated[CategoryKey, Path(description="The data category")],
    body: PolicyIn,
    engine: EngineDep,
    p: Dpo,
) -> Any:
    with engine.begin() as conn:
        return retention.set_policy(
            conn,
            tenant_id=p.tenant_id,
            category=category,
            actor=p.actor,
            keep_days=body.keep_days,
            action=body.action,
            enabled=body.enabled,
            patterns=body.patterns,
        )


@router.post(
    "/runs",
    summary="Run retention now (dry_run: the report only); a real run needs confirm=true",
    response_model=Run,
)
def run_retention(body: RunIn, engine: EngineDep, p: Dpo) -> Any:
    if not body.dry_run and not body.confirm:
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid_request",
                "errors": [{"field": "confirm", "reason": "a real run deletes data: send confirm=true"}],
                "field": "confirm",
            },
        )
    return retention.run(engine, tenant_id=p.tenant_id, actor=p.actor, dry_run=body.dry_run)


@router.get("/runs", summary="The latest retention runs (dry runs included)", response_model=RunList)
def list_retention_runs(engine: EngineDep, p: Dpo) -> Any:
    with engine.connect() as conn:
        return {"runs": retention.list_runs(conn, tenant_id=p.tenant_id, limit=50)}
