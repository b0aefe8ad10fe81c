"""Journeys API (营销旅程): validate, create, edit (versions), lifecycle, per-step statistics, enrol.

Invalid definitions are 422 ``{"error": "invalid_journey", "errors": [{"path", "reason"}]}`` where the
path names the node (``steps[remind].duration``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.journeys import results, service

router = APIRouter(prefix="/api/v1/journeys", tags=["journeys"], responses=responses(*AUTH))
Reader = Annotated[Principal, require("data.read")]
Writer = Annotated[Principal, require("data.import")]


class DefinitionIn(BaseModel):
    definition: dict[str, Any] = Field(description="The journey definition (see docs/journeys.md)")


class UpdateIn(DefinitionIn):
    migrate: bool = Field(False, description="Move people to the new version (else they stay on theirs)")
    step_map: dict[str, str] = Field(default_factory=dict, description="old step id → new step id")


class EnrollIn(BaseModel):
    person_ids: list[str] = Field(min_length=1, max_length=100_000)
    context: dict[str, Any] = Field(default_factory=dict, description="Variables for the journey's sends")
    ref: str | None = Field(None, max_length=100, description="Idempotency reference (same ref enrols once)")


@router.post("/validate", summary="Validate a definition against this tenant's data (nothing saved)")
def validate_journey(body: DefinitionIn, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        j = service.validate(conn, tenant_id=p.tenant_id, definition=body.definition)
    return {"valid": True, "key": j.key, "steps": len(j.steps), "triggers": len(j.triggers)}


@router.post(
    "", status_code=201, summary="Create a journey (draft, version 1)", responses=responses(404, 409)
)
def create_journey(body: DefinitionIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        return service.create(conn, tenant_id=p.tenant_id, definition=body.definition, actor=p.actor)


@router.get("", summary="All journeys with status, version and enrolment counts")
def list_journeys(engine: EngineDep, p: Reader) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = service.list_journeys(conn, tenant_id=p.tenant_id)
    return {"journeys": rows, "count": len(rows)}


@router.get("/{key}", summary="One journey: current definition, status, versions", responses=responses(404))
def get_journey(key: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return service.get_journey(conn, tenant_id=p.tenant_id, key=key)


@router.put(
    "/{key}",
    summary="Save an edited definition as a new version; migrate or keep enrollments",
    responses=responses(404, 409),
)
def update_journey(key: str, body: UpdateIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        return service.update(
            conn,
            tenant_id=p.tenant_id,
            key=key,
            definition=body.definition,
            actor=p.actor,
            migrate=body.migrate,
            step_map=body.step_map,
        )


def _lifecycle(action: str):
    def endpoint(key: str, engine: EngineDep, p: Writer) -> Any:
        with engine.begin() as conn:
            return getattr(service, action)(conn, tenant_id=p.tenant_id, key=key, actor=p.actor)

    endpoint.__name__ = f"{action}_journey"
    return endpoint


@router.post(
    "/{key}/start",
    summary="Start a draft journey (content approval and channels are checked); by default also enrol "
    "the current members of its entry segments",
    responses=responses(404, 409),
)
def start_journey(
    key: str,
    engine: EngineDep,
    p: Writer,
    enrol_current: Annotated[
        bool,
        Query(
            description="Enrol the persons already in the segments of the journey's segment_entry "
            "triggers now (re-entry rules and caps apply); false: only persons who enter from now on"
        ),
    ] = True,
) -> Any:
    with engine.begin() as conn:
        return service.start(conn, tenant_id=p.tenant_id, key=key, actor=p.actor, enrol_current=enrol_current)


@router.get(
    "/{key}/current-members",
    summary="How many persons starting with enrol_current would enrol now (the entry segments' members)",
    responses=responses(404),
)
def current_members(key: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return service.current_members(conn, tenant_id=p.tenant_id, key=key)


for _action, _summary in (
    ("pause", "Pause: nobody moves on until resume"),
    ("resume", "Resume a paused journey"),
    ("stop", "Stop for good: everyone still in the journey leaves"),
):
    router.add_api_route(
        f"/{{key}}/{_action}",
        _lifecycle(_action),
        methods=["POST"],
        summary=_summary,
        responses=responses(404, 409),
    )


@router.get(
    "/{key}/stats",
    summary="Per-step statistics: entered, waiting, sent, blocked by reason, converted",
    responses=responses(404),
)
def journey_stats(key: str, engine: EngineDep, p: Reader) -> Any:
    with engine.connect() as conn:
        return {
            "steps": service.step_stats(conn, tenant_id=p.tenant_id, key=key),
            "enrollments": service.enrollment_counts(conn, tenant_id=p.tenant_id, key=key),
        }


@router.post(
    "/{key}/enroll", summary="Enrol persons through the journey's api trigger", responses=responses(404, 409)
)
def enroll_persons(key: str, body: EnrollIn, engine: EngineDep, p: Writer) -> Any:
    with engine.begin() as conn:
        return service.enroll(
            conn,
            tenant_id=p.tenant_id,
            key=key,
            person_ids=body.person_ids,
            actor=p.actor,
            context=body.context,
            ref=body.ref,
        )


@router.get(
    "/{key}/results",
    summary="A/B results: per split and variant, entered, sends, opens, clicks, conversions and the "
    "test against the first variant (z or Fisher, 95 % CI of the difference)",
    responses=responses(404),
)
def journey_results(
    key: str,
    engine: EngineDep,
    p: Reader,
    event: Annotated[str | None, Query(description="conversion event (default: the journey's goal)")] = None,
    prop: Annotated[str | None, Query(alias="property", description="event property to match")] = None,
    value: Annotated[str | None, Query(description="the property's value")] = None,
    days: Annotated[int, Query(ge=1, le=365, description="days after the split")] = results.DEFAULT_DAYS,
) -> Any:
    conv = results.Conversion(mode="event", event=event, prop=prop, value=value, days=days) if event else None
    with engine.connect() as conn:
        return results.split_results(conn, tenant_id=p.tenant_id, key=key, conversion=conv)
