"""Segments and tags API: preview, CRUD, refresh, members, CSV export; tag definitions, evaluation,
a person's tags. Rule errors are 422 ``{"errors": [{"path", "reason"}]}``.

A rep token sees only the HCPs the rep owns (``Principal.person_scope``): previews, member listings
and exports leave the others out; a segment's ``member_count`` stays the tenant-wide figure."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from medscrm.api.deps import EngineDep, Offset, Principal, require, visible_person_id
from medscrm.api.errors import AUTH, responses
from medscrm.segments import service as segs
from medscrm.tags import service as tags

router = APIRouter(prefix="/api/v1", tags=["segments and tags"], responses=responses(*AUTH))
Reader = Annotated[Principal, require("data.read")]
Writer = Annotated[Principal, require("data.import")]

FieldTypes = Annotated[
    dict[str, Literal["string", "number", "bool", "date"]] | None,
    Field(
        description='Types of custom attributes not yet seen in the data, e.g. {"hospital_grade": "string"}'
    ),
]


class PreviewIn(BaseModel):
    rule: Any
    sample: int = Field(10, ge=0, le=100)
    fields: FieldTypes = None


class SegmentIn(BaseModel):
    key: str
    name: str | None = None
    kind: Literal["static", "dynamic"] = "dynamic"
    rule: Any
    fields: FieldTypes = None
    refresh_every_minutes: int | None = Field(
        None,
        ge=0,
        le=43_200,
        description="Dynamic segments: full recompute every N minutes (default 60; 0 = never, "
        "incremental updates as events arrive only)",
    )


class SegmentUpdate(BaseModel):
    name: str | None = None
    rule: Any = None
    fields: FieldTypes = None
    refresh_every_minutes: int | None = Field(
        None,
        ge=0,
        le=43_200,
        description="Dynamic segments: full recompute every N minutes (default 60; 0 = never, "
        "incremental updates as events arrive only)",
    )


class TagIn(BaseModel):
    key: str
    value_type: Literal["bool", "string", "number"] = "bool"
    category: Literal["basic", "business_rule", "behaviour_model", "third_party"] = "business_rule"
    name_zh: str | None = None
    name_en: str | None = None
    owner: str | None = None
    description: str | None = None
    refresh: Literal["realtime", "scheduled"] = "scheduled"
    rule: Any = None
    fields: FieldTypes = None


class EvaluateIn(BaseModel):
    keys: list[str] | None = None


@router.post("/segments/preview", summary="Count (and a sample of) the persons matching a rule")
def preview_segment(body: PreviewIn, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        out = segs.preview(
            conn,
            tenant_id=p.tenant_id,
            rule=body.rule,
            sample=body.sample,
            fields=body.fields,
            scope=p.person_scope(),
        )
    p.audit_read(
        engine, "segment.preview", object_type="segment", persons=list(out["sample"]), matched=out["count"]
    )
    return out


@router.post("/segments", status_code=201, summary="Create a static or dynamic segment")
def create_segment(body: SegmentIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        seg = segs.create(
            conn,
            tenant_id=p.tenant_id,
            key=body.key,
            rule=body.rule,
            name=body.name,
            kind=body.kind,
            created_by=p.actor,
            fields=body.fields,
            refresh_every_minutes=body.refresh_every_minutes,
        )
        p.audit_write(conn, "segment.create", object_type="segment", object_id=body.key, rule=body.rule)
        return seg


@router.get("/segments", summary="All segments")
def list_segments(engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = segs.list_segments(conn, tenant_id=p.tenant_id)
    return {"segments": rows, "count": len(rows)}


@router.get("/segments/refresher", summary="State of the background segment refresher (lag, counters)")
def refresher_status(request: Request, p: Reader) -> dict[str, Any]:
    r = getattr(request.app.state, "refresher", None)
    return {"enabled": r is not None, **(r.status() if r is not None else {})}


@router.get("/segments/{key}", summary="One segment", responses=responses(404))
def get_segment(key: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return segs.get(conn, tenant_id=p.tenant_id, key=key)


@router.put(
    "/segments/{key}",
    summary="Edit a segment (a new rule bumps the version and refreshes)",
    responses=responses(404),
)
def update_segment(key: str, body: SegmentUpdate, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        seg = segs.update(
            conn,
            tenant_id=p.tenant_id,
            key=key,
            rule=body.rule,
            name=body.name,
            fields=body.fields,
            refresh_every_minutes=body.refresh_every_minutes,
        )
        p.audit_write(conn, "segment.update", object_type="segment", object_id=key, rule=body.rule)
        return seg


@router.post(
    "/segments/{key}/refresh", summary="Recompute a dynamic segment's members", responses=responses(404)
)
def refresh_segment(key: str, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        out = segs.refresh(conn, tenant_id=p.tenant_id, key=key)
        p.audit_write(conn, "segment.refresh", object_type="segment", object_id=key)
        return out


@router.get(
    "/segments/{key}/members",
    summary="Members (PII masked unless the role may read it)",
    responses=responses(404),
)
def segment_members(
    key: str,
    engine: EngineDep,
    p: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Any:
    with engine.connect() as conn:
        rows = segs.members(
            conn,
            tenant_id=p.tenant_id,
            key=key,
            role=p.role,
            limit=limit,
            offset=offset,
            scope=p.person_scope(),
        )
    p.audit_read(
        engine,
        "segment.members.read",
        object_type="segment",
        object_id=key,
        persons=[r["person_id"] for r in rows],
    )
    return {"members": rows, "count": len(rows)}


@router.get(
    "/segments/{key}/export.csv",
    summary="Members as CSV (PII masked unless the role may read it)",
    response_class=Response,
    responses=responses(404, extra={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}),
)
def export_segment(key: str, engine: EngineDep, p: Reader) -> Response:
    with engine.connect() as conn:
        text = segs.export_csv(conn, tenant_id=p.tenant_id, key=key, role=p.role, scope=p.person_scope())
    p.audit_read(
        engine, "segment.export", object_type="segment", object_id=key, rows=max(text.count("\n") - 1, 0)
    )
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{key}.csv"'},
    )


@router.post("/tags", status_code=201, summary="Define (or redefine) a tag")
def define_tag(body: TagIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        out = tags.define(conn, tenant_id=p.tenant_id, **body.model_dump())
        p.audit_write(conn, "tags.define", object_type="tag", object_id=body.key)
        return out


@router.get("/tags", summary="Tag definitions")
def list_tags(engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = tags.list_definitions(conn, tenant_id=p.tenant_id)
    return {"tags": rows, "count": len(rows)}


@router.post("/tags/evaluate", summary="Recompute rule tags (all, or the given keys)")
def evaluate_tags(engine: EngineDep, p: Writer, body: EvaluateIn | None = None) -> Any:
    with engine.begin() as conn:
        out = tags.evaluate(conn, tenant_id=p.tenant_id, keys=body.keys if body else None)
        p.audit_write(conn, "tags.evaluate", object_type="tag", keys=body.keys if body else None)
        return {"tags": out}


@router.get(
    "/persons/{person_id}/tags",
    summary="A person's current tags (and their history)",
    responses=responses(404),
)
def person_tags(person_id: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        pid = visible_person_id(conn, p, person_id)
        out = {
            "person_id": pid,
            "tags": tags.tags_of(conn, tenant_id=p.tenant_id, person_id=pid),
            "history": tags.history_of(conn, tenant_id=p.tenant_id, person_id=pid),
        }
    p.audit_read(engine, "person.tags.read", object_type="person", object_id=pid)
    return out
