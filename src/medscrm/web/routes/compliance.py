"""Console compliance page: proof of every send of a journey or a person (who may see it: ``audit.read``).

Without a choice it shows the first journey (by key), so that the page is never empty when there is
something to show. Every view is an audited read (``compliance.sends.read``)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import Response

from medscrm.db.schema import journeys
from medscrm.outreach import compliance
from medscrm.web.routes.base import ConsoleRoute, Page, _engine, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/compliance")
def compliance_page(ctx: Page, journey: str = "", person: str = "") -> Response:
    ctx.require("audit.read")
    journey, person = journey.strip(), person.strip()
    with _engine(ctx.request).begin() as conn:
        j = journeys
        choices = [
            dict(r)
            for r in conn.execute(
                sa.select(j.c.key, j.c.name).where(j.c.tenant_id == ctx.tenant_id).order_by(j.c.key)
            ).mappings()
        ]
        if not journey and not person and choices:
            journey = choices[0]["key"]
        rows = (
            compliance.send_proofs(
                conn,
                tenant_id=ctx.tenant_id,
                role=ctx.role,
                actor=ctx.actor,
                journey=journey or None,
                person_id=person or None,
                limit=200,
            )
            if journey or person
            else []
        )
    if not (journey or person):  # nothing chosen (no journey yet): the view is still on record
        ctx.audit_read("compliance.sends.read", object_type="send", count=0)
    return render(
        ctx,
        "compliance.html",
        rows=rows,
        journeys=choices,
        params={"journey": journey, "person": person},
    )
