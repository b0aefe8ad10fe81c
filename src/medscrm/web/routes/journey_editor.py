"""Console journey editor: create a journey and edit it (each save is a new version) in a visual graph
editor, with live validation by the journeys service (the same problems the API gives, each naming its
node, in the reader's language), the definition as JSON/YAML kept in sync both ways, and the versions
(who, when, the graph of any version and its difference to the one before).

The browser side is ``static/journey_editor.js``; the graph is drawn by ECharts from options built
here. Registered before :mod:`medscrm.web.routes.journeys`, whose ``/journeys/{key}`` would otherwise
take ``/journeys/new``.
"""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response

from medscrm.common import InvalidInput, MedscrmError, NotFound
from medscrm.journeys.model import PURPOSES, SEND_CHANNELS, STEPS, TRIGGERS, WINDOWS, JourneyError
from medscrm.rules.errors import Problem
from medscrm.web import data, journey_text
from medscrm.web.auth import Ctx
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _finish, _redirect, render
from medscrm.web.routes.journeys import (
    ANCHOR,
    _journeys_svc,
    _start_info,
    anchored,
    edge_label,
    graph_option,
    journey_graph,
)
from medscrm.web.routes.segments import _builder_meta

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

#: the node of the graph that stands for the journey's triggers (the entry)
TRIGGERS_NODE = "__triggers"
#: the fields of each step type the side panel offers, in order (kinds drive the form control)
STEP_FIELDS: dict[str, list[tuple[str, str]]] = {
    "wait": [("duration", "duration"), ("next", "step")],
    "wait_window": [("default_window", "window"), ("next", "step")],
    "branch": [("condition", "json"), ("then", "step"), ("else", "step")],
    "split": [("branches", "branches")],
    "send": [
        ("channel", "channel"),
        ("content", "content"),
        ("purpose", "purpose"),
        ("variables", "json"),
        ("next", "step"),
        ("on_blocked", "step"),
    ],
    "add_tag": [("tag", "tag"), ("value", "text"), ("next", "step")],
    "remove_tag": [("tag", "tag"), ("value", "text"), ("next", "step")],
    "set_attribute": [("attribute", "attribute"), ("value", "text"), ("next", "step")],
    "task": [
        ("title", "text"),
        ("due", "duration"),
        ("note", "textarea"),
        ("assignee", "text"),
        ("next", "step"),
    ],
    "webhook": [("payload", "json"), ("next", "step")],
    "goal": [],
    "exit": [],
}
TRIGGER_FIELDS: dict[str, list[tuple[str, str]]] = {
    "segment_entry": [("segment", "segment")],
    "segment_exit": [("segment", "segment")],
    "event": [("event", "event"), ("where", "json")],
    "schedule": [("at", "datetime"), ("every", "duration"), ("segment", "segment")],
    "api": [],
}
#: what a new step of each type starts with (the marketer fills in the rest; validation says what)
STEP_DEFAULTS: dict[str, dict[str, Any]] = {
    "wait": {"duration": "1d"},
    "wait_window": {"default_window": "morning"},
    "branch": {"condition": {}},
    "split": {"branches": [{"weight": 50}, {"weight": 50}]},
    "send": {"channel": "email", "purpose": "marketing"},
    "task": {"title": ""},
    "webhook": {"payload": {}},
}
#: the editor's client texts (``je.*``) handed to the script
CLIENT_TEXTS = (
    "je.settings", "je.triggers", "je.steps", "je.trigger", "je.step", "je.none", "je.first_step", "je.delete",
    "je.delete_trigger", "je.add_branch", "je.remove", "je.bad_json", "je.valid", "je.problems_n",
    "je.choose", "je.reentry_never", "je.reentry_after", "je.reentry_always",
    "je.checking", "je.node_journey", "je.node_step", "je.node_trigger",
    "je.id_taken", "je.id_bad", "je.step_id", "je.step_name",
)  # fmt: skip


def _editor_svc(ctx: Ctx):
    """The journeys service for someone who may author journeys (``data.import``: admin, marketer)."""
    svc = _journeys_svc(ctx)
    ctx.require("data.import")
    return svc


def _problems(svc, conn, ctx: Ctx, definition: Any, original: dict[str, Any] | None) -> list[dict[str, str]]:
    """The problems the API would give on save: create (the key must be new) or update (references
    strict — content approved — while the journey runs)."""
    strict = bool(original and original["status"] == "running")
    out: list[dict[str, str]] = []
    try:
        svc.validate(conn, tenant_id=ctx.tenant_id, definition=definition, strict=strict)
    except JourneyError as exc:
        out = exc.as_list()
    key = definition.get("key") if isinstance(definition, dict) else None
    if isinstance(key, str) and key:
        if original is None:
            try:
                svc.get_journey(conn, tenant_id=ctx.tenant_id, key=key)
                out.append(Problem("key", f"journey {key!r} already exists (edit it with update)").as_dict())
            except NotFound:
                pass
        elif key != original["key"]:
            out.append(Problem("key", f"the key of a journey cannot change ({original['key']!r})").as_dict())
    return out


def editor_graph(definition: Any, problems: list[dict[str, Any]], t) -> dict[str, Any]:
    """An ECharts graph of a definition that may be invalid (the editor draws what is there): steps by
    depth from the triggers' node, edges for every target that names a step, nodes with problems
    outlined in red with their count."""
    d = definition if isinstance(definition, dict) else {}
    raw = d.get("steps") if isinstance(d.get("steps"), list) else []
    steps = [s for s in raw if isinstance(s, dict) and isinstance(s.get("id"), str) and s.get("id")]
    ids = {s["id"] for s in steps}
    edges: dict[str, list[tuple[str, str]]] = {}
    for s in steps:
        out: list[tuple[str, str]] = []
        for fld in ("next", "then", "else", "on_blocked"):
            if isinstance(s.get(fld), str) and s[fld] in ids:
                out.append((fld, s[fld]))
        for i, b in enumerate(s.get("branches") if isinstance(s.get("branches"), list) else []):
            if isinstance(b, dict) and isinstance(b.get("next"), str) and b["next"] in ids:
                out.append((f"branches[{i}].next", b["next"]))
        edges.setdefault(s["id"], out)
    entry = d.get("entry") if d.get("entry") in ids else (steps[0]["id"] if steps else None)
    edges[TRIGGERS_NODE] = [("next", entry)] if entry else []
    depth = {TRIGGERS_NODE: 0}
    queue = [TRIGGERS_NODE]
    while queue:
        cur = queue.pop(0)
        for _, nxt in edges.get(cur, []):
            if nxt not in depth:
                depth[nxt] = depth[cur] + 1
                queue.append(nxt)
    for s in steps:  # unreachable steps go last
        depth.setdefault(s["id"], max(depth.values()) + 1)
    count: dict[str, int] = {}
    for p in problems:
        node = TRIGGERS_NODE if p["kind"] == "trigger" else p["node"] if p["kind"] == "step" else ""
        if node:
            count[node] = count.get(node, 0) + 1
    lang = t.lang
    triggers = d.get("triggers") if isinstance(d.get("triggers"), list) else []
    kinds = [
        t.label("jtrig", x.get("type")) for x in triggers if isinstance(x, dict) and x.get("type") in TRIGGERS
    ]
    rows: dict[int, int] = {}
    nodes = []
    for sid, label, category in [
        (TRIGGERS_NODE, " / ".join(kinds) or t("je.no_trigger"), t("je.triggers"))
    ] + [
        (
            s["id"],
            data.one_language(s["name"], lang) if isinstance(s.get("name"), str) and s["name"] else "",
            t.label("step", s.get("type")) if s.get("type") in STEPS else t("je.unknown_type"),
        )
        for s in steps
    ]:
        dep = depth[sid]
        row = rows.get(dep, 0)
        rows[dep] = row + 1
        text = f"{label}\n{category}" if label else category
        if count.get(sid):
            text += "\n" + t("je.node_problems", n=count[sid])
        node: dict[str, Any] = {
            "id": sid,
            "name": label or category,
            "x": dep * 210,
            "y": row * 110,
            "label": {"show": True, "formatter": text},
            "category": category,
        }
        if count.get(sid):
            node["itemStyle"] = {"borderColor": "#c0392b", "borderWidth": 3}
        nodes.append(node)
    links = [
        {"source": sid, "target": nxt, "label": {"show": field != "next", "formatter": edge_label(field, t)}}
        for sid, targets in edges.items()
        for field, nxt in targets
    ]
    categories = list(dict.fromkeys(n["category"] for n in nodes))
    return anchored(graph_option(nodes, links, categories, symbol_size=[160, 56]))


def _yaml(definition: Any) -> str:
    return yaml.safe_dump(definition, allow_unicode=True, sort_keys=False, width=100)


def check(svc, conn, ctx: Ctx, definition: Any, original: dict[str, Any] | None) -> dict[str, Any]:
    """What the editor shows for a definition: the problems (translated, each at its node), the graph
    and the YAML form."""
    problems = [journey_text.describe(p, ctx.t) for p in _problems(svc, conn, ctx, definition, original)]
    return {
        "valid": not problems,
        "problems": problems,
        "graph": editor_graph(definition, problems, ctx.t),
        "yaml": _yaml(definition),
    }


def _meta(conn, ctx: Ctx) -> dict[str, Any]:
    """What the editor offers, with the reader's labels: step and trigger types, channels, purposes,
    time windows, the content library (title and approval status), segments, tags, attributes, events."""
    t = ctx.t
    bm = _builder_meta(conn, ctx.tenant_id, t)
    content = data.optional_module("content.service")
    items = []
    if content is not None:
        for it in content.list_items(conn, tenant_id=ctx.tenant_id):
            items.append(
                {
                    "key": it.get("key") or it["id"],
                    "title": data.one_language(it.get("title") or it.get("key") or it["id"], t.lang),
                    "status": it["status"],
                    "status_label": t.label("status", it["status"]),
                }
            )
    return {
        "steps": {k: t.label("step", k) for k in STEPS},
        "step_fields": STEP_FIELDS,
        "step_defaults": STEP_DEFAULTS,
        "triggers": {k: t.label("jtrig", k) for k in TRIGGERS},
        "trigger_fields": TRIGGER_FIELDS,
        "channels": {c: t.label("channel", c) for c in SEND_CHANNELS},
        "purposes": {p: t.label("purpose", p) for p in PURPOSES},
        "windows": {w: t.label("daytime", w) for w in WINDOWS},
        "content": items,
        "segments": bm["labels"]["segments"],
        "tags": bm["labels"]["tags"],
        "attributes": bm["labels"]["fields"],
        "events": {e: bm["labels"]["events"].get(e, e) for e in bm["events"]},
        "fields": {f: t.label("jfield", f) for f in journey_text.FIELDS},
        "texts": {k.removeprefix("je."): t(k) for k in CLIENT_TEXTS},
        "hints": {k: t(f"jh.{k}") for k in ("duration", "condition", "every", "at", "where", "payload")},
        "triggers_node": TRIGGERS_NODE,
        "anchor": ANCHOR,
        "lang": t.lang,
    }


def _editor(
    ctx: Ctx,
    svc,
    conn,
    *,
    definition: Any,
    original: dict[str, Any] | None,
    status: int = 200,
    error: str | None = None,
    saved: int | None = None,
) -> Response:
    state = check(svc, conn, ctx, definition, original)
    return render(
        ctx,
        "journey_editor.html",
        status,
        j=original,
        definition=definition,
        state=state,
        meta=_meta(conn, ctx),
        start_info=_start_info(svc, conn, ctx, [original]) if original else {},
        can_run=True,
        error=error,
        saved=saved,
    )


def _new_definition(meta_segments: dict[str, str]) -> dict[str, Any]:
    seg = next(iter(meta_segments), None)
    trig: dict[str, Any] = {"type": "segment_entry", "segment": seg} if seg else {"type": "api"}
    return {"key": "", "name": "", "triggers": [trig], "steps": [{"id": "done", "type": "exit"}]}


@router.get("/journeys/new")
def journey_new(ctx: Page) -> Response:
    svc = _editor_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        seg_keys = _builder_meta(conn, ctx.tenant_id, ctx.t)["segments"]
        definition = _new_definition(dict.fromkeys(seg_keys))
        return _editor(ctx, svc, conn, definition=definition, original=None)


@router.get("/journeys/{key}/edit")
def journey_edit(ctx: Page, key: str, saved: Annotated[int | None, Query()] = None) -> Response:
    svc = _editor_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        j = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=key)
        return _editor(ctx, svc, conn, definition=j["definition"], original=j, saved=saved)


def _parse(text: str) -> tuple[Any, list[dict[str, str]]]:
    """JSON or YAML text (YAML reads JSON too) → the definition, or the syntax problem."""
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()
        return None, [{"path": "", "reason": f"not valid JSON or YAML: {' '.join(first[:3])}"}]


@router.post("/journeys/editor/check")
async def journey_check(ctx: Page, _: Csrf, request: Request) -> Response:
    """The editor's live validation: ``{definition}`` (or ``{text}``, JSON/YAML from the advanced view)
    and ``original_key`` when editing → problems, graph, YAML and the parsed definition."""
    svc = _editor_svc(ctx)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput("body", "a JSON object {definition} or {text}")
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput("body", "a JSON object {definition} or {text}") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "a JSON object {definition} or {text}")
    syntax: list[dict[str, str]] = []
    if "text" in body:
        definition, syntax = _parse(str(body["text"]))
    else:
        definition = body.get("definition")
    with _engine(ctx.request).connect() as conn:
        original = None
        if body.get("original_key"):
            original = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=str(body["original_key"]))
        if syntax:
            problems = [journey_text.describe(p, ctx.t) for p in syntax]
            out: dict[str, Any] = {"valid": False, "problems": problems, "syntax": True}
        else:
            out = check(svc, conn, ctx, definition, original)
            out["definition"] = definition
    return _finish(ctx, JSONResponse(out))


@router.post("/journeys/editor/save")
def journey_save(
    ctx: Page,
    _: Csrf,
    definition: Annotated[str, Form()] = "",
    original_key: Annotated[str, Form()] = "",
) -> Response:
    """Create the journey (draft, version 1) or save the edit as its next version; people already in
    the journey stay on their version. Refused definitions come back to the editor with the problems."""
    svc = _editor_svc(ctx)
    parsed, syntax = _parse(definition)
    error = None
    if not syntax:
        try:
            with _engine(ctx.request).begin() as conn:
                if original_key:
                    out = svc.update(
                        conn, tenant_id=ctx.tenant_id, key=original_key, definition=parsed, actor=ctx.actor
                    )
                else:
                    out = svc.create(conn, tenant_id=ctx.tenant_id, definition=parsed, actor=ctx.actor)
            return _redirect(ctx, f"/journeys/{quote(out['key'])}/edit?saved={out['current_version']}")
        except NotFound:
            raise
        except JourneyError:
            error = ctx.t("je.not_saved")
        except MedscrmError as exc:  # e.g. a stopped journey
            error = f"{ctx.t('je.not_saved')} {journey_text.reason(str(getattr(exc, 'reason', exc)), ctx.t)}"
    else:
        error = ctx.t("je.not_saved")
    with _engine(ctx.request).connect() as conn:
        original = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=original_key) if original_key else None
        if syntax:
            parsed = original["definition"] if original else _new_definition({})
        return _editor(ctx, svc, conn, definition=parsed, original=original, status=422, error=error)


@router.get("/journeys/{key}/versions")
def journey_versions(ctx: Page, key: str, v: Annotated[int | None, Query()] = None) -> Response:
    """Every version with who saved it and when; the graph of one (the current by default) and what
    changed from the version before (a line diff of the YAML)."""
    svc = _journeys_svc(ctx)
    with _engine(ctx.request).connect() as conn:
        j = svc.get_journey(conn, tenant_id=ctx.tenant_id, key=key)
        version = v or j["current_version"]
        if not any(x["version"] == version for x in j["versions"]):
            raise NotFound(f"version {version} of journey {key!r}")
        definition = svc.definition_of(conn, journey_id=j["id"], version=version)
        before = svc.definition_of(conn, journey_id=j["id"], version=version - 1) if version > 1 else None
    diff = (
        "".join(
            difflib.unified_diff(
                _yaml(before).splitlines(keepends=True),
                _yaml(definition).splitlines(keepends=True),
                fromfile=f"v{version - 1}",
                tofile=f"v{version}",
            )
        )
        if before is not None
        else ""
    )
    return render(
        ctx,
        "journey_versions.html",
        j=j,
        version=version,
        graph=anchored(journey_graph(definition, [], ctx.t)),
        definition_text=json.dumps(definition, ensure_ascii=False, indent=2),
        diff=diff,
        can_run=ctx.can("data.import"),
    )
