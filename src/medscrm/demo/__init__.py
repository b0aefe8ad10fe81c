"""`medscrm demo`: the one command that shows the whole product working on realistic data."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medscrm.accounts import service as accounts
from medscrm.config import get_settings
from medscrm.db import get_engine, upgrade_to_head
from medscrm.db.schema import person_records, persons, source_records
from medscrm.demo.scores import behaviour_step
from medscrm.ingest import quarantine as qs
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import load_mapping
from medscrm.workspace import open_workspace

DEMO_USERS = (
    ("admin", "admin"),
    ("marketer", "marketer"),
    ("analyst", "analyst"),
    ("compliance", "compliance"),
)


def create_demo_tenant(tenant: str):
    """The demo's tenant, created explicitly (an existing one of that name is reused: re-running the
    demo in the same folder adds to it)."""

    engine = get_engine(get_settings().database_url)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        accounts.ensure_tenant(conn=conn, slug=tenant, actor="demo")
    return open_workspace(tenant)


def run_demo(*, hcps: int, data_dir: Path, seed: int, tenant: str, console: Console) -> int:
    # lazy: keeps `medscrm --help` light

    from medscrm.synth import generate

    t0 = time.perf_counter()
    console.rule("[bold]medscrm demo · 演示")
    console.print(f"1/5 generating synthetic sources for {hcps:,} HCPs (seed {seed}) → {data_dir}/")
    manifest = generate(data_dir, hcps=hcps, seed=seed, progress=True)

    ws = create_demo_tenant(tenant)
    console.print(
        f"2/5 importing into tenant [bold]{tenant}[/] on {ws.engine.dialect.name} "
        f"({ws.engine.url.render_as_string(hide_password=True)})"
    )
    results = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for src in manifest.sources:
            task = progress.add_task(f"  {src['name']:<10} {src['file']}", total=src["rows"])
            mapping = load_mapping(data_dir / src["mapping"]) if src["mapping"] else None
            rep = import_file(
                engine=ws.engine,
                tenant_id=ws.tenant_id,
                source=src["name"],
                path=data_dir / src["file"],
                mapping=mapping,
                actor="demo",
                on_progress=lambda n, _b, task=task: progress.update(task, completed=n),
            )
            results.append((src, rep))

    console.print("3/5 OneID: resolving every record into persons · 统一身份识别")
    # lazy: keeps `medscrm --help` light

    from medscrm.persons.engine import resolve_with_engine

    # lazy: keeps `medscrm --help` light
    from medscrm.persons.run import run_identity

    with ws.engine.begin() as conn:
        id_rep, id_result, queued = run_identity(
            conn, tenant_id=ws.tenant_id, resolve=resolve_with_engine, actor="demo"
        )
        example = _example_person(conn, ws.tenant_id)

    console.print("4/5 tags and segments · 标签与分群")
    seg_rows = _tags_and_segments(ws)

    behaviour_step(ws, console=console, seed=seed)

    console.print("5/5 accounts for the console and API")
    with ws.engine.begin() as conn:
        # the rep user is the WeCom userid of the rep with the most HCPs, so the console's rep view
        # (own HCPs only, masked contacts) shows real data
        rep_uid = sa.func.coalesce(source_records.c.attributes["rep_userid"].as_string(), "")
        top_rep = conn.execute(
            sa.select(rep_uid)
            .where(source_records.c.tenant_id == ws.tenant_id, rep_uid != "")
            .group_by(rep_uid)
            .order_by(sa.func.count().desc(), rep_uid)
            .limit(1)
        ).scalar()
        users = [*DEMO_USERS, *([(top_rep, "rep")] if top_rep else [])]
        for username, role in users:
            if not accounts.get_user(conn=conn, tenant_id=ws.tenant_id, username=username):
                accounts.create_user(
                    conn=conn,
                    tenant_id=ws.tenant_id,
                    username=username,
                    role=role,
                    password=f"{username}-demo",
                    actor="demo",
                )
        token = accounts.create_token(
            conn=conn, tenant_id=ws.tenant_id, role="admin", name="demo", actor="demo"
        )
        quarantined = qs.count_open(conn=conn, tenant_id=ws.tenant_id)
        total_records = conn.execute(
            sa.select(sa.func.count())
            .select_from(source_records)
            .where(source_records.c.tenant_id == ws.tenant_id)
        ).scalar()

    t = Table(
        "source / 来源",
        "file / 文件",
        "format",
        "rows",
        "imported",
        "duplicates",
        "quarantined",
        title="What was loaded · 导入结果",
    )
    failed = 0
    for src, rep in results:
        if rep.status != "committed":
            failed += 1
            t.add_row(
                src["name"], src["file"], rep.format or "?", "-", "-", "-", f"[red]refused: {rep.error}"
            )
            continue
        t.add_row(
            src["name"],
            src["file"],
            f"{rep.format} {rep.encoding or ''}".strip(),
            f"{rep.rows_total:,}",
            f"{rep.rows_accepted:,}",
            f"{rep.rows_duplicate:,}",
            f"{rep.rows_rejected:,}",
        )
    console.print(t)
    if quarantined:
        qt = Table("reason code", "rows", title="Quarantined, and why · 隔离原因 (medscrm quarantine list)")
        for code, n in quarantined.items():
            qt.add_row(code, f"{n:,}")
        console.print(qt)
    it = Table.grid(padding=(0, 2))
    it.add_row("source records · 源记录", f"{id_rep.records:,}")
    it.add_row("persons (golden records) · 人", f"{id_rep.persons:,}")
    it.add_row("records joined to another · 合并", f"{id_rep.records - id_rep.persons:,}")
    it.add_row("persons with conflicting values · 冲突", f"{id_rep.conflicts:,}")
    it.add_row("uncertain pairs for review · 待复核", f"{queued:,}")
    console.print(Panel(it, title="OneID · 统一身份", expand=False))
    if example:
        et = Table(
            "attribute",
            "golden value",
            "from source",
            "rule",
            "other values seen",
            title=f"A golden record with its lineage · 黄金记录与来源: {example['id']}",
        )
        for k in ("name", "hospital", "department", "title", "city", "phone", "email", "license_no"):
            lin = (example["lineage"] or {}).get(k)
            if lin:
                et.add_row(
                    k,
                    str(example["attributes"].get(k)),
                    lin["source"],
                    lin["rule"],
                    ", ".join(lin.get("conflicts", []))[:50],
                )
        console.print(et)
    st = Table(
        "segment · 分群", "rule · 规则", "members · 人数", title="Segments on the golden records · 分群"
    )
    for key, desc, n in seg_rows:
        st.add_row(key, desc, f"{n:,}")
    console.print(st)
    console.print("journeys · 营销旅程: the heart-failure webinar journey over a simulated week")
    # lazy: keeps `medscrm --help` light

    from medscrm.demo.journeys import journey_step

    # lazy: keeps `medscrm --help` light
    from medscrm.devtools.demo_providers import remember, start_demo_providers

    # the bundled local stand-ins for the e-mail and WeCom providers: the journey's messages arrive
    # there (`medscrm devtools inbox`); `medscrm serve` starts them again on the same ports
    try:
        providers = start_demo_providers(Path("demo-outbox"))
    except (RuntimeError, OSError) as exc:  # e.g. installed without the devtools extra (aiosmtpd)
        providers = None
        console.print(
            f"   [yellow]local provider stand-ins not started ({str(exc).splitlines()[0][:200]}); the "
            "journey's sends stay queued · 未启动本地消息替身服务。pip install 'medscrm[devtools]'[/]"
        )
    try:
        journey_step(ws, console=console, providers=providers)
    finally:
        if providers is not None:
            providers.stop()
    if providers is not None:
        remember(ws.engine.url.render_as_string(hide_password=False), providers)
    user_list = ", ".join(u if r != "rep" else f"{u} (rep · 代表)" for u, r in users)
    console.print(
        Panel(
            f"source records in tenant: {total_records:,}\n"
            f"ground truth (who is who): {data_dir / manifest.ground_truth}\n\n"
            "Where to look next · 下一步:\n"
            f"  medscrm quarantine list --tenant {tenant}     rejected rows and reasons · 被隔离的数据\n"
            f"  medscrm quarantine show ID --tenant {tenant}  one row, every problem\n"
            f"  medscrm imports list --tenant {tenant}        import history · 导入记录\n"
            f"  medscrm audit list --tenant {tenant}          audit log · 审计日志\n"
            f"  medscrm identity review list --tenant {tenant}   uncertain pairs · 待复核的疑似重复\n"
            f"  medscrm persons show PERSON_ID --tenant {tenant} a golden record with lineage · 黄金记录\n"
            "  medscrm devtools inbox                           messages the demo sent · 演示发出的消息\n"
            "  medscrm serve                                    console at /, REST API at /docs;\n"
            "                                                   starts the local e-mail/WeCom stand-ins too\n\n"
            f"Demo users (password = <username>-demo): {user_list}\n"
            f"Admin API token (Bearer): {token.token}",
            title=f"done in {time.perf_counter() - t0:.1f}s · 完成",
        )
    )
    return 1 if failed else 0


def _example_person(conn, tenant_id: str):
    """A person built from several sources (the most), to show survivorship and lineage."""

    pid = conn.execute(
        sa.select(person_records.c.person_id)
        .where(person_records.c.tenant_id == tenant_id)
        .group_by(person_records.c.person_id)
        .order_by(sa.func.count().desc(), person_records.c.person_id)
        .limit(1)
    ).scalar()
    if not pid:
        return None
    row = (
        conn.execute(sa.select(persons).where(persons.c.tenant_id == tenant_id, persons.c.id == pid))
        .mappings()
        .first()
    )
    return dict(row) if row else None


DEMO_TAGS = {
    "senior_physician": (
        "高年资医生 · senior physician",
        {"attr": "title", "op": "in", "value": ["主任医师", "副主任医师"]},
    ),
    "tier3a_hospital": (
        "三甲医院 · tier-3A hospital",
        {"attr": "hospital_grade", "op": "eq", "value": "三级甲等"},
    ),
}
DEMO_SEGMENTS = {
    "senior_cardiology": (
        "senior cardiologists · 心内科高年资",
        {
            "and": [
                {"tag": "senior_physician", "op": "exists"},
                {"attr": "department", "op": "eq", "value": "心血管内科"},
            ]
        },
    ),
    "tier3a_beijing_shanghai": (
        "tier-3A hospitals in Beijing/Shanghai · 京沪三甲",
        {
            "and": [
                {"tag": "tier3a_hospital", "op": "exists"},
                {"attr": "city", "op": "in", "value": ["北京", "上海"]},
            ]
        },
    ),
    "patients": ("patients in the programme · 患者", {"person_type": "patient"}),
}


def _tags_and_segments(ws) -> list[tuple[str, str, int]]:
    """Rule tags and dynamic segments over the golden records (re-runs refresh them)."""
    # lazy: keeps `medscrm --help` light

    from medscrm.segments import service as segments

    # lazy: keeps `medscrm --help` light
    from medscrm.tags import service as tags

    fields = {"hospital_grade": "string"}
    with ws.engine.begin() as conn:
        for key, (name, rule) in DEMO_TAGS.items():
            tags.define(
                conn,
                tenant_id=ws.tenant_id,
                key=key,
                name_zh=name,
                rule=rule,
                fields=fields,
                category="business_rule",
                owner="demo",
            )
        tags.evaluate(conn, tenant_id=ws.tenant_id)
    out = []
    with ws.engine.begin() as conn:
        for key, (name, rule) in DEMO_SEGMENTS.items():
            existing = {s["key"] for s in segments.list_segments(conn, tenant_id=ws.tenant_id)}
            if key in existing:
                seg = segments.refresh(conn, tenant_id=ws.tenant_id, key=key, fields=fields)
            else:
                seg = segments.create(
                    conn,
                    tenant_id=ws.tenant_id,
                    key=key,
                    rule=rule,
                    name=name,
                    created_by="demo",
                    fields=fields,
                )
            out.append((key, name, int(seg.get("member_count") or 0)))
    return out
