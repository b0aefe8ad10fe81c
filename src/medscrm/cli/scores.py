"""``medscrm scores …``: refresh, show one person, micro-segments, simulate demo behaviour."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medscrm.cli._common import TenantOpt, _ws
from medscrm.common import MedscrmError, as_utc, utcnow
from medscrm.demo.scores import print_distributions, print_micro
from medscrm.scores.model import TAGS

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The tenant's rules YAML overriding the shipped rules (default: $MEDSCRM_SCORES_CONFIG).",
    ),
]
NowOpt = Annotated[
    dt.datetime | None,
    typer.Option("--now", help="Compute as of this time (ISO, UTC), e.g. to replay a past day."),
]


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``medscrm scores …`` to the ``medscrm`` app."""
    scores_app = typer.Typer(
        help="HCP360 behaviour model (行为模型): behaviour tags, tier, AIPL/lifecycle stage, lead and "
        "engagement scores, micro-segments.",
        no_args_is_help=True,
    )
    app.add_typer(scores_app, name="scores")

    @scores_app.command("refresh")
    def refresh(
        tenant: TenantOpt = None,
        config: ConfigOpt = None,
        micro: Annotated[bool, typer.Option("--micro", help="Also re-cluster the micro-segments.")] = False,
        k: Annotated[int | None, typer.Option(help="Micro-segments to make (with --micro).")] = None,
        now: NowOpt = None,
    ) -> None:
        """Recompute every person's behaviour tags and scores (the scheduled batch); changes go to tag
        history with the reason."""
        from medscrm.scores.schedule import record
        from medscrm.scores.service import refresh_all_committed

        ws = _ws(tenant)
        at = as_utc(now) or utcnow()
        try:
            with console.status("scoring · 计算中…"):
                res = refresh_all_committed(
                    ws.engine,
                    tenant_id=ws.tenant_id,
                    now=at,
                    config=config,
                    micro=micro,
                    k=k,
                    last=lambda conn, res: record(conn, tenant_id=ws.tenant_id, now=at, actor="cli", res=res),
                )
        except MedscrmError as exc:
            _fail(exc)
        console.print(
            f"{res['persons']:,} persons scored, {res['changed']:,} changed, in {res['seconds']} s · "
            f"已评分 {res['persons']:,} 人，变化 {res['changed']:,} 人"
        )
        print_distributions(res["distributions"], console)
        if micro:
            print_micro(res["micro_segments"], console)

    @scores_app.command("show")
    def show(
        person_id: Annotated[str, typer.Argument(help="Person id (per_…).")],
        tenant: TenantOpt = None,
        history: Annotated[bool, typer.Option("--history", help="Also the model's tag history.")] = False,
    ) -> None:
        """One person's scores, stage, tier and behaviour tags, each with why."""
        from medscrm.profiles.service import resolve_person_id
        from medscrm.scores.service import scores_of, stage_of
        from medscrm.tags.service import history_of, tags_of

        ws = _ws(tenant)
        try:
            with ws.engine.connect() as conn:
                pid = resolve_person_id(conn, ws.tenant_id, person_id)["id"]
                sc = scores_of(conn, tenant_id=ws.tenant_id, person_id=pid)
                st = stage_of(conn, tenant_id=ws.tenant_id, person_id=pid)
                tg = [t for t in tags_of(conn, tenant_id=ws.tenant_id, person_id=pid) if t["key"] in TAGS]
                hist = history_of(conn, tenant_id=ws.tenant_id, person_id=pid) if history else []
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"[bold]{pid}[/]  stage · 阶段: {json.dumps(st, ensure_ascii=False)}")
        t = Table("score · 评分", "value", "computed at")
        for k, v in sc.items():
            t.add_row(k, f"{v['value']:.1f}", str(v["computed_at"]))
        console.print(t)
        t = Table("tag · 标签", "value · 取值", "why · 原因")
        for x in tg:
            r = x.get("reason") or {}
            t.add_row(
                f"{x['key']} · {x['name_zh']}",
                str(x["value"]),
                f"{r.get('text_zh', '')}\n{r.get('text_en', '')}",
            )
        console.print(t)
        if history:
            h = Table("at", "tag", "old → new", "why")
            for x in hist:
                if x["tag_key"] in TAGS:
                    r = x.get("reason") or {}
                    h.add_row(
                        str(x["changed_at"]),
                        x["tag_key"],
                        f"{x['old_value']} → {x['new_value']}",
                        r.get("text_en", ""),
                    )
            console.print(h)

    @scores_app.command("micro")
    def micro(
        k: Annotated[int, typer.Option("--k", help="Number of micro-segments (2–50).")] = 6,
        tenant: TenantOpt = None,
        config: ConfigOpt = None,
        now: NowOpt = None,
    ) -> None:
        """Cluster persons on behaviour (k-means on standardised features) into k micro-segments and
        describe what distinguishes each; sets the tag micro_segment (usable in segment rules)."""
        from medscrm.scores.micro import refresh_micro

        ws = _ws(tenant)
        try:
            with console.status("clustering · 聚类中…"), ws.engine.begin() as conn:
                rows = refresh_micro(conn, tenant_id=ws.tenant_id, k=k, now=as_utc(now), config=config)
        except MedscrmError as exc:
            _fail(exc)
        print_micro(rows, console)
        console.print(
            'use in a segment rule · 在分群规则中使用: {"tag": "micro_segment", "op": "eq", "value": "ms1"}'
        )

    @scores_app.command("simulate")
    def simulate(
        tenant: TenantOpt = None,
        seed: Annotated[int, typer.Option(help="Random seed: same seed and --now, same events.")] = 7,
        now: NowOpt = None,
        refresh_after: Annotated[
            bool, typer.Option("--refresh/--no-refresh", help="Refresh scores and micro-segments afterwards.")
        ] = True,
    ) -> None:
        """Generate synthetic behaviour (article views, webinars, meetings, WeCom replies, samples, …)
        for the tenant's HCPs, then refresh scores. Demo and test data only."""
        from medscrm.scores.micro import refresh_micro
        from medscrm.scores.service import refresh_all
        from medscrm.synth.events import generate_events

        ws = _ws(tenant)
        try:
            with console.status("generating behaviour · 生成行为数据…"), ws.engine.begin() as conn:
                res = generate_events(conn, tenant_id=ws.tenant_id, seed=seed, now=as_utc(now))
            console.print(
                f"{res['inserted']:,} events for {res['persons']:,} persons · 生成行为 {res['inserted']:,} 条; "
                f"personas: {res['personas']}"
            )
            if refresh_after:
                with ws.engine.begin() as conn:
                    out = refresh_all(conn, tenant_id=ws.tenant_id, now=as_utc(now))
                    rows = refresh_micro(conn, tenant_id=ws.tenant_id, now=as_utc(now))
                print_distributions(out["distributions"], console)
                print_micro(rows, console)
        except MedscrmError as exc:
            _fail(exc)
