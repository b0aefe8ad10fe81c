"""The demo's behaviour step: synthetic behaviour for the demo HCPs, scores, stages, micro-segments."""

from __future__ import annotations

import time

from rich.console import Console

from medscrm.common import utcnow

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
    from medscrm.scores.cli import print_distributions, print_micro
    from medscrm.scores.schedule import record
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
