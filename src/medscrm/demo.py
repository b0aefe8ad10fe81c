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
from medscrm.db.schema import source_records
from medscrm.ingest import quarantine as qs
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import load_mapping
from medscrm.workspace import open_workspace

DEMO_USERS = (
    ("admin", "admin"),
    ("marketer", "marketer"),
    ("analyst", "analyst"),
    ("rep01", "rep"),
    ("compliance", "compliance"),
)


def run_demo(*, hcps: int, data_dir: Path, seed: int, tenant: str, console: Console) -> int:
    from medscrm.synth import generate

    t0 = time.perf_counter()
    console.rule("[bold]medscrm demo · 演示")
    console.print(f"1/3 generating synthetic sources for {hcps:,} HCPs (seed {seed}) → {data_dir}/")
    manifest = generate(data_dir, hcps=hcps, seed=seed, progress=True)

    ws = open_workspace(tenant)
    console.print(
        f"2/3 importing into tenant [bold]{tenant}[/] on {ws.engine.dialect.name} "
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

    console.print("3/3 accounts for the console and API")
    with ws.engine.begin() as conn:
        for username, role in DEMO_USERS:
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
    console.print(
        Panel(
            f"source records in tenant: {total_records:,}\n"
            f"ground truth (who is who): {data_dir / manifest.ground_truth}\n\n"
            "Where to look next · 下一步:\n"
            f"  medscrm quarantine list --tenant {tenant}     rejected rows and reasons · 被隔离的数据\n"
            f"  medscrm quarantine show ID --tenant {tenant}  one row, every problem\n"
            f"  medscrm imports list --tenant {tenant}        import history · 导入记录\n"
            f"  medscrm audit list --tenant {tenant}          audit log · 审计日志\n"
            "  medscrm serve                                    REST API, OpenAPI at /docs\n\n"
            f"Demo users (password = <username>-demo): {', '.join(u for u, _ in DEMO_USERS)}\n"
            f"Admin API token (Bearer): {token.token}",
            title=f"done in {time.perf_counter() - t0:.1f}s · 完成",
        )
    )
    return 1 if failed else 0
