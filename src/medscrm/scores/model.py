"""From features to tags and scores, with the reason of each (the rules of ``rules.yaml``).

Pure functions of (features, configuration, now): the batch and the per-person refresh call the same
code on the same features, so they agree by construction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medscrm.access import PRESCRIPTION_EVENTS  # hidden from roles without prescriptions.read
from medscrm.scores.features import PersonFeatures

#: Bilingual names of the tags and scores (tag definitions, docs, the console).
TAGS: dict[str, tuple[str, str, str, str]] = {
    # key: (name_zh, name_en, refresh, description)
    "potential_tier": (
        "潜力分级",
        "potential tier",
        "realtime",
        "A/B/C from hospital grade, title, department fit with the tenant's therapy areas and engagement",
    ),
    "aipl": ("AIPL 阶段", "AIPL stage", "realtime", "aware / interest / purchase / loyal"),
    "lifecycle": (
        "生命周期阶段",
        "lifecycle stage",
        "realtime",
        "registered → adopted → active / advocate → converted; dormant / churned",
    ),
    "content_preference": (
        "内容偏好",
        "content preference",
        "realtime",
        "top therapy area, weighted by engagement and recency",
    ),
    "treatment_concept": (
        "治疗理念偏好",
        "treatment concept",
        "realtime",
        "top treatment concept of the content engaged with",
    ),
    "channel_preference": (
        "渠道偏好",
        "channel preference",
        "realtime",
        "wecom/wechat/sms/email/webinar/web",
    ),
    "time_preference": (
        "时段偏好",
        "time-of-day preference",
        "realtime",
        "morning 06–11, noon 11–14, afternoon 14–18, evening 18–22, night 22–06 (China time)",
    ),
    "weekday_preference": ("工作日/周末偏好", "weekday preference", "realtime", "weekday or weekend"),
    "activity_level": ("活跃度", "activity level", "realtime", "high/medium/low/none: events in 30 days"),
    "academic_interest": (
        "学术兴趣",
        "academic interest",
        "realtime",
        "high/medium/low: decayed webinar, meeting and reading points in 90 days",
    ),
    "micro_segment": (
        "微分群",
        "micro-segment",
        "scheduled",
        "k-means cluster on standardised behaviour features (see the micro-segment descriptions)",
    ),
}
REALTIME_TAGS = tuple(k for k, v in TAGS.items() if v[2] == "realtime")
SCORES: dict[str, tuple[str, str]] = {
    "lead_score": ("线索评分", "lead score (0–100, time-decayed)"),
    "engagement": ("互动评分", "engagement score (0–100)"),
    "potential": ("潜力分", "potential points (0–100, behind the tier)"),
    "academic": ("学术兴趣分", "academic points (decayed, 90 days)"),
}

EVENT_ZH = {
    "Article Viewed": "文章阅读",
    "Video Watched": "视频观看",
    "Webinar Registered": "会议报名",
    "Webinar Attended": "线上会参会",
    "Meeting Attended": "线下会参会",
    "Survey Completed": "问卷完成",
    "WeCom Message Replied": "企微回复",
    "Content Shared": "内容转发",
    "Sample Requested": "样品申请",
    "Prescription Intent": "处方意向",
}
SLOT_ZH = {"morning": "上午", "noon": "中午", "afternoon": "下午", "evening": "晚间", "night": "深夜"}
CHANNEL_ZH = {
    "wecom": "企业微信",
    "wechat": "微信公众号",
    "sms": "短信",
    "email": "邮件",
    "webinar": "线上会",
    "web": "网站",
}
#: the tags that make up a person's stage (``stage_of``, the profile's ``stage``)
STAGE_TAGS = ("lifecycle", "aipl", "potential_tier", "micro_segment")


def stage_from_tags(tags: dict[str, Any]) -> dict[str, Any]:
    """``{lifecycle, aipl, potential_tier, micro_segment}`` from ``{tag_key: value}`` (None where absent)."""
    return {k: tags.get(k) for k in STAGE_TAGS}


STAGE_ZH = {
    "registered": "已注册",
    "adopted": "已接纳",
    "active": "活跃",
    "advocate": "倡导者",
    "converted": "已转化",
    "dormant": "沉睡",
    "churned": "流失",
    "aware": "认知",
    "interest": "兴趣",
    "purchase": "购买",
    "loyal": "忠诚",
}


@dataclass
class Outcome:
    tags: dict[str, tuple[str | None, dict[str, Any]]]  # key -> (value or None, reason)
    scores: dict[str, tuple[float, dict[str, Any]]]  # key -> (value, reason)


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


@lru_cache(maxsize=1)
def _hospital_index() -> dict[str, list[dict]]:
    # lazy: keeps `medscrm --help` light
    from medscrm.reference import hospitals_by_alias

    return hospitals_by_alias()


def _grade(profile: dict[str, Any]) -> str | None:
    g = profile.get("hospital_grade")
    if g:
        return str(g)
    h = profile.get("hospital")
    if not h:
        return None
    cands = _hospital_index().get(str(h), [])
    city = profile.get("city")
    if city:
        same_city = [c for c in cands if c["city"] == city]
        cands = same_city or ([] if len(cands) > 1 else cands)
    grades = {c["grade"] for c in cands}
    return grades.pop() if len(grades) == 1 else None


#: How the department fits the tenant's therapy areas, in the Chinese reason text.
_FIT_ZH = {"main": "主要领域", "related": "相关领域", "none": "不相关"}


def potential(f: PersonFeatures, engagement: float, cfg: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    t = cfg["potential_tier"]
    grade = _grade(f.profile)
    gp = t["grade_points"].get(grade, t["default_grade_points"]) if grade else t["default_grade_points"]
    title = f.profile.get("title")
    tp = t["title_points"].get(title, t["default_title_points"]) if title else t["default_title_points"]
    dept = f.profile.get("department")
    areas = cfg["department_areas"].get(dept or "", [])
    focus = set(cfg["tenant"]["therapy_areas"])
    if areas and areas[0] in focus:
        fit, fp = "main", t["department_fit_points"]["main"]
    elif focus & set(areas):
        fit, fp = "related", t["department_fit_points"]["related"]
    else:
        fit, fp = "none", 0
    ep = engagement * t["engagement_weight"]
    total = gp + tp + fp + ep
    th = t["thresholds"]
    tier = "A" if total >= th["A"] else "B" if total >= th["B"] else "C"
    reason = {
        "rule": "potential_tier",
        "points": _r(total, 1),
        "hospital_grade": grade,
        "grade_points": gp,
        "title": title,
        "title_points": tp,
        "department": dept,
        "department_fit": fit,
        "department_points": fp,
        "engagement": _r(engagement, 1),
        "engagement_points": _r(ep, 1),
        "thresholds": th,
        "text_en": f"{_r(total, 1)} points: grade {grade or '?'} {gp}, title {title or '?'} {tp}, "
        f"department fit {fit} {fp}, engagement {_r(ep, 1)} → {tier}",
        "text_zh": f"{_r(total, 1)} 分：医院等级 {grade or '未知'} {gp}，职称 {title or '未知'} {tp}，"
        f"科室匹配 {_FIT_ZH.get(fit, fit)} {fp}，互动 {_r(ep, 1)} → {tier}",
    }
    return tier, total, reason


def _top(f: PersonFeatures, dim: str, cfg: dict[str, Any]) -> dict[str, Any] | None:
    lst = f.dims.get(dim) or []
    if not lst or lst[0]["n"] < cfg["min_events_for_preference"]:
        return None
    return lst[0]


def _ago(now: dt.datetime, ts: dt.datetime | None) -> float | None:
    return None if ts is None else (now - ts).total_seconds() / 86400


def lifecycle(f: PersonFeatures, cfg: dict[str, Any], now: dt.datetime) -> tuple[str, dict[str, Any]]:
    lc = cfg["lifecycle"]
    w = cfg["windows"]
    last = _ago(now, f.last_ts)
    base = {
        "rule": "lifecycle",
        "last_event_days_ago": None if last is None else _r(last, 1),
        "events_in_activity_window": f.n_activity,
        "active_days": f.days_activity,
        "conversions_in_window": f.conversions_recent,
        "advocacy_events": f.advocacy,
    }
    if last is None:
        return "registered", {
            **base,
            "text_en": f"no events in {w['history']} days",
            "text_zh": f"{w['history']} 天内无行为",
        }
    if last > lc["churned_after_days"]:
        return "churned", {
            **base,
            "text_en": f"last event {last:.0f} days ago (> {lc['churned_after_days']})",
            "text_zh": f"最近一次行为在 {last:.0f} 天前（超过 {lc['churned_after_days']} 天）",
        }
    if last > lc["dormant_after_days"]:
        return "dormant", {
            **base,
            "text_en": f"last event {last:.0f} days ago (> {lc['dormant_after_days']})",
            "text_zh": f"最近一次行为在 {last:.0f} 天前（超过 {lc['dormant_after_days']} 天）",
        }
    if f.conversions_recent >= lc["converted_min"]:
        return "converted", {
            **base,
            "text_en": f"{f.conversions_recent} conversion event(s) (sample request / prescription intent) "
            f"in {w['conversion']} days",
            "text_zh": f"{w['conversion']} 天内转化行为（样品申请/处方意向）{f.conversions_recent} 次",
        }
    active = f.n_activity >= lc["active_min_events"] and f.days_activity >= lc["active_min_days"]
    if active and f.advocacy >= lc["advocate_min"]:
        return "advocate", {
            **base,
            "text_en": f"active ({f.n_activity} events on {f.days_activity} days in {w['activity']} days) and "
            f"{f.advocacy} content share(s) in {w['preference']} days",
            "text_zh": f"活跃（{w['activity']} 天内 {f.days_activity} 天有 {f.n_activity} 次行为）且 "
            f"{w['preference']} 天内转发内容 {f.advocacy} 次",
        }
    if active:
        return "active", {
            **base,
            "text_en": f"{f.n_activity} events on {f.days_activity} days in {w['activity']} days",
            "text_zh": f"{w['activity']} 天内 {f.days_activity} 天有 {f.n_activity} 次行为",
        }
    return "adopted", {
        **base,
        "text_en": f"engaged {last:.0f} days ago, not (yet) active",
        "text_zh": f"{last:.0f} 天前有互动，尚未达到活跃",
    }


def aipl(f: PersonFeatures, cfg: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    a = cfg["aipl"]
    w = cfg["windows"]
    base = {"rule": "aipl", "conversions_history": f.conversions_history, "interest_events": f.interest}
    if f.n_history == 0:
        return None, {**base, "text_en": "no events", "text_zh": "无行为"}
    if f.conversions_history >= a["loyal_min_conversions"] and f.n_activity > 0:
        return "loyal", {
            **base,
            "text_en": f"{f.conversions_history} conversions in {w['history']} days and active in {w['activity']} days",
            "text_zh": f"{w['history']} 天内转化 {f.conversions_history} 次且近 {w['activity']} 天仍活跃",
        }
    if f.conversions_recent >= a["purchase_min_conversions"]:
        return "purchase", {
            **base,
            "text_en": f"{f.conversions_recent} conversion event(s) in {w['conversion']} days",
            "text_zh": f"{w['conversion']} 天内转化行为 {f.conversions_recent} 次",
        }
    if f.interest >= a["interest_min_events"]:
        return "interest", {
            **base,
            "text_en": f"{f.interest} content/academic interactions in {w['preference']} days",
            "text_zh": f"{w['preference']} 天内内容/学术互动 {f.interest} 次",
        }
    return "aware", {
        **base,
        "text_en": f"{f.n_history} event(s) in {w['history']} days, little interaction",
        "text_zh": f"{w['history']} 天内 {f.n_history} 次行为，互动较少",
    }


def _event_summary(f: PersonFeatures, key: str = "n") -> list[dict[str, Any]]:
    items = sorted(f.by_event.items(), key=lambda kv: (-kv[1]["lead"], kv[0]))
    return [{"event": e, "n": int(v[key]), "points": _r(v["lead"])} for e, v in items]


Reason = dict[str, Any]
TagValue = tuple[str | None, Reason]


def derive(f: PersonFeatures, cfg: dict[str, Any], now: dt.datetime) -> Outcome:
    """Every tag and score of one person, each with its reason (in a stable key order)."""
    engagement, engagement_reason = _engagement(f, cfg)
    tier, pot, pot_reason = potential(f, engagement, cfg)
    scores: dict[str, tuple[float, Reason]] = {
        "engagement": (_r(engagement), engagement_reason),
        "potential": (_r(pot), pot_reason),
        "lead_score": _lead_score(f, cfg, tier),
        "academic": _academic_score(f, cfg),
    }
    tags: dict[str, TagValue] = {
        "potential_tier": (tier, pot_reason),
        "lifecycle": lifecycle(f, cfg, now),
        "aipl": aipl(f, cfg),
        "activity_level": _activity_level(f, cfg),
        "academic_interest": _academic_interest(f, cfg),
        "content_preference": _content_preference(f, cfg),
        "treatment_concept": _treatment_concept(f, cfg),
        "channel_preference": _channel_preference(f, cfg),
        "time_preference": _time_preference(f, cfg),
        "weekday_preference": _weekday_preference(f, cfg),
    }
    return Outcome(tags=tags, scores=scores)


def _engagement(f: PersonFeatures, cfg: dict[str, Any]) -> tuple[float, Reason]:
    """Recency-weighted engagement, 0–100 (unrounded: the potential tier reads it)."""
    w, hl = cfg["windows"], cfg["half_life_days"]
    eng_scale = cfg["scores"]["engagement"]["scale"]
    engagement = 100 * (1 - math.exp(-f.engagement_points / eng_scale))
    return engagement, {
        "rule": "engagement",
        "points": _r(f.engagement_points),
        "scale": eng_scale,
        "half_life_days": hl["preference"],
        "window_days": w["preference"],
        "events": f.n_preference,
        "text_en": f"{_r(f.engagement_points, 1)} recency-weighted points from {f.n_preference} events "
        f"in {w['preference']} days (half-life {hl['preference']} d)",
        "text_zh": f"{w['preference']} 天内 {f.n_preference} 次行为，按时间衰减（半衰期 {hl['preference']} 天）"
        f"加权 {_r(f.engagement_points, 1)} 分",
    }


def _lead_score(f: PersonFeatures, cfg: dict[str, Any], tier: str) -> tuple[float, Reason]:
    """Decayed lead points plus the fit points of the potential tier, 0–100."""
    w, hl = cfg["windows"], cfg["half_life_days"]
    fit = cfg["scores"]["lead"]["fit_points"].get(tier, 0)
    lead_scale = cfg["scores"]["lead"]["scale"]
    lead = 100 * (1 - math.exp(-(f.lead_points + fit) / lead_scale)) if (f.lead_points + fit) > 0 else 0.0
    return (
        _r(lead),
        {
            "rule": "lead_score",
            "points": _r(f.lead_points),
            "fit_points": fit,
            "tier": tier,
            "scale": lead_scale,
            "half_life_days": hl["lead"],
            "window_days": w["history"],
            "events": _event_summary(f),
            "text_en": f"{_r(f.lead_points, 1)} decayed points from {f.n_history} events in {w['history']} days "
            f"(half-life {hl['lead']} d) + {fit} fit points (tier {tier})",
            "text_zh": f"{w['history']} 天内 {f.n_history} 次行为按时间衰减（半衰期 {hl['lead']} 天）"
            f"{_r(f.lead_points, 1)} 分 + 潜力 {tier} 级加分 {fit}",
        },
    )


def _academic_score(f: PersonFeatures, cfg: dict[str, Any]) -> tuple[float, Reason]:
    w, hl = cfg["windows"], cfg["half_life_days"]
    return (
        _r(f.academic_points),
        {
            "rule": "academic",
            "half_life_days": hl["preference"],
            "window_days": w["preference"],
            "text_en": f"decayed webinar, meeting and reading points in {w['preference']} days",
            "text_zh": f"{w['preference']} 天内线上会、线下会与阅读的衰减得分",
        },
    )


def _activity_level(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    w = cfg["windows"]
    al = cfg["activity_level"]
    level = (
        "high"
        if f.n_activity >= al["high"]
        else "medium"
        if f.n_activity >= al["medium"]
        else "low"
        if f.n_activity >= al["low"]
        else "none"
    )
    return (
        level,
        {
            "rule": "activity_level",
            "events": f.n_activity,
            "window_days": w["activity"],
            "thresholds": al,
            "text_en": f"{f.n_activity} events in {w['activity']} days",
            "text_zh": f"{w['activity']} 天内 {f.n_activity} 次行为",
        },
    )


def _academic_interest(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    if not f.n_preference:
        return (None, {"rule": "academic_interest", "text_en": "no events", "text_zh": "无行为"})
    w = cfg["windows"]
    ai = cfg["academic_interest"]
    pts = f.academic_points
    lvl = "high" if pts >= ai["high"] else "medium" if pts >= ai["medium"] else "low"
    acad_events = {
        e: v["n_pref"] for e, v in f.by_event.items() if e in cfg["academic_points"] and v["n_pref"]
    }
    return (
        lvl,
        {
            "rule": "academic_interest",
            "points": _r(pts),
            "events": acad_events,
            "thresholds": ai,
            "text_en": f"{_r(pts, 1)} decayed academic points in {w['preference']} days: "
            + ", ".join(f"{e} ×{n}" for e, n in sorted(acad_events.items())),
            "text_zh": f"{w['preference']} 天内学术行为得分 {_r(pts, 1)}："
            + "，".join(f"{EVENT_ZH.get(e, e)} {n} 次" for e, n in sorted(acad_events.items())),
        },
    )


def _top_tag(
    f: PersonFeatures, cfg: dict[str, Any], dim: str, rule: str, reason: Callable[[dict[str, Any]], Reason]
) -> TagValue:
    """A preference tag: the top value of dimension ``dim`` with ``reason(top)``, or no value when
    there are too few events."""
    top = _top(f, dim, cfg)
    if not top:
        return (None, {"rule": rule, "text_en": "too few events"})
    return (top["value"], {"rule": rule, **reason(top)})


def _content_preference(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    w = cfg["windows"]
    return _top_tag(
        f,
        cfg,
        "therapy_area",
        "content_preference",
        lambda top: {
            "events": top["n"],
            "article_views": top["views"],
            "weight": _r(top["w"]),
            "window_days": w["preference"],
            "mix": {d["value"]: d["n"] for d in f.dims["therapy_area"]},
            "text_en": f"{top['n']} events on {top['value']} in {w['preference']} days "
            f"({top['views']} article views), weighted by engagement and recency",
            "text_zh": f"{w['preference']} 天内 {top['value']} 相关行为 {top['n']} 次（文章阅读 {top['views']} 次），"
            "按互动深度与时间衰减加权",
        },
    )


def _treatment_concept(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    w = cfg["windows"]
    return _top_tag(
        f,
        cfg,
        "treatment_concept",
        "treatment_concept",
        lambda top: {
            "events": top["n"],
            "weight": _r(top["w"]),
            "text_en": f"{top['n']} engagements with content on {top['value']} in {w['preference']} days",
            "text_zh": f"{w['preference']} 天内与“{top['value']}”相关内容互动 {top['n']} 次",
        },
    )


def _channel_preference(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    w = cfg["windows"]
    return _top_tag(
        f,
        cfg,
        "channel",
        "channel_preference",
        lambda top: {
            "events": top["n"],
            "weight": _r(top["w"]),
            "mix": {d["value"]: d["n"] for d in f.dims["channel"]},
            "text_en": f"{top['n']} interactions via {top['value']} in {w['preference']} days",
            "text_zh": f"{w['preference']} 天内通过{CHANNEL_ZH.get(top['value'], top['value'])}互动 {top['n']} 次",
        },
    )


def _time_preference(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    return _top_tag(
        f,
        cfg,
        "time_slot",
        "time_preference",
        lambda top: {
            "events": top["n"],
            "weight": _r(top["w"]),
            "timezone": "Asia/Shanghai",
            "mix": {d["value"]: d["n"] for d in f.dims["time_slot"]},
            "text_en": f"{top['n']} of {f.n_preference} events in the {top['value']} slot (China time)",
            "text_zh": f"{f.n_preference} 次行为中 {top['n']} 次在{SLOT_ZH.get(top['value'], top['value'])}（北京时间）",
        },
    )


def _weekday_preference(f: PersonFeatures, cfg: dict[str, Any]) -> TagValue:
    if not (f.n_preference >= cfg["min_events_for_preference"] and f.preference_w > 0):
        return (None, {"rule": "weekday_preference", "text_en": "too few events"})
    share = f.weekend_w / f.preference_w
    value = "weekend" if share >= cfg["weekday_preference"]["weekend_share"] else "weekday"
    return (
        value,
        {
            "rule": "weekday_preference",
            "weekend_share": _r(share, 3),
            "threshold": cfg["weekday_preference"]["weekend_share"],
            "text_en": f"{share:.0%} of recent activity on weekends",
            "text_zh": f"近期 {share:.0%} 的行为发生在周末",
        },
    )


def hide_prescription_detail(reason: Any) -> Any:
    """A reason without per-HCP prescription information (for roles without prescriptions.read)."""
    if isinstance(reason, dict):
        out = {}
        for k, v in reason.items():
            if k == "events" and isinstance(v, list):
                v = [x for x in v if not (isinstance(x, dict) and x.get("event") in PRESCRIPTION_EVENTS)]
            elif k == "events" and isinstance(v, dict):
                v = {e: n for e, n in v.items() if e not in PRESCRIPTION_EVENTS}
            out[k] = hide_prescription_detail(v) if isinstance(v, dict) else v
        return out
    return reason
