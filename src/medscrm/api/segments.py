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
        return segs.preview(
            conn,
            tenant_id=p.tenant_id,
            rule=body.rule,
            sample=body.sample,
            fields=body.fields,
            scope=p.person_scope(),
        )


@router.post("/segments", status_code=201, summary="Create a static or dynamic segment")
def create_segment(body: SegmentIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        return segs.create(
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
        return segs.update(
            conn,
            tenant_id=p.tenant_id,
            key=key,
            rule=body.rule,
            name=body.name,
            fields=body.fields,
            refresh_every_minutes=body.refresh_every_minutes,
        )


@router.post(
    "/segments/{key}/refresh", summary="Recompute a dynamic segment's members", responses=responses(404)
)
def refresh_segment(key: str, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        return segs.refresh(conn, tenant_id=p.tenant_id, key=key)


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
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{key}.csv"'},
    )


@router.post("/tags", status_code=201, summary="Define (or redefine) a tag")
def define_tag(body: TagIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        return tags.define(conn, tenant_id=p.tenant_id, **body.model_dump())


@router.get("/tags", summary="Tag definitions")
def list_tags(engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = tags.list_definitions(conn, tenant_id=p.tenant_id)
    return {"tags": rows, "count": len(rows)}


@router.post("/tags/evaluate", summary="Recompute rule tags (all, or the given keys)")
def evaluate_tags(engine: EngineDep, p: Writer, body: EvaluateIn | None = None) -> Any:
    with engine.begin() as conn:
        return {"tags": tags.evaluate(conn, tenant_id=p.tenant_id, keys=body.keys if body else None)}


@router.get(
    "/persons/{person_id}/tags",
    summary="A person's current tags (and their history)",
    responses=responses(404),
)
def person_tags(person_id: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        pid = visible_person_id(conn, p, person_id)
        return {
            "person_id": pid,
            "tags": tags.tags_of(conn, tenant_id=p.tenant_id, person_id=pid),
            "history": tags.history_of(conn, tenant_id=p.tenant_id, person_id=pid),
        }
