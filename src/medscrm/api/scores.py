"""Scores API (HCP360 behaviour model): distributions for the dashboard, micro-segment descriptions,
refreshes, one person's scores and stage, and the tag query (persons holding a tag value).

A rep token sees only the HCPs the rep owns: one person's scores answer 404 for any other, the tag
query lists (and counts) owned persons only; distributions and micro-segments stay tenant-wide
aggregates (no person in them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from medscrm.accounts import service as accounts
from medscrm.accounts.roles import can
from medscrm.api.deps import EngineDep, Offset, Principal, require, visible_person_id
from medscrm.api.errors import AUTH, responses
from medscrm.common import Conflict
from medscrm.db.schema import persons
from medscrm.scores import service as scores
from medscrm.scores.micro import refresh_micro
from medscrm.scores.model import hide_prescription_detail
from medscrm.tags import service as tags

router = APIRouter(
    prefix="/api/v1", tags=["scores, stages and behaviour tags (HCP360)"], responses=responses(*AUTH)
)
Reader = Annotated[Principal, require("data.read")]
Writer = Annotated[Principal, require("data.import")]


class RefreshBody(BaseModel):
    micro: bool = Field(False, description="Also re-cluster the micro-segments")
    k: int | None = Field(None, ge=2, le=50, description="Micro-segments to make (default from the rules)")


class MicroBody(BaseModel):
    k: int | None = Field(None, ge=2, le=50, description="Number of micro-segments (default 6)")


@router.get(
    "/scores/distributions",
    summary="Counts per tier, AIPL and lifecycle stage, preferences; score histograms",
)
def score_distributions(engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        return scores.distributions(conn, tenant_id=p.tenant_id)


@router.get("/scores/micro-segments", summary="Micro-segments with what distinguishes each (zh, en)")
def list_micro_segments(engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = scores.list_micro_segments(conn, tenant_id=p.tenant_id)
    return {"micro_segments": [{k: v for k, v in r.items() if k != "tenant_id"} for r in rows]}


#: the tenants whose scores or micro-segments a request of this process is refreshing now
_refreshing: set[str] = set()
_refreshing_guard = threading.Lock()
#: attempts of a refresh that collides with another writer of the same rows (DuckDB's optimistic
#: concurrency rolls one of them back: the background refresher's real-time tags, the daily batch)
REFRESH_TRIES = 3


def _refresh_once(engine: sa.Engine, tenant_id: str, fn: Callable[[sa.Connection], Any]) -> Any:
    """Run ``fn`` in a transaction as the only refresh of the tenant's scores in this process: a request
    that arrives while another one runs answers 409 at once (a refresh rewrites every person's tags
    and takes seconds; queueing them would only repeat the same work). A write conflict with another
    writer (DuckDB: "Conflict on tuple deletion"; PostgreSQL: serialization failure, deadlock) is
    retried, and answered 409 if it persists. On PostgreSQL, refreshes of other processes wait for each
    other on ``scores.definitions.lock_tenant``."""
    with _refreshing_guard:
        if tenant_id in _refreshing:
            raise Conflict(
                "refresh", "a refresh of this tenant's scores is already running; retry when it has finished"
            )
        _refreshing.add(tenant_id)
    try:
        for attempt in range(REFRESH_TRIES):
            try:
                with engine.begin() as conn:
                    return fn(conn)
            except sa.exc.DBAPIError as exc:
                text = str(exc.orig).lower()
                if not ("conflict" in text or "deadlock" in text or "serializ" in text):
                    raise
                if attempt == REFRESH_TRIES - 1:
                    raise Conflict(
                        "refresh", "another writer kept changing the same scores; retry shortly"
                    ) from exc
                time.sleep(0.1 * (attempt + 1))
    finally:
        with _refreshing_guard:
            _refreshing.discard(tenant_id)


@router.post(
    "/scores/refresh",
    summary="Recompute every person's behaviour tags and scores (batch)",
    responses=responses(409),
)
def refresh_scores(engine: EngineDep, p: Writer, body: RefreshBody | None = None) -> dict[str, Any]:
    body = body or RefreshBody()

    def run(conn: sa.Connection) -> dict[str, Any]:
        res = scores.refresh_all(conn, tenant_id=p.tenant_id, micro=body.micro, k=body.k)
        accounts.audit(
            conn=conn,
            tenant_id=p.tenant_id,
            actor=p.actor,
            action="scores.refresh",
            object_type="tenant",
            object_id=p.tenant_id,
            detail={"persons": res["persons"], "changed": res["changed"], "micro": body.micro},
        )
        return res

    return _refresh_once(engine, p.tenant_id, run)


@router.post(
    "/scores/micro-segments/refresh", summary="Re-cluster the micro-segments", responses=responses(409)
)
def refresh_micro_segments(engine: EngineDep, p: Writer, body: MicroBody | None = None) -> dict[str, Any]:
    body = body or MicroBody()

    def run(conn: sa.Connection) -> Any:
        out = refresh_micro(conn, tenant_id=p.tenant_id, k=body.k)
        p.audit_write(conn, "scores.micro_segments.refresh", object_type="micro_segment", k=body.k)
        return out

    rows = _refresh_once(engine, p.tenant_id, run)
    return {"micro_segments": rows}


@router.get(
    "/scores/persons/{person_id}",
    summary="One person's scores (with reasons), stage and tier",
    responses=responses(404),
)
def person_scores(person_id: str, engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        pid = visible_person_id(conn, p, person_id)
        out = {
            "person_id": pid,
            "scores": scores.scores_of(
                conn, tenant_id=p.tenant_id, person_id=pid, prescriptions=p.can("prescriptions.read")
            ),
            "stage": scores.stage_of(conn, tenant_id=p.tenant_id, person_id=pid),
        }
    p.audit_read(engine, "scores.person.read", object_type="person", object_id=pid)
    return out


@router.get(
    "/tags/{key}/persons",
    summary="Persons holding a tag (any value, or `value`), paginated",
    responses=responses(404),
)
def tag_persons(
    key: str,
    engine: EngineDep,
    p: Reader,
    value: Annotated[str | None, Query(description="Only this value, e.g. A or 心衰")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    with engine.begin() as conn:
        res = tags.persons_with_tag(
            conn,
            tenant_id=p.tenant_id,
            tag_key=key,
            value=value,
            limit=limit,
            offset=offset,
            scope=p.person_scope(),
        )
        ids = [r["person_id"] for r in res["persons"]]
        attrs = {}
        if ids:
            name = persons.c.attributes
            q = sa.select(
                persons.c.id,
                *[name[k].as_string().label(k) for k in ("name", "hospital", "department", "title")],
            ).where(persons.c.tenant_id == p.tenant_id, persons.c.id.in_(ids))
            attrs = {r["id"]: dict(r) for r in conn.execute(q).mappings()}
        accounts.audit(  # a list of named HCPs: who read it (PIPL)
            conn=conn,
            tenant_id=p.tenant_id,
            actor=p.actor,
            action="tags.query",
            object_type="tag",
            object_id=key,
            detail={"value": value, "offset": offset, "returned": len(ids), "role": p.role},
        )
    rx = can(p.role, "prescriptions.read")
    out = []
    for r in res["persons"]:
        a = attrs.get(r["person_id"], {})
        out.append(
            {
                "person_id": r["person_id"],
                "value": r["value"],
                "since": r["since"],
                "reason": r["reason"] if rx else hide_prescription_detail(r["reason"]),
                **{k: a.get(k) for k in ("name", "hospital", "department", "title")},
            }
        )
    nxt = offset + limit if offset + limit < res["total"] else None
    return {"tag": key, "value": value, "total": res["total"], "persons": out, "next_offset": nxt}
