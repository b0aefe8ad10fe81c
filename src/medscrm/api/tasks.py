"""Tasks API: the tasks journeys leave for reps (a rep sees their own, about their own HCPs; other
roles that read data see the tenant's), and closing one (done / dismiss with a note, audited)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from medscrm.api.deps import EngineDep, Principal, require
from medscrm.api.errors import AUTH, responses
from medscrm.journeys import tasks as task_svc

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], responses=responses(*AUTH))
Reader = Annotated[Principal, require("data.read")]
#: closing a follow-up belongs to those who contact HCPs: reps (their own), marketers, admins
Closer = Annotated[Principal, require("outreach.send")]


class CompleteIn(BaseModel):
    action: Literal["done", "dismiss"] = Field(
        "done", description="done, or dismiss (a note is then required)"
    )
    note: str | None = Field(
        None, max_length=task_svc.MAX_NOTE, description="What was done, or why dismissed"
    )


def _user(p: Principal) -> dict[str, Any]:
    return {"username": p.username, "display_name": p.display_name}


@router.get("", summary="Tasks: a rep's own (about their HCPs), or the tenant's for other roles")
def list_tasks(
    engine: EngineDep,
    p: Reader,
    status: Annotated[str, Query(description="open, done, dismissed, cancelled or all")] = "open",
    assignee: Annotated[str | None, Query(description="only this assignee ('' = unassigned)")] = None,
    journey: Annotated[str | None, Query(description="only tasks of this journey (key)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    with engine.connect() as conn:
        rows, total = task_svc.list_tasks(
            conn,
            tenant_id=p.tenant_id,
            role=p.role,
            user=_user(p),
            status=None if status == "all" else status,
            assignee=assignee,
            journey=journey,
            limit=limit,
            offset=offset,
        )
        counts = task_svc.counts_by_assignee(
            conn, tenant_id=p.tenant_id, role=p.role, user=_user(p), journey=journey
        )
    return {"tasks": rows, "total": total, "by_assignee": counts}


@router.post(
    "/{task_id}/complete",
    summary="Close a task: done, or dismiss with a note (audited)",
    responses=responses(404, 409),
)
def complete_task(task_id: str, body: CompleteIn, engine: EngineDep, p: Closer) -> dict[str, Any]:
    with engine.begin() as conn:
        return task_svc.close_task(
            conn,
            tenant_id=p.tenant_id,
            task_id=task_id,
            action=body.action,
            note=body.note,
            actor=p.actor,
            role=p.role,
            user=_user(p),
        )
