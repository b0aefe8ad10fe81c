"""The demo's journey step: the heart-failure webinar journey (examples/webinar.yaml) on the demo tenant.

Approved content, channel settings, consent for most HCPs, start, enrol the senior cardiologists,
then run the engine over a simulated week (attendance events arrive on day 3) and print per-step
statistics. With the bundled local provider stand-ins running (``providers``, see
:mod:`medscrm.devtools.demo_providers`) the queued sends are then dispatched to them: the e-mails
land in the SMTP sink and the WeCom messages in the WeCom API stand-in."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from importlib import resources
from typing import Any

import sqlalchemy as sa
import yaml
from rich.console import Console
from rich.table import Table

from medscrm.accounts import service as accounts
from medscrm.common import NotFound, new_id, utcnow
from medscrm.content import service as content
from medscrm.db.schema import events, journeys, segment_members, sends, tasks
from medscrm.devtools.demo_providers import channel_settings
from medscrm.journeys import engine as je
from medscrm.journeys import service as js
from medscrm.outreach import consent, send
from medscrm.outreach.settings import channel_config, configure_channel
from medscrm.tags import service as tags

CONTENT = {
    "webinar_hf_invite_wecom": (
        "wecom_template",
        "心衰线上学术会议邀请（企业微信）",
        "{{ name }}老师您好，诚邀您参加心衰线上学术会议。",
    ),
    "webinar_hf_invite_email": (
        "email_template",
        "心衰线上学术会议邀请",
        "尊敬的{{ name }}：诚邀您参加心衰线上学术会议。",
    ),
    "webinar_hf_reminder": (
        "email_template",
        "会议提醒：心衰线上学术会议",
        "尊敬的{{ name }}：会议即将开始，欢迎准时参加。",
    ),
    "webinar_hf_slides": (
        "email_template",
        "会议课件：心衰诊疗新进展",
        "尊敬的{{ name }}：感谢参会，附上会议课件。",
    ),
    "webinar_hf_replay": (
        "email_template",
        "会议回放：心衰诊疗新进展",
        "尊敬的{{ name }}：错过了会议？欢迎观看回放。",
    ),
}


def _share(pid: str, salt: str) -> float:
    return int(hashlib.sha256(f"{salt}:{pid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _content(conn, tenant_id: str) -> None:
    for key, (kind, title, body) in CONTENT.items():
        try:
            content.get_item(conn, tenant_id=tenant_id, item_id=key)
            continue
        except NotFound:
            pass
        item = content.create_item(
            conn,
            tenant_id=tenant_id,
            key=key,
            title=title,
            kind=kind,
            audience="hcp_only",
            therapy_area="心衰",
            topics=["heart_failure", "webinar"],
            subject=title,
            body=body,
            url="https://example.org/webinar/hf-2026",
            actor="demo",
        )
        content.submit_for_review(conn, tenant_id=tenant_id, item_id=item["id"], actor="demo")
        content.approve(
            conn,
            tenant_id=tenant_id,
            item_id=item["id"],
            approval_code="MLR-2026-HF-0" + str(len(key) % 10),
            actor="compliance",
            actor_role="compliance",
            expires_at=utcnow() + dt.timedelta(days=365),
        )


def _channels(conn, tenant_id: str, providers=None) -> None:
    if providers is not None:  # the local stand-ins: point the channels at them (ports change per run)
        for channel, cfg in channel_settings(providers).items():
            configure_channel(
                conn,
                tenant_id=tenant_id,
                channel=channel,
                provider=cfg["provider"],
                settings=cfg["settings"],
                actor="demo",
            )
        return
    if channel_config(conn, tenant_id=tenant_id, channel="email") is None:
        configure_channel(
            conn,
            tenant_id=tenant_id,
            channel="email",
            provider="smtp",
            settings={"host": "127.0.0.1", "port": 2525, "from_addr": "medical@pharma.example"},
            actor="demo",
        )
    if channel_config(conn, tenant_id=tenant_id, channel="wecom") is None:
        configure_channel(
            conn,
            tenant_id=tenant_id,
            channel="wecom",
            provider="wecom",
            settings={"corp_id": "ww-demo", "corp_secret": "demo-secret", "base_url": "http://127.0.0.1:9"},
            actor="demo",
        )


def _free_key(conn, tenant_id: str, base: str) -> str:
    taken = set(conn.execute(sa.select(journeys.c.key).where(journeys.c.tenant_id == tenant_id)).scalars())
    if base not in taken:
        return base
    i = 2
    while f"{base}_r{i}" in taken:
        i += 1
    return f"{base}_r{i}"


def journey_step(ws, *, console: Console, max_persons: int = 30, providers=None) -> dict[str, Any]:
    """Run the webinar journey on the demo tenant with a simulated clock; print per-step statistics."""

    t0 = time.perf_counter()
    definition = yaml.safe_load(
        resources.files("medscrm.journeys").joinpath("examples/webinar.yaml").read_text("utf-8")
    )
    # the simulated week ends before now (events it writes must not lie in the future, where they would
    # hold the refresher's and triggers' watermarks): it starts 9 days ago at 10:00 China time (02:00 UTC)
    start = (utcnow() - dt.timedelta(days=9)).replace(hour=2, minute=0, second=0, microsecond=0)
    tid = ws.tenant_id
    with ws.engine.begin() as conn:
        _content(conn, tid)
        _channels(conn, tid, providers)
        if tags.get_definition(conn, tenant_id=tid, key="webinar_hf_attendee", missing_ok=True) is None:
            tags.define(
                conn,
                tenant_id=tid,
                key="webinar_hf_attendee",
                value_type="string",
                category="business_rule",
                name_zh="心衰会议参会者",
                name_en="heart-failure webinar attendee",
                owner="demo",
            )
        seg = je.segment_id(conn, tenant_id=tid, key="senior_cardiology")
        pids = list(
            conn.execute(
                sa.select(segment_members.c.person_id)
                .where(segment_members.c.tenant_id == tid, segment_members.c.segment_id == seg)
                .order_by(segment_members.c.person_id)
                .limit(max_persons)
            ).scalars()
        )
        granted: set[str] = set()
        for pid in pids:  # 80 % gave marketing consent on the webinar registration form
            if _share(pid, "consent") < 0.8:
                consent.set_consent(
                    conn,
                    tenant_id=tid,
                    person_id=pid,
                    channel="any",
                    purpose="marketing",
                    status="granted",
                    source="webinar_registration",
                    evidence={"form": "hf-2026"},
                    actor="demo",
                )
                granted.add(pid)
        key = _free_key(conn, tid, definition["key"])
        definition["key"] = key
        js.create(conn, tenant_id=tid, definition=definition, actor="demo", now=start)
        js.start(conn, tenant_id=tid, key=key, actor="demo", now=start)
        enrolled = js.enroll(conn, tenant_id=tid, key=key, person_ids=pids, actor="demo", now=start)
        source_id = accounts.ensure_source(conn=conn, tenant_id=tid, name="webinar_platform", kind="segment")[
            "id"
        ]
    attended = [p for p in pids if _share(p, "attend") < 0.45]
    for k in range(16):  # a simulated week, one tick every 12 hours
        now = start + dt.timedelta(hours=12 * k)
        if k == 7 and attended:  # the webinar (day 3.5): attendance arrives from the webinar platform
            with ws.engine.begin() as conn:
                conn.execute(
                    sa.insert(events),
                    [
                        {
                            "id": new_id("ev"),
                            "tenant_id": tid,
                            "source_id": source_id,
                            "message_id": f"demo-attend-{key}-{p}",
                            "type": "track",
                            "event": "Webinar Attended",
                            "person_id": p,
                            "timestamp": now,
                            "received_at": now,
                            "properties": {"webinar": "hf-2026", "minutes": 20 + int(_share(p, "min") * 70)},
                        }
                        for p in attended
                    ],
                )
        je.tick(ws.engine, worker_id="demo", now=now, tenant_id=tid, dispatch_sends=False)
    delivered = _dispatch(ws, end=start + dt.timedelta(days=8)) if providers is not None else None
    with ws.engine.connect() as conn:
        stats = js.step_stats(conn, tenant_id=tid, key=key)
        counts = js.enrollment_counts(conn, tenant_id=tid, key=key)
        jid = js.get_journey(conn, tenant_id=tid, key=key)["id"]
        n_tasks = conn.execute(
            sa.select(sa.func.count())
            .select_from(tasks)
            .where(tasks.c.tenant_id == tid, tasks.c.origin.startswith(f"journey:{jid}:", autoescape=True))
        ).scalar()
    t = Table(
        "step · 步骤",
        "name · 名称",
        "entered · 进入",
        "waiting · 等待",
        "sent · 发送",
        "blocked · 拦截 (reason · 原因)",
        "converted · 转化",
        title=f"Journey {key}: a simulated week · 旅程模拟一周 (medscrm journeys stats {key} --tenant {ws.tenant_slug})",
    )
    for s in stats:
        t.add_row(
            s["step_id"],
            (s["name"] or "")[:28],
            f"{s['entered']:,}",
            f"{s['waiting']:,}",
            f"{s['sent']:,}",
            ", ".join(f"{k} {v}" for k, v in sorted(s["blocked"].items())) or "-",
            f"{s['converted']:,}",
        )
    console.print(t)
    console.print(
        f"   journey · 旅程: {enrolled['enrolled']:,} HCPs enrolled · 入组, {len(granted):,} with consent · 已授权, "
        f"{len(attended):,} attended · 参会; outcome · 结果 {dict(sorted(counts.items()))}; "
        f"{n_tasks:,} rep tasks · 代表任务 ({time.perf_counter() - t0:.1f}s)"
    )
    if delivered is not None:
        console.print(
            "   outbox · 发件箱: "
            + ", ".join(f"{ch} {st} {n:,}" for (ch, st), n in sorted(delivered.items()))
            + f" → local stand-ins in {providers.outbox} (`medscrm devtools inbox`)"
        )
    return {
        "key": key,
        "enrolled": enrolled["enrolled"],
        "stats": stats,
        "counts": counts,
        "tasks": n_tasks,
        "sends": delivered,
    }


def _dispatch(ws, *, end: dt.datetime) -> dict[tuple[str, str], int]:
    """Hand the journey's queued sends to the providers (the local stand-ins) at the end of the
    simulated week (office hours, China time: no quiet-hours deferral); returns the sends by
    (channel, status)."""

    for _ in range(100):  # bounded: each round claims up to 100 due sends
        if send.dispatch_once(ws.engine, worker_id="demo", tenant_id=ws.tenant_id, limit=100, now=end) == 0:
            break
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sends.c.channel, sends.c.status, sa.func.count())
            .where(sends.c.tenant_id == ws.tenant_id)
            .group_by(sends.c.channel, sends.c.status)
        ).all()
    return {(ch, st): n for ch, st, n in rows}
