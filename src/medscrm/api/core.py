"""Health, identity of the caller, sources, imports, quarantine, audit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from medscrm import __version__
from medscrm.accounts import service as accounts
from medscrm.api.deps import CurrentPrincipal, EngineDep, Offset, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.common import InvalidInput, MedscrmError, NotFound
from medscrm.db.schema import imports
from medscrm.ingest import quarantine as qs

public = APIRouter(prefix="/api/v1", tags=["health"])
router = APIRouter(prefix="/api/v1", responses=responses(*AUTH))


@public.get(
    "/health",
    summary="Liveness, database and event storage check (no token needed)",
    responses={503: {"description": "degraded: the database is unreachable or event storage is stalled"}},
)
def health(request: Request, engine: EngineDep) -> JSONResponse:
    """``ok`` (200) or ``degraded`` (503). Degraded when the database does not answer, or when
    spooled events wait and storage has not advanced for ``MEDSCRM_INGEST_STALL_SECONDS`` (default
    30). ``ingest`` reports the spool backlog (bytes), the lag (seconds storage has not advanced
    while events wait), the last flush error and its age. Cheap enough to poll: one ``SELECT 1`` and
    the flusher's cached counters."""
    out: dict[str, Any] = {"status": "ok", "version": __version__, "database": engine.dialect.name}
    problems = []
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        problems.append(f"database: {type(exc).__name__}: {str(exc)[:300]}")
    ingestor = getattr(request.app.state, "ingestor", None)
    if ingestor is not None:
        ingest = ingestor.health()
        stall = float(getattr(request.app.state, "ingest_stall_seconds", 30.0))
        ingest["stall_after_seconds"] = stall
        out["ingest"] = ingest
        if ingest["backlog_bytes"] > 0 and ingest["lag_seconds"] >= stall:
            problems.append(
                f"ingest: {ingest['backlog_bytes']} spooled bytes wait and storage has not advanced for "
                f"{ingest['lag_seconds']} s"
                + (f" (last error: {ingest['last_error'][:300]})" if ingest["last_error"] else "")
            )
    if problems:
        out["status"] = "degraded"
        out["problems"] = problems
    return JSONResponse(out, status_code=503 if problems else 200)


@router.get("/me", tags=["accounts"], summary="Who the token belongs to (and the user it acts as)")
def me(p: CurrentPrincipal) -> dict[str, Any]:
    return {
        "tenant": p.tenant_slug,
        "role": p.role,
        "token_id": p.token_id,
        "user_id": p.user_id,
        "username": p.username,  # a rep token sees the HCPs this user owns (None: nobody)
    }


@router.get("/sources", tags=["accounts"], summary="Sources of the tenant")
def list_sources(engine: EngineDep, p: Annotated[Principal, require("data.read")]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = accounts.list_sources(conn=conn, tenant_id=p.tenant_id)
    return [{k: r[k] for k in ("id", "name", "kind", "write_key_hint", "created_at")} for r in rows]


@router.get("/imports", tags=["ingest"], summary="Recent file imports")
def list_imports(
    engine: EngineDep,
    p: Annotated[Principal, require("data.read")],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(imports)
                .where(imports.c.tenant_id == p.tenant_id)
                .order_by(imports.c.started_at.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


@router.get("/quarantine", tags=["ingest"], summary="Quarantined input with reasons")
def list_quarantine(
    engine: EngineDep,
    p: Annotated[Principal, require("quarantine.manage")],
    status: Annotated[
        Literal["open", "replayed", "discarded", "all"], Query(description="all: any status")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        entries = qs.list_entries(
            conn=conn,
            tenant_id=p.tenant_id,
            status=None if status == "all" else status,
            limit=limit,
            offset=offset,
        )
    # quarantined rows are raw input: names, phones, e-mails as the source sent them
    p.audit_read(engine, "quarantine.read", object_type="quarantine", count=len(entries), status=status)
    return entries


@router.post(
    "/quarantine/{entry_id}/fix",
    tags=["ingest"],
    summary="Correct values of a quarantined row",
    responses=responses(404),
)
def fix_quarantine(
    entry_id: str,
    engine: EngineDep,
    p: Annotated[Principal, require("quarantine.manage")],
    changes: Annotated[dict[str, Any], Body(examples=[{"手机": "13800138000"}])],
) -> dict:
    try:
        with engine.begin() as conn:
            return qs.fix(conn=conn, tenant_id=p.tenant_id, entry_id=entry_id, changes=changes, actor=p.actor)
    except NotFound:
        raise  # the entry: answered 404 naming entry_id (the path parameter)
    except MedscrmError as exc:  # the changes do not apply to this entry
        raise InvalidInput("changes", str(exc)) from exc


@router.post(
    "/quarantine/replay",
    tags=["ingest"],
    summary="Replay quarantined rows (all open ones if no ids)",
    responses=responses(404),
)
def replay_quarantine(
    engine: EngineDep,
    p: Annotated[Principal, require("quarantine.manage")],
    ids: Annotated[list[str] | None, Body(embed=True)] = None,
) -> dict:
    try:
        with engine.begin() as conn:
            return qs.replay(conn=conn, tenant_id=p.tenant_id, entry_ids=ids, actor=p.actor)
    except NotFound as exc:
        raise NotFound(str(exc), field="ids") from exc


@router.post(
    "/identity/reviews/{review_id}/revoke",
    tags=["identity"],
    summary="Take back a rejected identity review decision (the pair is open for review again)",
    responses=responses(404, 409),
)
def revoke_review_rejection(
    review_id: str,
    engine: EngineDep,
    p: Annotated[Principal, require("identity.manage")],
    reason: Annotated[str | None, Body(embed=True, max_length=2000)] = None,
) -> dict:
    # lazy: off the server's start-up path
    from medscrm.persons import review

    with engine.begin() as conn:
        return review.revoke_rejection(
            conn, tenant_id=p.tenant_id, review_id=review_id, actor=p.actor, reason=reason
        )


@router.get("/audit", tags=["accounts"], summary="Audit log, newest first")
def list_audit(
    engine: EngineDep,
    p: Annotated[Principal, require("audit.read")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = accounts.list_audit(conn=conn, tenant_id=p.tenant_id, limit=limit)
    p.audit_read(engine, "audit.read", object_type="audit_log", count=len(rows))
    return rows
