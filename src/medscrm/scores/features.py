"""Behaviour features, computed in SQL (SQLAlchemy Core, set-based; the same on DuckDB and PostgreSQL).

One pass over the persons' events in the history window gives, per person, counts and decayed sums
in each window; one grouped query per dimension (therapy area, treatment concept, channel, time of
day) gives each person's weighted value mix with the top value ranked by a window function.

Times: an event's age is ``(now − timestamp)`` in days from epoch seconds; its China-time hour and
weekday come from ``epoch + 8 h`` (Asia/Shanghai has no DST), so the session time zone never matters.
Recency weight: ``exp(−ln 2 · age / half_life)``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from medscrm.common import as_utc
from medscrm.db.query import in_ids
from medscrm.db.schema import events, identities, persons

CHINA_OFFSET_S = 8 * 3600
DIMENSIONS = ("therapy_area", "treatment_concept", "channel", "time_slot")


@dataclass
class PersonFeatures:
    person_id: str
    person_type: str
    profile: dict[str, Any]
    n_activity: int = 0
    days_activity: int = 0
    n_preference: int = 0
    n_history: int = 0
    last_ts: dt.datetime | None = None
    first_ts: dt.datetime | None = None
    engagement_points: float = 0.0
    lead_points: float = 0.0
    academic_points: float = 0.0
    conversions_recent: int = 0
    conversions_history: int = 0
    advocacy: int = 0
    interest: int = 0
    weekend_w: float = 0.0
    preference_w: float = 0.0
    by_event: dict[str, dict[str, float]] = field(default_factory=dict)  # event -> {n, lead, n_pref}
    dims: dict[str, list[dict[str, Any]]] = field(
        default_factory=dict
    )  # dim -> ranked [{value, n, w, views}]


PROFILE_FIELDS = ("hospital", "hospital_grade", "city", "title", "department", "name")


def _epoch(col: sa.ColumnElement) -> sa.ColumnElement[float]:
    return sa.cast(sa.extract("epoch", col), sa.Float)


def _case_points(col: sa.ColumnElement, points: dict[str, float], default: float) -> sa.ColumnElement:
    if not points:
        return sa.literal(float(default))
    return sa.case(
        *[(col == sa.literal(k), sa.literal(float(v))) for k, v in points.items()],
        else_=sa.literal(float(default)),
    )


def _slot(hour: sa.ColumnElement, slots: dict[str, list[int]]) -> sa.ColumnElement:
    whens = []
    for name, (lo, hi) in slots.items():
        if lo < hi:
            cond = sa.and_(hour >= lo, hour < hi)
        else:  # wraps past midnight
            cond = sa.or_(hour >= lo, hour < hi)
        whens.append((cond, sa.literal(name)))
    return sa.case(*whens, else_=sa.null())


IdRange = tuple[str | None, str | None]


def person_filter(
    col: sa.ColumnElement, person_ids: list[str] | None, id_range: IdRange | None
) -> list[sa.ColumnElement[bool]]:
    """Conditions limiting ``col`` to the given persons and/or the id range [lo, hi)."""
    out: list[sa.ColumnElement[bool]] = []
    if person_ids is not None:
        out.append(in_ids(col, person_ids))
    if id_range is not None:
        lo, hi = id_range
        if lo is not None:
            out.append(col >= lo)
        if hi is not None:
            out.append(col < hi)
    return out


def scope_persons(
    tenant_id: str, cfg: dict[str, Any], person_ids: list[str] | None, id_range: IdRange | None = None
) -> sa.Select:
    """The scored persons: active, of the configured types (or exactly ``person_ids`` among them, or
    those with ids in ``id_range``)."""
    p = persons
    return sa.select(p.c.id).where(
        p.c.tenant_id == tenant_id,
        p.c.status == "active",
        p.c.person_type.in_(cfg["person_types"]),
        *person_filter(p.c.id, person_ids, id_range),
    )


def id_ranges(conn: sa.Connection, *, tenant_id: str, cfg: dict[str, Any], size: int) -> list[IdRange]:
    """Consecutive id ranges of about ``size`` scored persons each (bounded memory for big tenants)."""
    ids = scope_persons(tenant_id, cfg, None).subquery()
    rn = sa.func.row_number().over(order_by=ids.c.id).label("rn")
    numbered = sa.select(ids.c.id, rn).subquery()
    starts = list(
        conn.execute(
            sa.select(numbered.c.id).where((numbered.c.rn - 1) % size == 0).order_by(numbered.c.id)
        ).scalars()
    )
    if len(starts) <= 1:
        return [(None, None)]
    bounds: list[str | None] = [None, *starts[1:], None]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def attributed_events(
    tenant_id: str,
    cfg: dict[str, Any],
    now: dt.datetime,
    person_ids: list[str] | None,
    id_range: IdRange | None = None,
) -> sa.Select:
    """Track events in the history window, each with the person it belongs to (``events.person_id``,
    or a ``user_id`` identity of the person), plus age, weights, China-time hour/weekday."""
    e = events
    since = now - dt.timedelta(days=cfg["windows"]["history"])
    filters = [e.c.tenant_id == tenant_id, e.c.type == "track", e.c.timestamp >= since, e.c.timestamp <= now]
    cols = (e.c.event, e.c.timestamp, e.c.properties, e.c.context)
    by_person = sa.select(e.c.person_id.label("pid"), *cols).where(*filters, e.c.person_id.is_not(None))
    i = identities
    users_q = sa.select(i.c.value.label("uid"), i.c.person_id.label("pid")).where(
        i.c.tenant_id == tenant_id, i.c.type == "user_id"
    )
    by_person = by_person.where(*person_filter(e.c.person_id, person_ids, id_range))
    users_q = users_q.where(*person_filter(i.c.person_id, person_ids, id_range))
    users = users_q.distinct().subquery()
    by_user = (
        sa.select(users.c.pid, *cols)
        .join(users, users.c.uid == e.c.user_id)
        .where(*filters, sa.or_(e.c.person_id.is_(None), e.c.person_id != users.c.pid))
    )
    raw = sa.union_all(by_person, by_user).subquery("raw")
    ep = _epoch(raw.c.timestamp)
    age = (sa.literal(now.timestamp()) - ep) / 86400.0
    # whole seconds as an integer: integer % is portable (PostgreSQL has no double % int)
    local = sa.cast(sa.func.floor(sa.extract("epoch", raw.c.timestamp)), sa.BigInteger) + CHINA_OFFSET_S
    hour = sa.func.floor(sa.cast(local % 86400, sa.Float) / 3600.0)
    day_no = sa.cast(sa.func.floor(sa.cast(local, sa.Float) / 86400.0), sa.BigInteger)
    ln2 = math.log(2)
    props, ctx = raw.c.properties, raw.c.context
    channel = sa.func.coalesce(props["channel"].as_string(), ctx["channel"].as_string())
    return sa.select(
        raw.c.pid,
        raw.c.event,
        raw.c.timestamp.label("ts"),
        props["therapy_area"].as_string().label("therapy_area"),
        props["treatment_concept"].as_string().label("treatment_concept"),
        sa.case((channel.in_(cfg["channels"]), channel), else_=sa.null()).label("channel"),
        _slot(hour, cfg["time_slots"]).label("time_slot"),
        age.label("age"),
        day_no.label("day_no"),
        ((day_no + 3) % 7).label("dow"),  # 1970-01-01 was a Thursday; Monday = 0
        sa.func.exp(-ln2 / cfg["half_life_days"]["preference"] * age).label("w_pref"),
        sa.func.exp(-ln2 / cfg["half_life_days"]["lead"] * age).label("w_lead"),
        _case_points(raw.c.event, cfg["event_points"], cfg["default_event_points"]).label("pts"),
        _case_points(raw.c.event, cfg.get("academic_points") or {}, 0).label("acad"),
    )


#: the per-person aggregates (``dim = AGG_DIM`` rows of :func:`groups_query`) and their SQL types
AGG_COLUMNS: dict[str, Any] = {
    "n_activity": sa.BigInteger,
    "days_activity": sa.BigInteger,
    "n_preference": sa.BigInteger,
    "n_history": sa.BigInteger,
    "last_ts": sa.DateTime(timezone=True),
    "first_ts": sa.DateTime(timezone=True),
    "engagement_points": sa.Float,
    "lead_points": sa.Float,
    "academic_points": sa.Float,
    "conversions_recent": sa.BigInteger,
    "conversions_history": sa.BigInteger,
    "advocacy": sa.BigInteger,
    "interest": sa.BigInteger,
    "weekend_w": sa.Float,
    "preference_w": sa.Float,
}
AGG_DIM = "*person"
_GROUP_COLUMNS: dict[str, Any] = {
    "dim": sa.String,
    "value": sa.String,
    "n": sa.BigInteger,
    "n_pref": sa.BigInteger,
    "w": sa.Float,
    "lead": sa.Float,
    "views": sa.BigInteger,
    "rank": sa.BigInteger,
}


def _padded(pid: sa.ColumnElement, given: dict[str, sa.ColumnElement]) -> list[sa.ColumnElement]:
    """The union's columns in order: ``pid``, the group columns, the aggregate columns (NULL where a
    part does not give them, typed so that every engine unions them)."""
    cols = [pid.label("pid")]
    for name, typ in (*_GROUP_COLUMNS.items(), *AGG_COLUMNS.items()):
        v = given.get(name)
        cols.append(sa.cast(v if v is not None else sa.null(), typ).label(name))
    return cols


def groups_query(
    tenant_id: str,
    cfg: dict[str, Any],
    now: dt.datetime,
    person_ids: list[str] | None,
    id_range: IdRange | None = None,
) -> sa.CompoundSelect:
    """One statement, one scan of the events (a materialised CTE): per person one ``AGG_DIM`` row of
    aggregates (:data:`AGG_COLUMNS`), each event name's counts and decayed lead points, and each
    dimension's weighted mix ranked by ``row_number()``."""
    ev = attributed_events(tenant_id, cfg, now, person_ids, id_range).cte("ev").prefix_with("MATERIALIZED")
    w = cfg["windows"]
    in_pref = ev.c.age <= w["preference"]
    in_act = ev.c.age <= w["activity"]
    conv = ev.c.event.in_(cfg["conversion_events"])
    parts = [
        sa.select(
            *_padded(
                ev.c.pid,
                {
                    "dim": sa.literal(AGG_DIM),
                    "n_activity": _f(in_act, sa.func.count()),
                    "days_activity": _f(in_act, sa.func.count(sa.distinct(ev.c.day_no))),
                    "n_preference": _f(in_pref, sa.func.count()),
                    "n_history": sa.func.count(),
                    "last_ts": sa.func.max(ev.c.ts),
                    "first_ts": sa.func.min(ev.c.ts),
                    "engagement_points": _f(in_pref, sa.func.sum(ev.c.pts * ev.c.w_pref)),
                    "lead_points": sa.func.sum(ev.c.pts * ev.c.w_lead),
                    "academic_points": _f(in_pref, sa.func.sum(ev.c.acad * ev.c.w_pref)),
                    "conversions_recent": _f(sa.and_(conv, ev.c.age <= w["conversion"]), sa.func.count()),
                    "conversions_history": _f(conv, sa.func.count()),
                    "advocacy": _f(sa.and_(ev.c.event.in_(cfg["advocacy_events"]), in_pref), sa.func.count()),
                    "interest": _f(sa.and_(ev.c.event.in_(cfg["interest_events"]), in_pref), sa.func.count()),
                    "weekend_w": _f(sa.and_(in_pref, ev.c.dow >= 5), sa.func.sum(ev.c.w_pref)),
                    "preference_w": _f(in_pref, sa.func.sum(ev.c.w_pref)),
                },
            )
        ).group_by(ev.c.pid),
        sa.select(
            *_padded(
                ev.c.pid,
                {
                    "dim": sa.literal("event"),
                    "value": ev.c.event,
                    "n": sa.func.count(),
                    "n_pref": _f(in_pref, sa.func.count()),
                    "lead": sa.func.sum(ev.c.pts * ev.c.w_lead),
                },
            )
        ).group_by(ev.c.pid, ev.c.event),
    ]
    for dim in DIMENSIONS:
        col = ev.c[dim]
        wsum = sa.func.sum(ev.c.pts * ev.c.w_pref)
        n = sa.func.count()
        parts.append(
            sa.select(
                *_padded(
                    ev.c.pid,
                    {
                        "dim": sa.literal(dim),
                        "value": col,
                        "n": n,
                        "n_pref": n,
                        "w": wsum,
                        "views": _f(ev.c.event == "Article Viewed", sa.func.count()),
                        "rank": sa.func.row_number().over(
                            partition_by=ev.c.pid, order_by=(wsum.desc(), n.desc(), col)
                        ),
                    },
                )
            )
            .where(in_pref, col.is_not(None))
            .group_by(ev.c.pid, col)
        )
    return sa.union_all(*parts)


def _f(cond: sa.ColumnElement[bool], agg: sa.FunctionElement) -> sa.FunctionElement:
    return agg.filter(cond)


def compute(
    conn: sa.Connection,
    *,
    tenant_id: str,
    cfg: dict[str, Any],
    now: dt.datetime,
    person_ids: list[str] | None = None,
    id_range: IdRange | None = None,
) -> dict[str, PersonFeatures]:
    """Features of the scored persons (all of the tenant's, or ``person_ids``, or those in
    ``id_range``), keyed by person id."""
    p = persons
    prof_cols = [p.c.attributes[k].as_string().label(k) for k in PROFILE_FIELDS]
    scope = scope_persons(tenant_id, cfg, person_ids, id_range)
    out: dict[str, PersonFeatures] = {}
    q = sa.select(p.c.id, p.c.person_type, *prof_cols).where(p.c.id.in_(scope), p.c.tenant_id == tenant_id)
    for r in conn.execute(q).mappings().all():  # fetchall: DuckDB's row-by-row fetch is slow
        out[r["id"]] = PersonFeatures(
            person_id=r["id"],
            person_type=r["person_type"],
            profile={k: r[k] for k in PROFILE_FIELDS},
        )
    if not out:
        return out
    # plain tuples: this result has a row per person (the aggregates) and per event name / dimension value
    names = ["pid", *_GROUP_COLUMNS, *AGG_COLUMNS]
    k_agg = names.index("n_activity")
    agg_names = list(AGG_COLUMNS)
    for row in conn.execute(groups_query(tenant_id, cfg, now, person_ids, id_range)).all():
        f = out.get(row[0])
        if f is None:  # an event of a person outside the scope (merged, other type)
            continue
        pid, dim, value, n, n_pref, w, lead, views, rank = row[:k_agg]
        if dim == AGG_DIM:
            for k, v in zip(agg_names, row[k_agg:], strict=True):
                if k in ("last_ts", "first_ts"):
                    setattr(f, k, as_utc(v))
                elif isinstance(getattr(f, k), int):
                    setattr(f, k, int(v or 0))
                else:
                    setattr(f, k, float(v or 0.0))
        elif dim == "event":
            f.by_event[value] = {"n": int(n), "n_pref": int(n_pref or 0), "lead": float(lead or 0.0)}
        else:
            f.dims.setdefault(dim, []).append(
                {"value": value, "n": int(n), "w": float(w), "views": int(views), "rank": int(rank)}
            )
    for f in out.values():
        for lst in f.dims.values():
            lst.sort(key=lambda d: d["rank"])
    return out
