"""Profile API: one person, lookup by identifier, search, timeline, lineage, source records."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.common import NotFound
from medscrm.profiles import service as profiles

router = APIRouter(prefix="/api/v1/persons", tags=["profiles (HCP360)"])
Reader = Annotated[Principal, require("data.read")]


def _404(exc: NotFound, field: str = "person_id") -> HTTPException:
    return HTTPException(404, detail={"field": field, "reason": str(exc)})


@router.get("/lookup", summary="Find the person behind an identifier")
def lookup(
    engine: EngineDep,
    p: Reader,
    type: Annotated[
        str, Query(description="phone, email, unionid, wecom, license_no, user_id, anonymous_id")
    ],
    value: str,
) -> dict[str, Any]:
    with engine.begin() as conn:
        try:
            pid = profiles.lookup(conn, tenant_id=p.tenant_id, type_=type, value=value)
        except ValueError as exc:
            raise HTTPException(422, detail={"field": "type", "reason": str(exc)}) from exc
        except NotFound as exc:
            raise _404(exc, "value") from exc
        return profiles.get_profile(conn, tenant_id=p.tenant_id, person_id=pid, role=p.role, actor=p.actor)


@router.get("", summary="Search persons by name, hospital, department")
def search(
    engine: EngineDep,
    p: Reader,
    q: str | None = None,
    hospital: str | None = None,
    department: str | None = None,
    person_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    with engine.connect() as conn:
        rows = profiles.search(
            conn,
            tenant_id=p.tenant_id,
            q=q,
            hospital=hospital,
            department=department,
            person_type=person_type,
            role=p.role,
            limit=limit,
            offset=offset,
        )
    return {"persons": rows, "count": len(rows)}


@router.get("/{person_id}", summary="The 360° profile of one person")
def get_person(person_id: str, engine: EngineDep, p: Reader) -> dict[str, Any]:
    try:
        with engine.begin() as conn:
            return profiles.get_profile(
                conn, tenant_id=p.tenant_id, person_id=person_id, role=p.role, actor=p.actor
            )
    except NotFound as exc:
        raise _404(exc) from exc


@router.get("/{person_id}/timeline", summary="The person's events, newest first (page with `before`)")
def timeline(
    person_id: str,
    engine: EngineDep,
    p: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: dt.datetime | None = None,
) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            rows = profiles.timeline(
                conn, tenant_id=p.tenant_id, person_id=person_id, limit=limit, before=before, role=p.role
            )
    except NotFound as exc:
        raise _404(exc) from exc
    return {"events": rows, "next_before": rows[-1]["timestamp"].isoformat() if len(rows) == limit else None}


@router.get("/{person_id}/records", summary="The source records behind the person (what each source sent)")
def records(person_id: str, engine: EngineDep, p: Reader) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            pid = profiles.resolve_person_id(conn, p.tenant_id, person_id)["id"]
            return {"records": profiles.records_of(conn, tenant_id=p.tenant_id, person_id=pid, role=p.role)}
    except NotFound as exc:
        raise _404(exc) from exc
