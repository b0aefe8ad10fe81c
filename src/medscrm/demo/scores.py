"""The demo's behaviour step: synthetic behaviour for the demo HCPs, scores, stages, micro-segments."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from medscrm.common import utcnow
from medscrm.scores.model import STAGE_ZH

DEMO_BEHAVIOUR_SEGMENTS = {
    "tier_a_heart_failure": (
        "A-tier HCPs reading on heart failure · A 级心衰内容偏好医生",
        {
            "and": [
                {"tag": "potential_tier", "op": "eq", "value": "A"},
                {"tag": "content_preference", "op": "eq", "value": "心衰"},
            ]
        },
    ),
    "dormant_high_potential": (
        "dormant A/B-tier HCPs to win back · 待唤醒的高潜沉睡医生",
        {
            "and": [
                {"tag": "lifecycle", "op": "in", "value": ["dormant", "churned"]},
                {"tag": "potential_tier", "op": "in", "value": ["A", "B"]},
            ]
        },
    ),
}


def behaviour_step(ws, *, console: Console, seed: int = 7, k: int = 6) -> dict:
    """Generate behaviour events for the demo persons, refresh tags/scores and micro-segments, create
    two segments on the model's tags, print a short bilingual summary. Returns the figures."""
    # lazy: keeps `medscrm --help` light

    from medscrm.scores.schedule import record

    # lazy: keeps `medscrm --help` light
    from medscrm.scores.service import distributions, refresh_all
    from medscrm.segments import service as segments
    from medscrm.synth.events import generate_events

    t0 = time.perf_counter()
    now = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)  # same day, same events
    with ws.engine.begin() as conn:
        ev = generate_events(conn, tenant_id=ws.tenant_id, seed=seed, now=now)
    with ws.engine.begin() as conn:
        res = refresh_all(conn, tenant_id=ws.tenant_id, now=now, micro=True, k=k)
        record(conn, tenant_id=ws.tenant_id, now=now, actor="demo", res=res)
        micro = res["micro_segments"]
        dist = distributions(conn, tenant_id=ws.tenant_id)  # with the micro-segments
    seg_counts = []
    with ws.engine.begin() as conn:
        existing = {s["key"] for s in segments.list_segments(conn, tenant_id=ws.tenant_id)}
        for key, (name, rule) in DEMO_BEHAVIOUR_SEGMENTS.items():
            if key in existing:
                seg = segments.refresh(conn, tenant_id=ws.tenant_id, key=key)
            else:
                seg = segments.create(
                    conn, tenant_id=ws.tenant_id, key=key, rule=rule, name=name, created_by="demo"
                )
            seg_counts.append((key, name, int(seg.get("member_count") or 0)))
    console.print(
        f"   behaviour · 行为: {ev['inserted']:,} new events for {ev['persons']:,} HCPs; "
        f"{res['persons']:,} scored ({time.perf_counter() - t0:.1f}s)"
    )
    print_distributions(dist, console)
    print_micro(micro, console)
    for key, name, n in seg_counts:
        console.print(f"   segment · 分群 {key}: {n:,}  ({name})")
    return {"events": ev, "scored": res["persons"], "micro": micro, "segments": seg_counts}


def print_distributions(dist: dict, out: Console) -> None:
    """Tier / AIPL / lifecycle / activity counts, bilingual."""
    t = Table("tag · 标签", "value · 取值", "persons · 人数", title="Behaviour model · 行为模型")
    for key, label in (
        ("potential_tier", "potential tier · 潜力分级"),
        ("lifecycle", "lifecycle · 生命周期"),
        ("aipl", "AIPL"),
        ("activity_level", "activity · 活跃度"),
        ("content_preference", "content · 内容偏好"),
        ("channel_preference", "channel · 渠道偏好"),
    ):
        for i, (v, n) in enumerate(dist["tags"].get(key, {}).items()):
            name = f"{v} · {STAGE_ZH[v]}" if v in STAGE_ZH else v
            t.add_row(label if i == 0 else "", name, f"{n:,}")
    out.print(t)
    s = dist["scores"]
    out.print(
        f"lead score · 线索评分: mean {s['lead_score']['mean']} over {s['lead_score']['count']:,} persons; "
        f"engagement · 互动评分: mean {s['engagement']['mean']}"
    )


def print_micro(rows: list[dict], out: Console) -> None:
    """The micro-segments with what sets each apart, bilingual."""
    t = Table("segment · 微分群", "size · 人数", "what sets it apart · 特征", title="Micro-segments · 微分群")
    for r in rows:
        t.add_row(r["label"], f"{r['size']:,}", f"{r['description_zh']}\n{r['description_en']}")
    out.print(t)
