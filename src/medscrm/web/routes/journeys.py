"""Console journeys: list, the journey graph with per-step figures, start/pause/resume/stop.

The pages exist where the journeys module is installed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import Response

from medscrm.common import MedscrmError, NotFound
from medscrm.journeys.model import validate_definition
from medscrm.web import data
from medscrm.web.auth import Ctx, Forbidden
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, render
from medscrm.web.routes.journey_results import results_view

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _journeys_svc(ctx: Ctx):
    ctx.require("data.read")
    if ctx.is_rep:
        raise Forbidden("journeys")
    svc = data.optional_module("journeys.service")
    if svc is None:
        raise NotFound("the journeys module is not installed")
    return svc


GRAPH_PAD_X, GRAPH_PAD_TOP, GRAPH_PAD_BOTTOM = 110, 50, 80  # half a box, room for the legend
#: the ids of the invisible nodes that fix the graph's scale (see :func:`anchored`)
ANCHOR = "__anchor"


def anchored(option: dict[str, Any], min_width: int = 380, min_height: int = 130) -> dict[str, Any]:
    """The graph drawn at scale 1 on both axes: ECharts fits the nodes' bounding box into the drawing
    box, so a graph of one row (no height) or one column came out stretched, its boxes huge or gone.
    Two invisible, silent anchor nodes at the corners give the box its size; ``size`` is set to match."""
    series = option["series"][0]
    nodes = [n for n in series["data"] if not str(n["id"]).startswith(ANCHOR)]
    width = max([n["x"] for n in nodes] + [min_width])
    height = max([n["y"] for n in nodes] + [min_height])
    hidden = {"symbolSize": 1, "itemStyle": {"opacity": 0}, "label": {"show": False}, "silent": True}
    series["data"] = nodes + [
        {"id": f"{ANCHOR}0", "name": "", "x": 0, "y": 0, **hidden},
        {"id": f"{ANCHOR}1", "name": "", "x": width, "y": height, **hidden},
    ]
    option["size"] = {"width": width + 2 * GRAPH_PAD_X, "height": height + GRAPH_PAD_TOP + GRAPH_PAD_BOTTOM}
    option["tooltip"] = {"show": True}
    return option


def journey_graph(definition: dict[str, Any], stats: list[dict[str, Any]], t) -> dict[str, Any]:
    """An ECharts graph of the journey: steps laid out by depth from the entry, edges labelled by the
    field that makes them (next, then, else, on_blocked, branches[i].next), per-step figures on nodes."""

    journey = validate_definition(definition)
    by_id = {s["step_id"]: s for s in stats}
    edges = {s.id: s.targets() for s in journey.steps}
    depth = {journey.entry_step: 0}
    queue = [journey.entry_step]
    while queue:
        cur = queue.pop(0)
        for _, nxt in edges.get(cur, []):
            if nxt not in depth:
                depth[nxt] = depth[cur] + 1
                queue.append(nxt)
    for s in journey.steps:  # unreachable steps go last
        depth.setdefault(s.id, max(depth.values(), default=0) + 1)
    rows: dict[int, int] = {}
    nodes = []
    lang = getattr(t, "lang", "zh")
    for s in journey.steps:
        d = depth[s.id]
        row = rows.get(d, 0)
        rows[d] = row + 1
        st = by_id.get(s.id, {})
        blocked = sum((st.get("blocked") or {}).values())
        kind = t.label("step", s.type)
        label = f"{data.one_language(s.name, lang) if s.name else kind}\n{kind}"
        figures = f"{t('jr.entered')} {st.get('entered', 0)} · {t('jr.waiting')} {st.get('waiting', 0)}"
        if s.type == "send":
            figures += f"\n{t('jr.sent')} {st.get('sent', 0)} · {t('jr.blocked')} {blocked}"
        nodes.append(
            {
                "id": s.id,
                "name": data.one_language(s.name, lang) if s.name else kind,
                "x": d * 300,
                "y": row * 180,
                "value": st.get("entered", 0),
                "label": {"show": True, "formatter": f"{label}\n{figures}"},
                "category": kind,
            }
        )
    links = [
        {
            "source": sid,
            "target": nxt,
            "label": {"show": field != "next", "formatter": edge_label(field, t)},
        }
        for sid, targets in edges.items()
        for field, nxt in targets
    ]
    types = sorted({t.label("step", s.type) for s in journey.steps})
    # drawn at scale 1 (the page scrolls sideways for a long journey): fitted into the card, a long
    # chain of steps shrank until its boxes and edge labels overlapped
    width = max(n["x"] for n in nodes) + 2 * GRAPH_PAD_X
    height = max(n["y"] for n in nodes) + GRAPH_PAD_TOP + GRAPH_PAD_BOTTOM
    option = graph_option(nodes, links, types, symbol_size=[190, 70])
    option["size"] = {"width": width, "height": height}
    return option


def graph_option(
    nodes: list[dict[str, Any]], links: list[dict[str, Any]], categories: list[str], *, symbol_size: list[int]
) -> dict[str, Any]:
    """The ECharts option of a journey graph (the journey page, the editor, a version): boxes at fixed
    positions, arrows, edge labels on white, one legend entry per step kind."""
    return {
        "tooltip": {},
        "legend": {"data": categories, "bottom": 0},
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": True,
                "left": GRAPH_PAD_X,
                "right": GRAPH_PAD_X,
                "top": GRAPH_PAD_TOP,
                "bottom": GRAPH_PAD_BOTTOM,
                "symbol": "roundRect",
                "symbolSize": symbol_size,
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 9,
                "categories": [{"name": n} for n in categories],
                "label": {"fontSize": 11, "lineHeight": 15},
                "edgeLabel": {
                    "fontSize": 11,
                    "position": "middle",
                    "backgroundColor": "#fff",
                    "padding": [1, 4],
                    "borderRadius": 3,
                },
                "lineStyle": {"width": 1.5, "curveness": 0.15},
                "data": nodes,
                "links": links,
            }
        ],
    }


def edge_label(field: str, t) -> str:
    """What an edge of the graph means, in words: yes / no / if blocked / branch N."""
    m = re.fullmatch(r"branches\[(\d+)\]\.next", field)
    if m:
        return t("edge.branch", n=int(m.group(1)) + 1)
    return t.label("edge", field) if field != "next" else ""


@router.get("/journeys")
def journeys_page(ctx: Page) -> Response:
    svc = _journeys_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        rows = svc.list_journeys(conn, tenant_id=ctx.tenant_id)
        info = _start_info(svc, conn, ctx, rows)
    return render(ctx, "journeys.html", journeys=rows, can_run=ctx.can("data.import"), start_info=info)


def _start_info(svc, conn, ctx: Ctx, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each draft journey: the entry segments and how many persons the start dialog's "enrol
    current members now" would enrol (an aggregate count: no person is named)."""
    if not ctx.can("data.import"):
        return {}
    out = {}
    for j in rows:
        if j["status"] == "draft":
            try:
                out[j["key"]] = svc.current_members(conn, tenant_id=ctx.tenant_id, key=j["key"])
            except MedscrmError:
                out[j["key"]] = {"segments": [], "count": 0}
    return out


def _journey_page(ctx: Ctx, key: str, status: int = 200, error: str | None = None) -> Response:
    svc = _journeys_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        j = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=key)
        stats = svc.step_stats(conn, tenant_id=ctx.tenant_id, key=key)
        info = _start_info(svc, conn, ctx, [j])
        ab = results_view(ctx, conn, key)  # the A/B results section (journey_results.html)
    return render(
        ctx,
        "journey.html",
        status,
        j=j,
        stats=stats,
        graph=anchored(journey_graph(j["definition"], stats, ctx.t)),
        can_run=ctx.can("data.import"),
        start_info=info,
        error=error,
        **ab,
    )


@router.get("/journeys/{key}")
def journey_detail(ctx: Page, key: str) -> Response:
    return _journey_page(ctx, key)


@router.post("/journeys/{key}/{action}")
def journey_action(
    ctx: Page,
    _: Csrf,
    key: str,
    action: str,
    enrol_choice: Annotated[str, Form()] = "",
    enrol_current: Annotated[str, Form()] = "",
) -> Response:
    svc = _journeys_svc(ctx)
    ctx.require("data.import")
    if action not in ("start", "pause", "resume", "stop"):
        raise NotFound(f"action {action!r}")
    # the start dialog's "enrol current members now" (ticked by default; a form without the dialog's
    # fields starts with it on too)
    kw = {"enrol_current": not enrol_choice or enrol_current == "1"} if action == "start" else {}
    try:
        with _engine(ctx.request).begin() as conn:
            getattr(svc, action)(conn, tenant_id=ctx.tenant_id, key=key, actor=ctx.actor, **kw)
    except NotFound:
        raise
    except MedscrmError as exc:  # e.g. content not approved, no channel credentials: say so on the page
        return _journey_page(ctx, key, 400, error=str(exc))
    return _redirect(ctx, f"/journeys/{quote(key)}")
