"""Read models for the console pages: dashboard figures, search, the readable timeline.

Everything here is computed from stored data; a figure whose data does not exist yet (no events,
no behaviour-model tags, no journeys module) is reported as missing, never invented.
Optional modules (scores, consents, sends, journeys, the content library)
are used when their tables / services are present in this installation.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import logging
import re
import time
from typing import Any

import sqlalchemy as sa

from medscrm.access import visible_attributes
from medscrm.common import NotFound, as_utc, utcnow
from medscrm.db.schema import (
    audit_log,
    events,
    identities,
    identity_review,
    metadata,
    person_changes,
    person_records,
    person_tags,
    persons,
    quarantine,
    segment_history,
    segments,
    source_records,
    sources,
    tag_definitions,
    tag_history,
)
from medscrm.profiles.service import lookup, timeline

log = logging.getLogger("medscrm.web")

CHANNEL_IDENTITIES = ("wecom_external_userid", "wechat_unionid", "phone", "email")
AIPL_ORDER = ("aware", "interest", "purchase", "loyal")
LIFECYCLE_ORDER = ("registered", "adopted", "active", "advocate", "converted", "dormant", "churned")

#: Which label group names the values of a tag (``t.label(group, value)``); other values are data.
TAG_VALUE_GROUPS = {
    "aipl": "aipl",
    "lifecycle": "lifecycle",
    "academic_interest": "level",
    "activity_level": "level",
    "channel_preference": "channel",
    "time_preference": "daytime",
    "weekday_preference": "week",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def one_language(text: Any, lang: str) -> str:
    """A name written in both languages, ``中文 · English`` (as the demo and the shipped examples
    write them), reduced to the part in ``lang``; any other text unchanged."""
    if not isinstance(text, str) or " · " not in text:
        return "" if text is None else str(text)
    parts = [p.strip() for p in text.split(" · ")]
    zh = [p for p in parts if _CJK.search(p)]
    other = [p for p in parts if not _CJK.search(p)]
    if len(parts) != 2 or len(zh) != 1 or len(other) != 1:
        return text
    return zh[0] if lang == "zh" else other[0]


def tag_value(t, tag_key: str | None, value: Any) -> str:
    """A tag's value as the reader's language names it (stage names, levels, channels …)."""
    if value is None:
        return ""
    if isinstance(value, bool) or value in ("true", "false"):
        return t.label("bool", str(value).lower())
    text = str(value)
    group = TAG_VALUE_GROUPS.get(tag_key or "")
    if group:
        return t.label(group, text)
    if tag_key == "micro_segment" and text.startswith("ms") and text[2:].isdigit():
        return t("tv.micro_segment", n=text[2:])
    return text


def field_label(t, name: str) -> str:
    """An attribute's label; an attribute the catalogue does not know (a tenant's own) keeps its name."""
    return t(f"field.{name}") if t.has(f"field.{name}") else name


def describe_rule(rule: Any, t, tag_names: dict[str, str] | None = None) -> str:
    """A rule of the DSL as one readable line in the reader's language (职称 属于 主任医师、副主任医师)."""
    tag_names = tag_names or {}
    sep = "、" if t.lang == "zh" else ", "

    def value(v: Any, key: str | None = None, tag: bool = False) -> str:
        if isinstance(v, list):
            return sep.join(value(x, key, tag) for x in v)
        if tag:
            return tag_value(t, key, v)
        if isinstance(v, bool):
            return t.label("bool", str(v).lower())
        return str(v)

    def cmp(r: dict, name: str, key: str | None = None, tag: bool = False) -> str:
        op = r.get("op", "eq")
        text = f"{name} {t.label('op', op)}"
        if "value" in r and op not in ("exists", "not_exists"):
            text += f" {value(r['value'], key, tag)}"
        return text

    def walk(r: Any) -> str:
        if not isinstance(r, dict):
            return json.dumps(r, ensure_ascii=False)
        for g in ("and", "or"):
            if isinstance(r.get(g), list):
                inner = f" {t.label('op', g)} ".join(walk(c) for c in r[g])
                return f"({inner})" if len(r[g]) > 1 else inner
        if "not" in r:
            return f"{t.label('op', 'not')} {walk(r['not'])}"
        if "attr" in r:
            return cmp(r, field_label(t, str(r["attr"])))
        if "tag" in r:
            key = str(r["tag"])
            return cmp(r, one_language(tag_names.get(key, key), t.lang), key, tag=True)
        if "event" in r or "did_not" in r:
            name = str(r.get("event") or r.get("did_not"))
            text = t.label("event", name) if t.has(f"event.{name}") else name
            if "did_not" in r:
                text = f"{t.label('op', 'not')} {text}"
            else:
                text = (
                    f"{text} {t.label('op', r.get('op', 'gte'))} {t('op.times', n=value(r.get('value', 1)))}"
                )
            last = (r.get("window") or {}).get("last")
            return f"{text} {t('op.last_days', n=last)}" if last else text
        if "segment" in r:
            return f"{t('seg.kind_segment')} {r['segment']}"
        if "person_type" in r:
            return t.label("ptype", r["person_type"])
        return json.dumps(r, ensure_ascii=False)

    return walk(rule)


def optional_module(name: str):
    """``medscrm.<name>`` if this installation has it (built by another issue), else None."""
    full = f"medscrm.{name}"
    try:
        if importlib.util.find_spec(full) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(full)


_present: dict[tuple[str, str], float] = {}


def table(conn: sa.Connection, name: str) -> sa.Table | None:
    """The table if this installation defines it and the database has it (migrated), else None."""
    t = metadata.tables.get(name)
    if t is None:
        return None
    key = (str(conn.engine.url), name)
    seen = _present.get(key)
    if seen is None or (seen < 0 and time.monotonic() + seen > 30):
        _present[key] = seen = 1.0 if sa.inspect(conn).has_table(name) else -time.monotonic()
    return t if seen > 0 else None


def _scoped(col: sa.ColumnElement, scope: sa.Select | None) -> sa.ColumnElement[bool]:
    return col.in_(scope) if scope is not None else sa.true()


# --- dashboard ---------------------------------------------------------------------------------------
def dashboard(conn: sa.Connection, *, tenant_id: str, scope: sa.Select | None, now=None) -> dict[str, Any]:
    now = now or utcnow()
    p = persons
    active = sa.and_(p.c.tenant_id == tenant_id, p.c.status == "active", _scoped(p.c.id, scope))
    by_type = dict(
        conn.execute(
            sa.select(p.c.person_type, sa.func.count()).where(active).group_by(p.c.person_type)
        ).all()
    )
    idn = identities
    hcp_ids = sa.select(p.c.id).where(active, p.c.person_type == "hcp")
    reach_rows = conn.execute(
        sa.select(idn.c.type, sa.func.count(sa.distinct(idn.c.person_id)))
        .where(
            idn.c.tenant_id == tenant_id,
            idn.c.type.in_(CHANNEL_IDENTITIES),
            idn.c.person_id.in_(hcp_ids),
        )
        .group_by(idn.c.type)
    ).all()
    reach = conn.execute(
        sa.select(sa.func.count(sa.distinct(idn.c.person_id))).where(
            idn.c.tenant_id == tenant_id,
            idn.c.type.in_(CHANNEL_IDENTITIES),
            idn.c.person_id.in_(hcp_ids),
        )
    ).scalar_one()
    e = events
    ev_scope = sa.and_(e.c.tenant_id == tenant_id, e.c.person_id.is_not(None), _scoped(e.c.person_id, scope))
    active30 = conn.execute(
        sa.select(sa.func.count(sa.distinct(e.c.person_id))).where(
            ev_scope, e.c.timestamp >= now - dt.timedelta(days=30), e.c.person_id.in_(hcp_ids)
        )
    ).scalar_one()
    week = sa.func.date_trunc("week", e.c.timestamp)
    trend = conn.execute(
        sa.select(week.label("w"), sa.func.count(), sa.func.count(sa.distinct(e.c.person_id)))
        .where(ev_scope, e.c.timestamp >= now - dt.timedelta(weeks=12))
        .group_by(week)
        .order_by(week)
    ).all()
    out: dict[str, Any] = {
        "hcps": by_type.get("hcp", 0),
        "patients": by_type.get("patient", 0),
        "reach": reach,
        "reach_by_channel": {t: n for t, n in reach_rows},
        "active30": active30,
        "trend": [(w.date().isoformat() if hasattr(w, "date") else str(w), n, d) for w, n, d in trend],
        "aipl": _tag_counts(conn, tenant_id, "aipl", scope, AIPL_ORDER),
        "lifecycle": _tag_counts(conn, tenant_id, "lifecycle", scope, LIFECYCLE_ORDER),
        "tier": _tag_counts(conn, tenant_id, "potential_tier", scope, ("A", "B", "C")),
        "top_content": _top_content(conn, tenant_id, scope, now),
        "journeys": _journeys_glance(conn, tenant_id),
    }
    if not out["tier"]:
        crm_tier = sa.cast(p.c.attributes["crm_tier"].as_string(), sa.String)
        rows = conn.execute(
            sa.select(crm_tier, sa.func.count())
            .where(active, p.c.person_type == "hcp", crm_tier.is_not(None))
            .group_by(crm_tier)
            .order_by(crm_tier)
        ).all()
        out["tier_crm"] = [(v, n) for v, n in rows]
    if scope is None:
        out["open_reviews"] = conn.execute(
            sa.select(sa.func.count()).where(
                identity_review.c.tenant_id == tenant_id, identity_review.c.status == "open"
            )
        ).scalar_one()
        out["quarantine"] = conn.execute(
            sa.select(sa.func.count()).where(
                quarantine.c.tenant_id == tenant_id, quarantine.c.status == "open"
            )
        ).scalar_one()
        out["scores_batch"] = last_scores_batch(conn, tenant_id=tenant_id)
    return out


def last_scores_batch(conn: sa.Connection, *, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's last scheduled tags/scores batch (audit action ``scores.batch``: by the server's
    daily schedule, ``medscrm scores refresh`` or the demo): ``{at, actor, persons, changed}``."""
    a = audit_log
    row = (
        conn.execute(
            sa.select(a.c.occurred_at, a.c.actor, a.c.detail)
            .where(a.c.tenant_id == tenant_id, a.c.action == "scores.batch")
            .order_by(a.c.occurred_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    detail = row["detail"] or {}
    at = row["occurred_at"]
    return {
        "at": as_utc(at),
        "actor": row["actor"],
        "persons": int(detail.get("persons") or 0),
        "changed": int(detail.get("changed") or 0),
    }


def _tag_counts(
    conn: sa.Connection, tenant_id: str, key: str, scope: sa.Select | None, order: tuple[str, ...]
) -> list[tuple[str, int]]:
    pt = person_tags
    rows = dict(
        conn.execute(
            sa.select(pt.c.value, sa.func.count())
            .join(persons, sa.and_(persons.c.tenant_id == pt.c.tenant_id, persons.c.id == pt.c.person_id))
            .where(
                pt.c.tenant_id == tenant_id,
                pt.c.tag_key == key,
                persons.c.status == "active",
                _scoped(pt.c.person_id, scope),
            )
            .group_by(pt.c.value)
        ).all()
    )
    ordered = [(v, rows.pop(v)) for v in order if v in rows]
    return ordered + sorted(rows.items())


def _top_content(conn: sa.Connection, tenant_id: str, scope, now) -> list[dict[str, Any]]:
    """Events that name a piece of content (``properties.content_id`` or ``title``), last 90 days,
    each named by its title: the library's, else the title or topic the events carry."""
    e = events
    cid = sa.func.coalesce(
        sa.cast(e.c.properties["content_id"].as_string(), sa.String),
        sa.cast(e.c.properties["title"].as_string(), sa.String),
    )
    carried = sa.func.max(
        sa.func.coalesce(
            sa.cast(e.c.properties["title"].as_string(), sa.String),
            sa.cast(e.c.properties["topic"].as_string(), sa.String),
        )
    )
    rows = conn.execute(
        sa.select(cid.label("c"), carried, sa.func.count(), sa.func.count(sa.distinct(e.c.person_id)))
        .where(
            e.c.tenant_id == tenant_id,
            e.c.timestamp >= now - dt.timedelta(days=90),
            cid.is_not(None),
            _scoped(e.c.person_id, scope) if scope is not None else sa.true(),
        )
        .group_by(cid)
        .order_by(sa.func.count().desc(), cid)
        .limit(10)
    ).all()
    titles = content_titles(conn, tenant_id=tenant_id) if rows else {}
    return [
        {"content": titles.get(c) or title or c, "id": c, "events": n, "persons": d}
        for c, title, n, d in rows
    ]


def _journeys_glance(conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]] | None:
    """The journeys with how many entered, or None where the module is absent or not migrated.

    Runs on its own connection so a missing table cannot abort the caller's transaction."""
    svc = optional_module("journeys.service")
    if svc is None:
        return None
    out = []
    try:
        with conn.engine.connect() as own:
            for j in svc.list_journeys(own, tenant_id=tenant_id)[:8]:
                stats = svc.step_stats(own, tenant_id=tenant_id, key=j["key"])
                entered = max((int(s.get("entered") or 0) for s in stats), default=0)
                out.append(
                    {
                        "key": j["key"],
                        "name": j.get("name") or j["key"],
                        "status": j.get("status"),
                        "entered": entered,
                    }
                )
    except sa.exc.DBAPIError:
        log.warning("journeys module present but its tables are not (run `medscrm db upgrade`)")
        return None
    return out


def chart_options(d: dict[str, Any], t, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """ECharts options for the dashboard (built here so the page and the tests see the same data)."""
    charts: dict[str, dict[str, Any]] = {}
    ch_names = {
        "wecom_external_userid": t.label("channel", "wecom"),
        "wechat_unionid": t.label("channel", "wechat"),
        "phone": t("field.phone"),
        "email": t("field.email"),
    }
    charts["reach"] = {
        "tooltip": {},
        "grid": {"left": 110, "right": 40, "top": 10, "bottom": 30},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": [ch_names[c] for c in CHANNEL_IDENTITIES]},
        "series": [
            {
                "type": "bar",
                "name": t("dash.persons"),
                "data": [d["reach_by_channel"].get(c, 0) for c in CHANNEL_IDENTITIES],
                "label": {"show": True, "position": "right"},
            }
        ],
    }
    if d["trend"]:
        charts["trend"] = trend_chart(d["trend"], t, now or utcnow())
    if d["aipl"]:
        charts["aipl"] = {
            "tooltip": {},
            "series": [
                {
                    "type": "funnel",
                    "sort": "none",
                    "left": "5%",
                    "width": "62%",
                    "minSize": "20%",
                    "label": {"position": "right", "formatter": "{b}: {c}"},
                    "labelLine": {"show": True},
                    "data": [{"id": v, "name": t.label("aipl", v), "value": n} for v, n in d["aipl"]],
                }
            ],
        }
    if d["lifecycle"]:
        charts["lifecycle"] = {
            "tooltip": {},
            "series": [
                {
                    "type": "pie",
                    "radius": ["40%", "70%"],
                    "data": [
                        {"id": v, "name": t.label("lifecycle", v), "value": n} for v, n in d["lifecycle"]
                    ],
                }
            ],
        }
    tier = d["tier"] or d.get("tier_crm") or []
    if tier:
        charts["tier"] = {
            "tooltip": {},
            "grid": {"left": 40, "right": 20, "top": 26, "bottom": 30},
            "xAxis": {"type": "category", "data": [v for v, _ in tier]},
            "yAxis": {"type": "value"},
            "series": [
                {
                    "type": "bar",
                    "name": t("dash.persons"),
                    "data": [n for _, n in tier],
                    "label": {"show": True, "position": "top"},
                }
            ],
        }
    if d["top_content"]:
        top = list(reversed(d["top_content"]))
        charts["top_content"] = {
            "tooltip": {},
            "grid": {"left": 10, "right": 30, "top": 10, "bottom": 30, "containLabel": True},
            "xAxis": {"type": "value"},
            "yAxis": {
                "type": "category",
                "data": [str(x["content"]) for x in top],
                "axisLabel": {"width": 210, "overflow": "truncate"},
            },
            "series": [{"type": "bar", "name": t("dash.events"), "data": [x["events"] for x in top]}],
        }
    return charts


def trend_chart(trend: list[tuple[str, int, int]], t, now: dt.datetime) -> dict[str, Any]:
    """Events and persons per week. The current week has not ended, so its point is drawn dashed (a
    series of its own, named in the legend) instead of reading as a drop."""
    weeks = [w for w, _, _ in trend]
    this_week = (as_utc(now).date() - dt.timedelta(days=as_utc(now).weekday())).isoformat()
    partial = weeks[-1] == this_week
    series: list[dict[str, Any]] = []
    for name, idx in ((t("dash.events"), 1), (t("dash.persons"), 2)):
        values = [row[idx] for row in trend]
        solid = values[:-1] + [None] if partial else values
        series.append({"type": "line", "name": name, "data": solid, "connectNulls": False})
        if partial:
            tail = [None] * len(values)
            if len(values) > 1:
                tail[-2] = values[-2]
            tail[-1] = values[-1]
            series.append(
                {
                    "type": "line",
                    "name": t("dash.partial_week"),
                    "data": tail,
                    "lineStyle": {"type": "dashed"},
                    "symbol": "emptyCircle",
                    "itemStyle": {"color": "#98a2b3"},
                }
            )
    legend = [t("dash.events"), t("dash.persons")] + ([t("dash.partial_week")] if partial else [])
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": legend},
        "grid": {"left": 50, "right": 20, "top": 30, "bottom": 30},
        "xAxis": {"type": "category", "data": weeks},
        "yAxis": {"type": "value"},
        "series": series,
    }


# --- search -------------------------------------------------------------------------------------------
def search(
    conn: sa.Connection,
    *,
    tenant_id: str,
    role: str,
    scope: sa.Select | None,
    q: str = "",
    hospital: str = "",
    department: str = "",
    person_type: str = "",
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Golden records by name / hospital / department (substring), or an exact phone, e-mail or id."""

    p = persons
    attr = p.c.attributes
    name_col = sa.cast(attr["name"].as_string(), sa.String)
    stmt = sa.select(p.c.id, p.c.person_type, p.c.attributes).where(
        p.c.tenant_id == tenant_id, p.c.status == "active", _scoped(p.c.id, scope)
    )
    q = (q or "").strip()
    if q:
        exact: str | None = None
        if q.startswith("per_"):
            exact = q
        elif "@" in q or sum(ch.isdigit() for ch in q) >= 7:
            try:
                exact = lookup(conn, tenant_id=tenant_id, type_="email" if "@" in q else "phone", value=q)
            except (NotFound, ValueError):
                exact = "-"
        stmt = stmt.where(p.c.id == exact) if exact else stmt.where(name_col.icontains(q, autoescape=True))
    if hospital:
        stmt = stmt.where(
            sa.cast(attr["hospital"].as_string(), sa.String).icontains(hospital.strip(), autoescape=True)
        )
    if department:
        stmt = stmt.where(
            sa.cast(attr["department"].as_string(), sa.String).icontains(department.strip(), autoescape=True)
        )
    if person_type in ("hcp", "patient"):
        stmt = stmt.where(p.c.person_type == person_type)
    rows = conn.execute(stmt.order_by(name_col, p.c.id).limit(limit).offset(offset)).all()
    out = []
    for pid, ptype, attrs in rows:
        v = visible_attributes(attrs or {}, role)
        out.append(
            {
                "person_id": pid,
                "person_type": ptype,
                **{
                    k: v.get(k) for k in ("name", "hospital", "department", "title", "city", "phone", "email")
                },
                "tier": v.get("crm_tier"),
            }
        )
    return out


# --- profile extras -------------------------------------------------------------------------------------
CATEGORY_ORDER = {"behaviour_model": 0, "business_rule": 1, "basic": 2, "third_party": 3}


def tag_views(tags: list[dict[str, Any]], t) -> list[dict[str, Any]]:
    """The profile's tags (``profiles.get_profile``: reasons already stripped of prescription detail
    for roles that may not read it) with a display name, a readable value and a readable why."""
    names = {tg["key"]: tg.get("name_zh") or tg.get("name_en") or tg["key"] for tg in tags}
    out = []
    for tg in tags:
        name = (
            (tg.get("name_zh") if t.lang == "zh" else tg.get("name_en"))
            or tg.get("name_zh")
            or tg.get("name_en")
        )
        out.append(
            {
                **tg,
                "tag_key": tg["key"],
                "name": one_language(name, t.lang) if name else tg["key"],
                "value_label": tag_value(t, tg["key"], tg.get("value")),
                "why": explain_reason(tg.get("reason"), t, names),
            }
        )
    return sorted(out, key=lambda x: (CATEGORY_ORDER.get(x.get("category") or "", 9), x["tag_key"]))


def score_views(scores: dict[str, dict[str, Any]], t) -> list[dict[str, Any]]:
    return [
        {
            "score_key": k,
            "label": t.label("score", k) if t.has(f"score.{k}") else k,
            "value": v.get("value"),
            "computed_at": v.get("computed_at"),
            "why": explain_reason(v.get("reason"), t),
        }
        for k, v in sorted(scores.items())
        if v.get("value") is not None
    ]


def explain_reason(reason: Any, t, tag_names: dict[str, str] | None = None) -> str:
    """A tag/score reason as one readable line: the model's own text in the reader's language, or the
    rule that made the tag written out (never raw JSON)."""
    if reason is None:
        return ""
    if isinstance(reason, str):
        try:
            reason = json.loads(reason)
        except ValueError:
            return reason
    if isinstance(reason, dict):
        text = reason.get(f"text_{t.lang}") or reason.get("text_en") or reason.get("text_zh")
        if text:
            return str(text)[:400]
        if isinstance(reason.get("rule"), dict | list):
            return f"{t('common.rule')}: {describe_rule(reason['rule'], t, tag_names)}"[:400]
        skip = {"evaluated_at", "kind", "at", "refresh", "model", "rule"}  # when, not why
        return " · ".join(str(v) for k, v in reason.items() if k not in skip and isinstance(v, str))[:400]
    return str(reason)[:400]


RECORD_FIELDS = ("name", "hospital", "department", "title", "phone", "email")


def records_of(conn: sa.Connection, *, tenant_id: str, person_id: str, role: str) -> list[dict[str, Any]]:
    """The person's source records, newest first, masked by role; ``attributes`` kept for ownership
    (one query: what ``profiles.records_of`` returns plus the custom attributes)."""

    sr, pr = source_records, person_records
    rows = conn.execute(
        sa.select(
            sr.c.id,
            sources.c.name.label("source"),
            sr.c.received_at,
            sr.c.record_key,
            sr.c.attributes,
            *[sr.c[f] for f in RECORD_FIELDS],
        )
        .join(sources, sources.c.id == sr.c.source_id)
        .where(
            sr.c.tenant_id == tenant_id,
            sr.c.id.in_(
                sa.select(pr.c.source_record_id).where(
                    pr.c.tenant_id == tenant_id, pr.c.person_id == person_id
                )
            ),
        )
        .order_by(sr.c.received_at.desc(), sr.c.id)
    ).mappings()
    return [visible_attributes(dict(r), role) for r in rows]


def consents_of(conn: sa.Connection, *, tenant_id: str, person_id: str) -> list[dict[str, Any]] | None:
    mod = optional_module("outreach.consent")
    if mod is None or table(conn, "consents") is None:
        return None
    return mod.list_consents(conn, tenant_id=tenant_id, person_id=person_id)


def readable_timeline(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    records: list[dict[str, Any]],
    t,
    limit: int = 60,
    role: str | None = None,
) -> list[dict[str, Any]]:
    """Events, records received, tag and segment changes, identity changes and sends, newest first
    (prescription events hidden from roles without ``prescriptions.read``)."""

    items: list[dict[str, Any]] = []
    titles = content_titles(conn, tenant_id=tenant_id)
    for ev in timeline(conn, tenant_id=tenant_id, person_id=person_id, limit=limit, role=role):
        props = ev.get("properties") or {}
        what = ev.get("event") or ev.get("name") or ev["type"]
        if t.has(f"event.{what}"):
            what = t.label("event", what)
        title = props.get("title") or props.get("topic") or titles.get(str(props.get("content_id") or ""))
        extra = [str(title)] if title else []
        if props.get("channel"):
            extra.append(t.label("channel", props["channel"]))
        items.append(
            {
                "at": ev["timestamp"],
                "kind": "event",
                "label": t("tl.event"),
                "text": " · ".join([str(what), *extra]),
                "ref": props.get("content_id"),
            }
        )
    for r in records[:limit]:
        items.append(
            {
                "at": r["received_at"],
                "kind": "record",
                "label": t("tl.record"),
                "text": "",
                "data": r["source"],
                "ref": r.get("record_key"),
            }
        )
    # tag, segment, identity changes and sends: one UNION ALL query (each part newest first, capped)
    s_ = lambda v: sa.cast(v, sa.String(300))  # noqa: E731
    th, sh, sg, pc = tag_history, segment_history, segments, person_changes
    parts = [
        sa.select(
            th.c.changed_at.label("at"),
            sa.literal("tag").label("kind"),
            s_(th.c.tag_key).label("a"),
            s_(th.c.old_value).label("b"),
            s_(th.c.new_value).label("c"),
        ).where(th.c.tenant_id == tenant_id, th.c.person_id == person_id),
        sa.select(sh.c.changed_at, sa.literal("segment"), s_(sh.c.change), s_(sg.c.name), s_(sg.c.key))
        .join(sg, sa.and_(sg.c.tenant_id == sh.c.tenant_id, sg.c.id == sh.c.segment_id))
        .where(sh.c.tenant_id == tenant_id, sh.c.person_id == person_id),
        sa.select(
            pc.c.occurred_at, sa.literal("identity"), s_(pc.c.kind), s_(pc.c.actor), s_(sa.null())
        ).where(pc.c.tenant_id == tenant_id, pc.c.person_id == person_id),
    ]
    sends = table(conn, "sends")
    if sends is not None and all(
        c in sends.c for c in ("person_id", "channel", "status", "reason", "created_at")
    ):
        parts.append(
            sa.select(
                sends.c.created_at,
                sa.literal("send"),
                s_(sends.c.channel),
                s_(sends.c.status),
                s_(sends.c.reason),
            ).where(sends.c.tenant_id == tenant_id, sends.c.person_id == person_id)
        )
    union = sa.union_all(*parts).subquery()
    tag_names = {
        k: one_language(zh if t.lang == "zh" else (en or zh), t.lang) if (zh or en) else k
        for k, zh, en in conn.execute(
            sa.select(tag_definitions.c.key, tag_definitions.c.name_zh, tag_definitions.c.name_en).where(
                tag_definitions.c.tenant_id == tenant_id
            )
        )
    }
    for at, kind, a, b, c in conn.execute(sa.select(union).order_by(union.c.at.desc()).limit(limit)):
        if kind == "tag":
            old, new = (tag_value(t, a, v) if v is not None else "∅" for v in (b, c))
            item = {"label": t("tl.tag"), "text": f"{tag_names.get(a, a)}: {old or '∅'} → {new or '∅'}"}
        elif kind == "segment":
            item = {
                "label": t("tl.segment"),
                "text": f"{t('tl.entered') if a == 'entered' else t('tl.exited')} {one_language(b, t.lang)}",
            }
        elif kind == "identity":
            item = {"label": t("tl.identity"), "text": t.label("pchange", a), "ref": b}
        else:
            parts = [t.label("channel", a), t.label("status", b)]
            if c:
                parts.append(t.label("block", c))
            item = {"label": t("tl.send"), "text": " · ".join(p for p in parts if p)}
        items.append({"at": at, "kind": kind, **item})

    def key(x: dict[str, Any]):
        at = x["at"]
        if at is None:
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        return as_utc(at)

    return sorted(items, key=key, reverse=True)[:limit]


def content_titles(conn: sa.Connection, *, tenant_id: str) -> dict[str, str]:
    """Content item id and key → title, where the content library is installed."""
    items = table(conn, "content_items")
    if items is None:
        return {}
    out: dict[str, str] = {}
    for cid, key, title in conn.execute(
        sa.select(items.c.id, items.c.key, items.c.title).where(items.c.tenant_id == tenant_id)
    ):
        out[cid] = out[key] = title or key
    return out


def content_performance(conn: sa.Connection, *, tenant_id: str) -> dict[str, dict[str, int]]:
    """Sends per content item and status (queued, sent, blocked, failed …); {} without sends."""
    sends = table(conn, "sends")
    if sends is None or "content_id" not in sends.c:
        return {}
    out: dict[str, dict[str, int]] = {}
    for cid, status, n in conn.execute(
        sa.select(sends.c.content_id, sends.c.status, sa.func.count())
        .where(sends.c.tenant_id == tenant_id, sends.c.content_id.is_not(None))
        .group_by(sends.c.content_id, sends.c.status)
    ):
        out.setdefault(cid, {})[status] = int(n)
    return out


def source_names(conn: sa.Connection, *, tenant_id: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(sources.c.name).where(sources.c.tenant_id == tenant_id).order_by(sources.c.name)
        ).scalars()
    )
