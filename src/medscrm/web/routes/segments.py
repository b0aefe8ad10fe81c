"""Console segments: list, rule builder, preview, save and CSV export."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query
from fastapi.responses import JSONResponse, Response

from medscrm import access
from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput
from medscrm.db.schema import events, person_tags, persons, segments, tag_definitions
from medscrm.rules import RuleError, normalisations, parse
from medscrm.rules.compile import json_text
from medscrm.rules.validate import (
    AGGS,
    CONSENT_CHANNELS,
    CONSENT_PURPOSES,
    CONSENT_STATUSES,
    KEY_RE,
    SCORE_OPS,
)
from medscrm.schema.person import IDENTIFYING_FIELDS
from medscrm.segments import service as segs
from medscrm.web import data, rule_text
from medscrm.web.auth import Ctx, Forbidden
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _engine, _redirect, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


# --- segments --------------------------------------------------------------------------------------------
def _seg_ctx(ctx: Ctx) -> None:
    ctx.require("data.read")
    if ctx.is_rep:
        raise Forbidden("segments")


def node_paths(rule: Any, path: str = "") -> list[str]:
    """JSON paths of the group/leaf nodes of a rule, as the validator names them."""

    def join(p: str, k: str) -> str:
        return f"{p}.{k}" if p else k

    out = [path]
    if isinstance(rule, dict):
        for g in ("and", "or"):
            if isinstance(rule.get(g), list):
                for i, child in enumerate(rule[g]):
                    out += node_paths(child, join(path, f"{g}[{i}]"))
        if "not" in rule:
            out += node_paths(rule["not"], join(path, "not"))
    return out


def problems_by_node(rule: Any, problems: list[dict[str, str]], t=None) -> dict[str, list[str]]:
    """Each problem placed at the deepest node whose path prefixes the problem's path (in the reader's
    language when a translator ``t`` is given)."""
    nodes = sorted(set(node_paths(rule)), key=len, reverse=True)
    out: dict[str, list[str]] = {}
    for prob in problems:
        path = prob.get("path") or ""
        where = next(
            (n for n in nodes if path == n or not n or path.startswith(n + ".") or path.startswith(n + "[")),
            "",
        )
        detail = path[len(where) :].lstrip(".")
        reason = rule_text.problem(prob["reason"], t) if t else prob["reason"]
        if detail and t:
            detail = rule_text.path(detail, t)
        out.setdefault(where, []).append(f"{detail}: {reason}" if detail else reason)
    return out


def _builder_meta(conn: sa.Connection, tenant_id: str, t) -> dict[str, Any]:
    """What the builder offers (fields with their types, tags, segments, events) and how each is
    named in the reader's language (codes stay the values; labels are what the reader sees)."""

    rc = segs.context(conn, tenant_id=tenant_id)
    ev_names = list(
        conn.execute(
            sa.select(events.c.event)
            .where(events.c.tenant_id == tenant_id, events.c.event.is_not(None))
            .group_by(events.c.event)
            .order_by(sa.func.count().desc())
            .limit(200)
        ).scalars()
    )
    tag_names = {
        k: data.one_language((zh if t.lang == "zh" else en) or zh or en or k, t.lang)
        for k, zh, en in conn.execute(
            sa.select(tag_definitions.c.key, tag_definitions.c.name_zh, tag_definitions.c.name_en).where(
                tag_definitions.c.tenant_id == tenant_id
            )
        )
    }
    seg_names = {
        k: data.one_language(n or k, t.lang)
        for k, n in conn.execute(
            sa.select(segments.c.key, segments.c.name).where(segments.c.tenant_id == tenant_id)
        )
    }
    return {
        "fields": rc.fields,
        "tags": rc.tags,
        "scores": sorted(rc.scores),
        "score_ops": list(SCORE_OPS),
        "aggs": list(AGGS),
        "consent": {"channels": CONSENT_CHANNELS, "purposes": CONSENT_PURPOSES, "statuses": CONSENT_STATUSES},
        "segments": sorted(rc.segments),
        "events": ev_names,
        "labels": {
            "scores": {k: t.label("score", k) if t.has(f"score.{k}") else k for k in rc.scores},
            "aggs": {a: t.label("sagg", a) for a in AGGS},
            "channels": {c: t.label("channel", c) for c in CONSENT_CHANNELS},
            "purposes": {p: t.label("purpose", p) for p in CONSENT_PURPOSES},
            "statuses": {s: t.label("cstatus", s) for s in CONSENT_STATUSES},
            "units": t.labels("sunit"),
            "ui": {
                **{
                    k: t(f"seg.{k}")
                    for k in (
                        "all_of",
                        "any_of",
                        "negate",
                        "add_condition",
                        "add_group",
                        "remove",
                        "value_placeholder",
                        "event_placeholder",
                    )
                },
                **t.labels("sb"),
            },
            "fields": {f: data.field_label(t, f) for f in rc.fields},
            "ops": t.labels("op"),
            "tags": {k: tag_names.get(k, k) for k in rc.tags},
            "segments": {k: seg_names.get(k, k) for k in rc.segments},
            "events": {e: t.label("event", e) for e in ev_names if t.has(f"event.{e}")},
            "ptype": t.labels("ptype"),
        },
    }


@router.get("/segments")
def segments_list(ctx: Page) -> Response:
    _seg_ctx(ctx)

    with _engine(ctx.request).connect() as conn:
        rows = segs.list_segments(conn, tenant_id=ctx.tenant_id)
    return render(ctx, "segments.html", segments=rows)


def _builder(ctx: Ctx, *, seg: dict[str, Any] | None, rule: Any, status: int = 200, **kw: Any) -> Response:
    with _engine(ctx.request).connect() as conn:
        meta = _builder_meta(conn, ctx.tenant_id, ctx.t)
    return render(
        ctx,
        "segment_builder.html",
        status,
        seg=seg,
        rule=rule,
        meta=meta,
        can_save=ctx.can("data.import"),
        **kw,
    )


@router.get("/segments/new")
def segment_new(ctx: Page) -> Response:
    _seg_ctx(ctx)
    return _builder(ctx, seg=None, rule={"and": []}, problems={}, field_errors={}, form={})


#: Attributes whose values the builder never suggests: they identify a person (PIPL).
_NO_SUGGESTIONS = {*IDENTIFYING_FIELDS, *access.EXTRA_PII, "owner_rep", "rep_userid"}


@router.get("/segments/values")
def segment_values(
    ctx: Page,
    field: Annotated[str, Query(min_length=1, max_length=100)],
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The most frequent values of ``field`` in the tenant's golden records (optionally containing
    ``q``), with how many persons hold each: the builder's value suggestions. Identifying and other
    PII attributes suggest nothing."""
    _seg_ctx(ctx)
    if not KEY_RE.match(field):
        raise InvalidInput("field", f"{field[:40]!r} is not an attribute name")
    values: list[dict[str, Any]] = []
    if field not in _NO_SUGGESTIONS:
        col = sa.cast(persons.c.attributes[field].as_string(), sa.String)
        stmt = (
            sa.select(col, sa.func.count())
            .where(persons.c.tenant_id == ctx.tenant_id, persons.c.status == "active", col.is_not(None))
            .group_by(col)
            .order_by(sa.func.count().desc(), col)
            .limit(20)
        )
        if q.strip():
            stmt = stmt.where(col.icontains(q.strip(), autoescape=True))
        with _engine(ctx.request).connect() as conn:
            values = [{"value": v, "count": int(n)} for v, n in conn.execute(stmt) if v != ""]

    return JSONResponse(
        {"field": field, "label": data.field_label(ctx.t, field), "values": values},
        headers={"Cache-Control": "private, max-age=30"},
    )


def _suggestions(stmt: sa.Select, col: sa.ColumnElement, q: str, ctx: Ctx) -> list[dict[str, Any]]:
    """``(value, count)`` rows of ``stmt`` grouped by ``col``, most frequent first (20), optionally
    containing ``q``."""
    stmt = stmt.where(col.is_not(None)).group_by(col).order_by(sa.func.count().desc(), col).limit(20)
    if q.strip():
        stmt = stmt.where(col.icontains(q.strip(), autoescape=True))
    with _engine(ctx.request).connect() as conn:
        return [{"value": v, "count": int(n)} for v, n in conn.execute(stmt) if v != ""]


def _name(value: str, what: str) -> str:
    if not KEY_RE.match(value):
        raise InvalidInput(what, f"{value[:40]!r} is not a {what} name")
    return value


@router.get("/segments/tag-values")
def segment_tag_values(
    ctx: Page,
    tag: Annotated[str, Query(min_length=1, max_length=100)],
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The most frequent values of a tag among the tenant's persons (potential_tier → A, B, C …)."""
    _seg_ctx(ctx)
    _name(tag, "tag")
    col = person_tags.c.value
    stmt = sa.select(col, sa.func.count()).where(
        person_tags.c.tenant_id == ctx.tenant_id, person_tags.c.tag_key == tag
    )
    values = _suggestions(stmt, col, q, ctx)
    return JSONResponse({"tag": tag, "values": values}, headers={"Cache-Control": "private, max-age=30"})


#: How many of an event's latest occurrences are read for its property names.
_PROPERTY_SAMPLE = 2000


@router.get("/segments/event-properties")
def segment_event_properties(
    ctx: Page, event: Annotated[str, Query(min_length=1, max_length=200)]
) -> Response:
    """The property names of an event (read from its latest occurrences), most frequent first, with a
    label where the console names them. Properties that identify a person are never offered."""
    _seg_ctx(ctx)
    with _engine(ctx.request).connect() as conn:
        rows = conn.execute(
            sa.select(events.c.properties)
            .where(events.c.tenant_id == ctx.tenant_id, events.c.event == event)
            .order_by(events.c.timestamp.desc())
            .limit(_PROPERTY_SAMPLE)
        ).scalars()
        seen: dict[str, int] = {}
        kinds: dict[str, str] = {}
        for props in rows:
            for k, v in (props or {}).items():
                if not isinstance(k, str) or not KEY_RE.match(k) or k in _NO_SUGGESTIONS or v is None:
                    continue
                seen[k] = seen.get(k, 0) + 1
                number = isinstance(v, int | float) and not isinstance(v, bool)
                kinds[k] = "number" if number and kinds.get(k, "number") == "number" else "string"
    props = sorted(seen, key=lambda k: (-seen[k], k))
    return JSONResponse(
        {
            "event": event,
            "properties": [
                {
                    "name": k,
                    "type": kinds[k],
                    "count": seen[k],
                    "label": ctx.t.label("eprop", k) if ctx.t.has(f"eprop.{k}") else k,
                }
                for k in props
            ],
        },
        headers={"Cache-Control": "private, max-age=30"},
    )


@router.get("/segments/event-values")
def segment_event_values(
    ctx: Page,
    event: Annotated[str, Query(min_length=1, max_length=200)],
    property: Annotated[str, Query(min_length=1, max_length=100)],
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The most frequent values of an event's property (therapy_area → 心衰, 肿瘤 …) with how many
    events hold each; identifying properties suggest nothing."""
    _seg_ctx(ctx)
    _name(property, "property")
    values: list[dict[str, Any]] = []
    if property not in _NO_SUGGESTIONS:
        col = sa.cast(json_text(events.c.properties, property), sa.String)
        stmt = sa.select(col, sa.func.count()).where(
            events.c.tenant_id == ctx.tenant_id, events.c.event == event
        )
        values = _suggestions(stmt, col, q, ctx)
    return JSONResponse(
        {"event": event, "property": property, "values": values},
        headers={"Cache-Control": "private, max-age=30"},
    )


@router.get("/segments/{key}")
def segment_edit(ctx: Page, key: str) -> Response:
    _seg_ctx(ctx)

    with _engine(ctx.request).connect() as conn:
        seg = segs.get(conn, tenant_id=ctx.tenant_id, key=key)
        members = segs.members(conn, tenant_id=ctx.tenant_id, key=key, role=ctx.role, limit=20)
    ctx.audit_read(
        "segment.members.read",
        object_type="segment",
        object_id=key,
        persons=[m["person_id"] for m in members],
    )
    return _builder(
        ctx,
        seg=seg,
        rule=seg["rule"],
        problems={},
        field_errors={},
        form={"key": seg["key"], "name": seg["name"], "kind": seg["kind"]},
        members=members,
        saved=ctx.request.query_params.get("saved"),
    )


def _parse_rule(text: str) -> tuple[Any, list[dict[str, str]]]:
    try:
        return json.loads(text), []
    except ValueError as exc:
        return None, [{"path": "", "reason": f"not valid JSON: {exc}"}]


@router.post("/segments/preview")
def segment_preview(ctx: Page, _: Csrf, rule: Annotated[str, Form()] = "") -> Response:
    _seg_ctx(ctx)

    parsed, problems = _parse_rule(rule)
    result, sample, normalised = None, [], []
    if parsed in ({"and": []}, {"or": []}):  # a new rule without conditions yet: a hint, not an error
        ctx.audit_read("segment.preview", object_type="segment", persons=[])
        return render(ctx, "segment_preview.html", result=None, sample=[], problems={}, empty=True)
    if not problems:
        with _engine(ctx.request).connect() as conn:
            try:
                result = segs.preview(conn, tenant_id=ctx.tenant_id, rule=parsed, sample=10)
            except RuleError as exc:
                problems = exc.as_list()
            normalised = normalisations(parsed, segs.context(conn, tenant_id=ctx.tenant_id))
            if result and result["sample"]:
                rows = conn.execute(
                    sa.select(persons.c.id, persons.c.attributes).where(
                        persons.c.tenant_id == ctx.tenant_id, persons.c.id.in_(result["sample"])
                    )
                ).all()
                sample = [
                    {"person_id": pid, **access.visible_attributes(a or {}, ctx.role)} for pid, a in rows
                ]
    ctx.audit_read("segment.preview", object_type="segment", persons=[s["person_id"] for s in sample])
    return render(
        ctx,
        "segment_preview.html",
        result=result,
        sample=sample,
        normalised=normalised,
        problems=problems_by_node(parsed, problems, ctx.t) if problems else {},
    )


@router.post("/segments/check")
def segment_check(ctx: Page, _: Csrf, rule: Annotated[str, Form()] = "") -> Response:
    """The rule JSON typed next to the builder, checked by the DSL itself: ``{"ok": true, "rule": …}``
    or every problem with its path, both named in the reader's language (the builder only takes a
    rule that passed)."""
    _seg_ctx(ctx)
    parsed, problems = _parse_rule(rule)
    if not problems and parsed not in ({"and": []}, {"or": []}):
        with _engine(ctx.request).connect() as conn:
            try:
                parse(parsed, segs.context(conn, tenant_id=ctx.tenant_id))
            except RuleError as exc:
                problems = exc.as_list()
    shown = [
        {
            "path": p["path"],
            "where": rule_text.path(p["path"], ctx.t) if p["path"] else "",
            "reason": rule_text.problem(p["reason"], ctx.t),
        }
        for p in problems
    ]
    return JSONResponse({"ok": not problems, "rule": parsed if not problems else None, "problems": shown})


@router.post("/segments/save")
def segment_save(
    ctx: Page,
    _: Csrf,
    key: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "dynamic",
    rule: Annotated[str, Form()] = "",
    original_key: Annotated[str, Form()] = "",
) -> Response:
    _seg_ctx(ctx)
    ctx.require("data.import")

    parsed, problems = _parse_rule(rule)
    form = {"key": key, "name": name, "kind": kind}
    field_errors: dict[str, list[str]] = {}
    if not problems:
        try:
            with _engine(ctx.request).begin() as conn:
                if original_key:
                    segs.update(
                        conn, tenant_id=ctx.tenant_id, key=original_key, rule=parsed, name=name or None
                    )
                    key = original_key
                else:
                    segs.create(
                        conn,
                        tenant_id=ctx.tenant_id,
                        key=key.strip(),
                        rule=parsed,
                        name=name.strip() or None,
                        kind=kind,
                        created_by=ctx.actor,
                    )
                accounts.audit(
                    conn=conn,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    action="segment.save",
                    object_type="segment",
                    object_id=key,
                    detail={"rule": parsed},
                )
            return _redirect(ctx, f"/segments/{quote(key)}?saved=1")
        except RuleError as exc:
            problems = []
            for p in exc.as_list():
                if p["path"] in ("key", "kind", "name"):
                    field_errors.setdefault(p["path"], []).append(rule_text.problem(p["reason"], ctx.t))
                else:
                    problems.append(
                        {"path": p["path"].removeprefix("rule.").removeprefix("rule"), "reason": p["reason"]}
                    )
    seg = None
    if original_key:
        with _engine(ctx.request).connect() as conn:
            seg = segs.get(conn, tenant_id=ctx.tenant_id, key=original_key)
    return _builder(
        ctx,
        seg=seg,
        rule=parsed if parsed is not None else {"and": []},
        status=422,
        problems=problems_by_node(parsed, problems, ctx.t) if problems else {},
        field_errors=field_errors,
        form=form,
        error=ctx.t("seg.invalid"),
    )


@router.get("/segments/{key}/export.csv")
def segment_export(ctx: Page, key: str) -> Response:
    _seg_ctx(ctx)

    with _engine(ctx.request).begin() as conn:
        text = segs.export_csv(conn, tenant_id=ctx.tenant_id, key=key, role=ctx.role)
        accounts.audit(
            conn=conn,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            action="segment.export",
            object_type="segment",
            object_id=key,
            detail={"role": ctx.role},
        )
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
    )
