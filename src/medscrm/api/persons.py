"""Profile API: one person, lookup by identifier, search, timeline, lineage, source records.

A rep token sees only the HCPs the rep owns (``Principal.person_scope``): other persons answer 404
exactly like missing ones and never appear in a search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query

from medscrm.accounts.audit_writer import audit_committed
from medscrm.api.deps import EngineDep, Offset, Principal, check_person_visible, require, visible_person_id
from medscrm.api.errors import AUTH, responses
from medscrm.api.events import cursor_param
from medscrm.common import InvalidInput, NotFound
from medscrm.profiles import service as profiles
from medscrm.profiles.events import next_cursor

router = APIRouter(prefix="/api/v1/persons", tags=["profiles (HCP360)"], responses=responses(*AUTH))
Reader = Annotated[Principal, require("data.read")]


@router.get("/lookup", summary="Find the person behind an identifier", responses=responses(404, 503))
def lookup_person(
    engine: EngineDep,
    p: Reader,
    type: Annotated[
        Literal[tuple(profiles.LOOKUP_TYPES)],  # type: ignore[valid-type]
        Query(description="phone, email, unionid, wecom, license_no, user_id, anonymous_id"),
    ],
    value: str,
) -> dict[str, Any]:
    def find(conn: sa.Connection) -> str:
        try:
            return profiles.lookup(
                conn, tenant_id=p.tenant_id, type_=type, value=value, scope=p.person_scope()
            )
        except ValueError as exc:  # a value that is no phone number, e-mail, licence number
            raise InvalidInput("value", str(exc)) from exc

    try:
        return _audited_profile(engine, p, find)
    except NotFound as exc:  # a person the principal may not see: answered as an unknown identifier
        raise NotFound(f"no person with {type} {value!r}", field="value") from exc


def _read_conn(engine: sa.Engine) -> sa.Connection:
    """A connection for a read-only request: autocommit on PostgreSQL (no BEGIN/ROLLBACK round trips;
    each statement sees committed data, which a profile view tolerates)."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def _audited_profile(engine: sa.Engine, p: Principal, find: Callable[[sa.Connection], str]) -> dict[str, Any]:
    """Read the profile of the person ``find`` names (one connection), then answer once its audit row
    is committed (group commit, see :mod:`medscrm.accounts.audit_writer`): a read that cannot be
    audited is not answered."""
    with _read_conn(engine) as conn:
        person_id = find(conn)
        check_person_visible(conn, p, person_id)  # before anything is read (and audited)
        prof = profiles.get_profile(
            conn, tenant_id=p.tenant_id, person_id=person_id, role=p.role, actor=p.actor, audit=False
        )
    audit_committed(  # AuditFailed: answered 503 (api/errors.py)
        engine, tenant_id=p.tenant_id, actor=p.actor, **profiles.read_audit(prof["person_id"], p.role)
    )
    return prof


@router.get("", summary="Search persons by name, hospital, department")
def search_persons(
    engine: EngineDep,
    p: Reader,
    q: str | None = None,
    hospital: str | None = None,
    department: str | None = None,
    person_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
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
            scope=p.person_scope(),
        )
    p.audit_read(engine, "persons.search", object_type="person", persons=[r["person_id"] for r in rows])
    return {"persons": rows, "count": len(rows)}


@router.get("/{person_id}", summary="The 360° profile of one person", responses=responses(404, 503))
def get_person(person_id: str, engine: EngineDep, p: Reader) -> dict[str, Any]:
    return _audited_profile(engine, p, lambda _: person_id)


@router.get(
    "/{person_id}/timeline",
    summary="The person's events, newest first (page with `cursor`)",
    responses=responses(404),
)
def person_timeline(
    person_id: str,
    engine: EngineDep,
    p: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: dt.datetime | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> dict[str, Any]:
    after = cursor_param(cursor)
    with engine.connect() as conn:
        check_person_visible(conn, p, person_id)
        rows = profiles.timeline(
            conn,
            tenant_id=p.tenant_id,
            person_id=person_id,
            limit=limit,
            before=before,
            role=p.role,
            after=after,
        )
    p.audit_read(engine, "person.timeline.read", object_type="person", object_id=person_id, events=len(rows))
    return {
        "events": rows,
        "next_cursor": next_cursor(rows, limit),
        # the last timestamp, for older clients: events sharing it across pages can be missed
        "next_before": rows[-1]["timestamp"].isoformat() if len(rows) == limit else None,
    }


@router.get(
    "/{person_id}/records",
    summary="The source records behind the person (what each source sent)",
    responses=responses(404),
)
def person_records(person_id: str, engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        pid = visible_person_id(conn, p, person_id)
        records = profiles.records_of(conn, tenant_id=p.tenant_id, person_id=pid, role=p.role)
    p.audit_read(engine, "person.records.read", object_type="person", object_id=pid, records=len(records))
    return {"records": records}
