"""Console identity review: pairs the matcher was unsure of, decided by a person."""

from __future__ import annotations

import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from medscrm import access
from medscrm.db.schema import identity_review, person_records
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _is_htmx, _redirect, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

#: The engine's reasons for a decision (``identity.explain``) → their label keys (``idwhy.*``).
WHY_CODES = {
    "high score but the names disagree": "names_disagree",
    "name-only match: no corroborating hospital/phone/e-mail/identifier": "name_only",
    "nickname or missing name without a strong identifier": "weak_name",
    "score above the auto-merge threshold with corroboration": "auto",
    "score in the review band": "review_band",
    "score below the review band": "below",
    "high score held back by a precision guard": "guarded",
}


# --- identity review -------------------------------------------------------------------------------------
REVIEW_FIELDS = ("name", "gender", "hospital", "department", "title", "city", "phone", "email", "license_no")
EVIDENCE_KEY = {"license_no": "license"}


def _pair_view(pair: dict[str, Any], role: str) -> dict[str, Any]:
    a = access.visible_attributes(pair.get("a") or {}, role)
    b = access.visible_attributes(pair.get("b") or {}, role)
    detail = pair.get("detail") or {}
    if isinstance(detail, str):
        detail = json.loads(detail)
    rows = []
    for f in REVIEW_FIELDS:
        level = detail.get(EVIDENCE_KEY.get(f, f))
        if level is None or level == -1:
            verdict = "missing"
        elif level > 0:
            verdict = "agree"
        else:
            verdict = "differ"
        rows.append({"field": f, "a": a.get(f), "b": b.get(f), "level": level, "verdict": verdict})
    for extra in ("unionid", "wecom"):
        if detail.get(extra) not in (None, -1):
            rows.append(
                {
                    "field": extra,
                    "a": "",
                    "b": "",
                    "level": detail[extra],
                    "verdict": "agree" if detail[extra] > 0 else "differ",
                }
            )
    return {
        **pair,
        "rows": rows,
        "source_a": (pair.get("a") or {}).get("source"),
        "source_b": (pair.get("b") or {}).get("source"),
        "why": WHY_CODES.get((detail.get("reason") or "").split(";")[0], detail.get("reason")),
    }


@router.get("/identity")
def identity(ctx: Page, page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    ctx.require("identity.manage")
    # lazy: off the server's start-up path

    from medscrm.persons import review

    with _engine(ctx.request).connect() as conn:
        pairs = review.list_reviews(conn, tenant_id=ctx.tenant_id, limit=10, offset=(page - 1) * 10)
        open_n = conn.execute(
            sa.select(sa.func.count()).where(
                identity_review.c.tenant_id == ctx.tenant_id, identity_review.c.status == "open"
            )
        ).scalar_one()
        r = identity_review
        decided = [
            dict(x)
            for x in conn.execute(
                sa.select(r.c.id, r.c.status, r.c.decided_at, r.c.decided_by, r.c.record_a)
                .where(r.c.tenant_id == ctx.tenant_id, r.c.status != "open")
                .order_by(r.c.decided_at.desc())
                .limit(10)
            ).mappings()
        ]

        for x in decided:
            x["person_id"] = conn.execute(
                sa.select(person_records.c.person_id).where(
                    person_records.c.tenant_id == ctx.tenant_id,
                    person_records.c.source_record_id == x["record_a"],
                )
            ).scalar()
    # the review queue shows both records of each pair: names, contacts, hospitals
    ctx.audit_read("identity.review.read", object_type="identity_review", pairs=[p["id"] for p in pairs])
    return render(
        ctx,
        "identity.html",
        pairs=[_pair_view(p, ctx.role) for p in pairs],
        open_n=open_n,
        page=page,
        decided=decided,
    )


@router.post("/identity/{review_id}/decide")
def identity_decide(ctx: Page, _: Csrf, review_id: str, decision: Annotated[str, Form()] = "") -> Response:
    ctx.require("identity.manage")
    # lazy: off the server's start-up path

    from medscrm.persons import review

    with _engine(ctx.request).begin() as conn:
        result = review.decide(
            conn, tenant_id=ctx.tenant_id, review_id=review_id, decision=decision, actor=ctx.actor
        )
    if _is_htmx(ctx.request):
        return render(ctx, "identity_decided.html", result=result)
    return _redirect(ctx, "/identity")


@router.post("/identity/{review_id}/revoke")
def identity_revoke(ctx: Page, _: Csrf, review_id: str) -> Response:
    """Take back a rejection (the pair is open for review again)."""
    ctx.require("identity.manage")
    # lazy: off the server's start-up path
    from medscrm.persons import review

    with _engine(ctx.request).begin() as conn:
        review.revoke_rejection(conn, tenant_id=ctx.tenant_id, review_id=review_id, actor=ctx.actor)
    return _redirect(ctx, "/identity")
