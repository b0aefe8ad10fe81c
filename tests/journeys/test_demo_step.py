"""The demo's journey step on a small tenant: the webinar journey runs a simulated week."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from rich.console import Console

from journeys.support import define_tags, make_persons
from medscrm.db.schema import events, tasks
from medscrm.demo.journeys import journey_step
from medscrm.segments import service as segs


@dataclass
class _WS:
    engine: sa.Engine
    tenant_id: str
    tenant_slug: str


def test_demo_journey_step(tenant):
    with tenant.engine.begin() as c:
        make_persons(
            c,
            tenant.id,
            24,
            lambda i: {
                "email": f"d{i}@h.example",
                "license_no": f"{110101000000000 + i}",
                **({"wecom_external_userid": f"wmX{i}", "rep_userid": "rep01"} if i % 4 == 0 else {}),
            },
        )
        define_tags(c, tenant.id, "potential_tier")
        segs.create(
            c,
            tenant_id=tenant.id,
            key="senior_cardiology",
            rule={"attr": "department", "op": "eq", "value": "心血管内科"},
        )
    console = Console(record=True, width=200)
    res = journey_step(_WS(tenant.engine, tenant.id, tenant.slug), console=console)
    out = console.export_text()
    assert "webinar_hf" in out and "进入" in out and "blocked" in out
    assert res["enrolled"] == 12  # the cardiologists
    stats = {s["step_id"]: s for s in res["stats"]}
    assert stats["choose_channel"]["entered"] == 12
    assert stats["invite_wecom"]["entered"] == 6 and stats["invite_email"]["entered"] >= 6
    assert stats["reminder"]["entered"] == 12 and stats["attended"]["entered"] == 12
    assert stats["slides"]["entered"] + stats["replay"]["entered"] == 12
    assert sum(res["counts"].values()) == 12 and "active" not in res["counts"]
    assert res["counts"].get("converted", 0) == stats["converted"]["entered"] == res["tasks"]
    with tenant.engine.connect() as c:
        assigned = set(c.execute(sa.select(tasks.c.assignee).where(tasks.c.tenant_id == tenant.id)).scalars())
    assert assigned <= {"rep01", None}


def test_demo_journey_step_when_nobody_attends(tenant, monkeypatch):
    """A tenant so small that no enrolled doctor attends the webinar (``medscrm demo --hcps 20``):
    the week still runs, and every enrollment ends without the attendance branch."""
    from medscrm.demo import journeys as demo

    share = demo._share
    monkeypatch.setattr(demo, "_share", lambda pid, salt: 1.0 if salt == "attend" else share(pid, salt))
    with tenant.engine.begin() as c:
        make_persons(
            c, tenant.id, 2, lambda i: {"email": f"n{i}@h.example", "license_no": f"{120101000000000 + i}"}
        )
        define_tags(c, tenant.id, "potential_tier")
        segs.create(
            c,
            tenant_id=tenant.id,
            key="senior_cardiology",
            rule={"attr": "department", "op": "eq", "value": "心血管内科"},
        )
    res = journey_step(_WS(tenant.engine, tenant.id, tenant.slug), console=Console(record=True, width=200))
    assert res["enrolled"] == 1
    assert sum(res["counts"].values()) == 1
    with tenant.engine.connect() as c:
        attended = c.execute(
            sa.select(sa.func.count())
            .select_from(events)
            .where(events.c.tenant_id == tenant.id, events.c.event == "Webinar Attended")
        ).scalar()
    assert attended == 0
