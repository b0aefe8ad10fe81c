"""Deterministic synthetic behaviour (Segment-shaped track events) for the HCPs of a tenant.

Each person gets a *persona* (engaged KOL, engaged, occasional, new, dormant, churned, silent) and
personal habits drawn from a seeded RNG keyed by ``(seed, person_id)``: the therapy areas that fit
their department, a favourite treatment concept, a channel mix, the hours of the day (China time,
Asia/Shanghai) and the weekdays they read. The same seed, person and ``now`` give the same events.

>>> from medscrm.synth.events import events_for_person
>>> evs = events_for_person("per_x", {"department": "心血管内科"}, seed=1, now=NOW)  # doctest: +SKIP

``generate_events(conn, tenant_id=…)`` writes them into ``events`` (bulk, idempotent on
``message_id``: a second run with the same seed adds nothing).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import new_id, utcnow
from medscrm.db.bulk import append_rows, insert_new
from medscrm.db.schema import events, persons

CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # no DST in China
SOURCE_NAME = "synth-behaviour"

THERAPY_AREAS = ("心衰", "肿瘤", "糖尿病", "高血压", "呼吸")
AREA_CODES = {"心衰": "hf", "肿瘤": "onc", "糖尿病": "dm", "高血压": "htn", "呼吸": "resp"}

#: (topic, treatment concept) per therapy area: the content library the events point at.
TOPICS: dict[str, tuple[tuple[str, str], ...]] = {
    "心衰": (
        ("ARNI 在射血分数降低心衰中的早期应用", "ARNI 早期启动"),
        ("心衰新四联：SGLT2i 的位置", "GDMT 新四联"),
        ("急性心衰出院后的易损期管理", "易损期强化随访"),
        ("HFpEF 的诊断与治疗进展", "HFpEF 综合管理"),
    ),
    "肿瘤": (
        ("PD-1 抑制剂联合化疗一线治疗", "免疫联合治疗"),
        ("EGFR 突变非小细胞肺癌靶向治疗", "精准靶向治疗"),
        ("ADC 药物的序贯策略", "ADC 序贯治疗"),
        ("免疫相关不良反应管理", "irAE 全程管理"),
    ),
    "糖尿病": (
        ("GLP-1RA 的心血管获益与循证", "GLP-1RA 早期联合"),
        ("基础胰岛素起始与剂量滴定", "胰岛素优化滴定"),
        ("SGLT2i 的心肾保护", "心肾代谢综合管理"),
        ("糖尿病肾病早期筛查与管理", "心肾代谢综合管理"),
    ),
    "高血压": (
        ("单片复方制剂起始联合治疗", "SPC 起始联合"),
        ("家庭血压监测与达标", "强化降压达标"),
        ("高血压合并糖尿病的综合管理", "心肾代谢综合管理"),
        ("难治性高血压的评估", "强化降压达标"),
    ),
    "呼吸": (
        ("COPD 单吸入器三联治疗", "单吸入器三联"),
        ("重度哮喘生物制剂的选择", "表型导向生物治疗"),
        ("慢阻肺急性加重的预防", "早期维持治疗"),
        ("肺功能检查在基层的推广", "早筛早诊"),
    ),
}

#: Department → therapy areas that fit it (first = main).
DEPARTMENT_AREAS: dict[str, tuple[str, ...]] = {
    "心血管内科": ("心衰", "高血压"),
    "心内科": ("心衰", "高血压"),
    "内分泌科": ("糖尿病", "高血压"),
    "肾内科": ("糖尿病", "高血压"),
    "肿瘤科": ("肿瘤",),
    "呼吸内科": ("呼吸",),
    "老年病科": ("高血压", "心衰"),
    "全科医学科": ("高血压", "糖尿病"),
    "神经内科": ("高血压",),
    "急诊科": ("心衰", "呼吸"),
    "普通外科": ("肿瘤",),
    "消化内科": ("肿瘤",),
    "儿童内分泌科": ("糖尿病",),
}

CHANNELS = ("wecom", "wechat", "sms", "email", "webinar", "web")

#: Hour ranges (China time) of each time-of-day habit.
SLOT_HOURS = {
    "morning": (6, 11),
    "noon": (11, 14),
    "afternoon": (14, 18),
    "evening": (18, 22),
    "night": (22, 30),  # 22:00–06:00 (hours ≥ 24 wrap to the next day)
}


@dataclass(frozen=True)
class Persona:
    name: str
    share: float  # of persons
    per_90d: float  # mean events per 90 days while active
    active_from: int  # days ago the activity starts (max)
    active_to: int  # days ago the activity ends (min)
    academic: float  # probability an event is academic (webinar/meeting)
    convert: float  # probability of conversion events
    advocate: float  # probability of sharing content


PERSONAS = (
    Persona("kol", 0.08, 22, 365, 0, 0.45, 0.7, 0.5),
    Persona("engaged", 0.22, 9, 365, 0, 0.25, 0.35, 0.1),
    Persona("occasional", 0.22, 3, 365, 0, 0.15, 0.05, 0.0),
    Persona("new", 0.10, 8, 25, 0, 0.2, 0.05, 0.0),
    Persona("dormant", 0.14, 6, 300, 75, 0.2, 0.05, 0.0),
    Persona("churned", 0.08, 5, 365, 200, 0.15, 0.0, 0.0),
    Persona("silent", 0.16, 0, 0, 0, 0.0, 0.0, 0.0),
)
PERSONAS_BY_NAME = {p.name: p for p in PERSONAS}


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def persona_of(person_id: str, attrs: dict[str, Any], seed: int) -> Persona:
    """Seniority makes a KOL likelier (chief physicians at tier-3A hospitals)."""
    rng = random.Random(f"{seed}:persona:{person_id}")
    w = {p.name: p.share for p in PERSONAS}
    title = str(attrs.get("title") or "")
    if title.startswith(("主任", "副主任")):
        w["kol"] *= 2.5
        w["silent"] *= 0.6
    if title in ("住院医师", "医师", "住院"):
        w["kol"] *= 0.2
        w["new"] *= 1.5
    return PERSONAS_BY_NAME[_pick(rng, w)]


def _habits(rng: random.Random, attrs: dict[str, Any]) -> dict[str, Any]:
    dept = str(attrs.get("department") or "")
    fit = DEPARTMENT_AREAS.get(dept)
    if fit:
        main = fit[0] if rng.random() < 0.8 else rng.choice(fit)
    else:
        main = rng.choice(THERAPY_AREAS)
    other = rng.choice([a for a in THERAPY_AREAS if a != main])
    areas = {main: 0.72, other: 0.18, **{a: 0.1 / 3 for a in THERAPY_AREAS if a not in (main, other)}}
    concept_topic = rng.randrange(len(TOPICS[main]))
    slot = _pick(rng, {"morning": 0.25, "noon": 0.2, "afternoon": 0.15, "evening": 0.3, "night": 0.1})
    channel = _pick(
        rng, {"wecom": 0.3, "wechat": 0.3, "email": 0.12, "sms": 0.08, "web": 0.12, "webinar": 0.08}
    )
    return {
        "areas": areas,
        "fav_topic": concept_topic,
        "slot": slot,
        "weekend": rng.choice((0.08, 0.15, 0.55)),  # share of weekend days (0.55 = weekend reader)
        "channel": channel,
    }


def _when(rng: random.Random, h: dict[str, Any], day: dt.date) -> dt.datetime:
    slot = h["slot"] if rng.random() < 0.75 else rng.choice(list(SLOT_HOURS))
    lo, hi = SLOT_HOURS[slot]
    hour = rng.randrange(lo, hi)
    local = dt.datetime.combine(day, dt.time(0, 0), tzinfo=CHINA) + dt.timedelta(
        hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60)
    )
    return local.astimezone(dt.UTC)


def _day(rng: random.Random, h: dict[str, Any], persona: Persona, today: dt.date) -> dt.date:
    for _ in range(20):
        ago = rng.randint(persona.active_to, max(persona.active_to, persona.active_from))
        d = today - dt.timedelta(days=ago)
        weekend = d.weekday() >= 5
        # accept weekend days with the person's weekend share (5 weekdays vs 2 weekend days)
        p = h["weekend"] / 2 if weekend else (1 - h["weekend"]) / 5
        if rng.random() < p * 3.5:
            return d
    return d


def _channel(rng: random.Random, h: dict[str, Any], options: tuple[str, ...]) -> str:
    if h["channel"] in options and rng.random() < 0.7:
        return h["channel"]
    return rng.choice(options)


def events_for_person(
    person_id: str,
    attrs: dict[str, Any],
    *,
    seed: int,
    now: dt.datetime,
    persona: str | None = None,
) -> list[dict[str, Any]]:
    """Segment-shaped track events (``event``, ``timestamp`` (UTC), ``properties``, ``context``) of one
    person, oldest first. ``persona`` forces one (kol, engaged, occasional, new, dormant, churned, silent)."""
    per = PERSONAS_BY_NAME[persona] if persona else persona_of(person_id, attrs, seed)
    rng = random.Random(f"{seed}:events:{person_id}")
    h = _habits(rng, attrs)
    if per.per_90d <= 0:
        return []
    span = max(1, per.active_from - per.active_to)
    n = max(1, round(rng.gauss(per.per_90d * span / 90, per.per_90d * span / 360)))
    today = now.astimezone(CHINA).date()
    out: list[dict[str, Any]] = []

    def emit(name: str, ts: dt.datetime, channel: str, **props: Any) -> None:
        if ts > now:
            ts = now - dt.timedelta(minutes=rng.randrange(1, 600))
        out.append(
            {
                "event": name,
                "timestamp": ts,
                "properties": {**props, "channel": channel},
                "context": {
                    "channel": channel,
                    "timezone": "Asia/Shanghai",
                    "library": {"name": "medscrm-synth", "version": "1"},
                },
            }
        )

    for _ in range(n):
        area = _pick(rng, h["areas"])
        t_idx = h["fav_topic"] if rng.random() < 0.6 and area == max(h["areas"], key=h["areas"].get) else None
        topic, concept = TOPICS[area][t_idx if t_idx is not None else rng.randrange(len(TOPICS[area]))]
        content_id = f"ct_{AREA_CODES[area]}_{TOPICS[area].index((topic, concept)) + 1:02d}"
        day = _day(rng, h, per, today)
        ts = _when(rng, h, day)
        common = {
            "therapy_area": area,
            "topic": topic,
            "treatment_concept": concept,
            "content_id": content_id,
        }
        r = rng.random()
        if r < per.academic:
            if rng.random() < 0.6:
                webinar = f"wb_{AREA_CODES[area]}_{day:%Y%m}"
                reg_ts = ts - dt.timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 5))
                emit("Webinar Registered", reg_ts, "webinar", webinar_id=webinar, **common)
                if rng.random() < 0.75:
                    emit(
                        "Webinar Attended",
                        ts,
                        "webinar",
                        webinar_id=webinar,
                        minutes=round(rng.uniform(15, 90), 1),
                        **common,
                    )
            else:
                emit(
                    "Meeting Attended",
                    ts,
                    "offline",
                    meeting_id=f"mt_{AREA_CODES[area]}_{day:%Y%m%d}",
                    meeting_type=rng.choice(("科室会", "城市会", "学术年会卫星会")),
                    role="speaker" if per.name == "kol" and rng.random() < 0.3 else "attendee",
                    **common,
                )
        elif r < per.academic + 0.45:
            emit(
                "Article Viewed",
                ts,
                _channel(rng, h, ("wechat", "wecom", "email", "web", "sms")),
                minutes=round(min(30.0, rng.expovariate(1 / 4)) + 0.2, 1),
                **common,
            )
        elif r < per.academic + 0.62:
            emit(
                "Video Watched",
                ts,
                _channel(rng, h, ("wechat", "web", "wecom")),
                minutes=round(rng.uniform(1, 25), 1),
                **common,
            )
        elif r < per.academic + 0.77:
            emit("WeCom Message Replied", ts, "wecom", rep_topic=topic, therapy_area=area)
        else:
            emit(
                "Survey Completed",
                ts,
                _channel(rng, h, ("wechat", "email", "sms", "wecom")),
                survey_id=f"sv_{AREA_CODES[area]}_{day:%Y%m}",
                nps=rng.randint(5, 10),
                therapy_area=area,
                treatment_concept=concept,
            )
        if rng.random() < per.advocate / 6:
            emit(
                "Content Shared",
                ts + dt.timedelta(minutes=rng.randint(1, 90)),
                "wechat",
                shared_to=rng.choice(("科室群", "朋友圈", "同行")),
                **common,
            )
    if per.convert and rng.random() < per.convert:
        k = 1 + (rng.random() < per.convert)  # converted HCPs may ask twice
        main = max(h["areas"], key=h["areas"].get)
        for _ in range(k):
            day = _day(rng, h, per, today)
            ts = _when(rng, h, day)
            if rng.random() < 0.5:
                emit(
                    "Sample Requested",
                    ts,
                    _channel(rng, h, ("wecom", "web")),
                    therapy_area=main,
                    product=f"{AREA_CODES[main].upper()}-{rng.randint(1, 3)}",
                    quantity=rng.randint(1, 5),
                )
            else:
                emit(
                    "Prescription Intent",
                    ts,
                    "wecom",
                    therapy_area=main,
                    product=f"{AREA_CODES[main].upper()}-{rng.randint(1, 3)}",
                    intent=rng.choice(("trial", "expand")),
                )
    out.sort(key=lambda e: e["timestamp"])
    return out


def generate_events(
    conn: sa.Connection,
    *,
    tenant_id: str,
    seed: int = 7,
    now: dt.datetime | None = None,
    person_ids: list[str] | None = None,
    person_type: str = "hcp",
    personas: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write synthetic behaviour for the tenant's active persons of ``person_type`` (or ``person_ids``)
    into ``events`` through the bulk path, from a source named ``synth-behaviour``. Idempotent per
    (seed, person): message ids are derived from them. ``personas`` forces person → persona.
    Returns ``{"persons", "events", "inserted", "personas": {name: n}}``."""

    now = now or utcnow().replace(minute=0, second=0, microsecond=0)
    src = accounts.ensure_source(conn=conn, tenant_id=tenant_id, name=SOURCE_NAME, kind="segment")
    p = persons
    q = sa.select(p.c.id, p.c.attributes).where(p.c.tenant_id == tenant_id, p.c.status == "active")
    if person_ids is not None:
        q = q.where(p.c.id.in_(person_ids))
    else:
        q = q.where(p.c.person_type == person_type)
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    n_persons = 0
    received = now
    for pid, attrs in conn.execute(q.order_by(p.c.id)).all():
        n_persons += 1
        forced = (personas or {}).get(pid)
        per = forced or persona_of(pid, attrs or {}, seed).name
        counts[per] = counts.get(per, 0) + 1
        for i, ev in enumerate(events_for_person(pid, attrs or {}, seed=seed, now=now, persona=per)):
            rows.append(
                {
                    "id": new_id("ev"),
                    "tenant_id": tenant_id,
                    "source_id": src["id"],
                    "message_id": f"synth-{seed}-{pid}-{i}",
                    "type": "track",
                    "event": ev["event"],
                    "user_id": None,
                    "anonymous_id": None,
                    "person_id": pid,
                    "timestamp": ev["timestamp"],
                    "original_timestamp": ev["timestamp"],
                    "sent_at": ev["timestamp"],
                    "received_at": received,
                    "properties": ev["properties"],
                    "traits": None,
                    "context": ev["context"],
                }
            )
    inserted, total = 0, len(rows)
    held = conn.execute(
        sa.select(events.c.id)
        .where(events.c.tenant_id == tenant_id, events.c.source_id == src["id"])
        .limit(1)
    ).first()
    if held is None:  # the first run: nothing to de-duplicate against
        for i in range(0, len(rows), 50_000):
            inserted += append_rows(conn, events, rows[i : i + 50_000])
        rows = []
    for i in range(0, len(rows), 50_000):
        inserted += insert_new(
            conn,
            events,
            rows[i : i + 50_000],
            match=["tenant_id", "source_id", "message_id"],
            where=[events.c.tenant_id == tenant_id, events.c.source_id == src["id"]],
        )
    return {"persons": n_persons, "events": total, "inserted": inserted, "personas": counts}
