"""``medscrm journeys …`` and ``medscrm worker``: register with :func:`register`."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medscrm.cli._common import TenantOpt, _ws
from medscrm.common import MedscrmError
from medscrm.db import get_engine, upgrade_to_head

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal

ActorOpt = Annotated[str, typer.Option("--actor", help="Who does this (recorded in the audit log).")]


def _fail(exc: Exception, code: int = 2) -> None:
    from medscrm.journeys.model import JourneyError
    from medscrm.rules import RuleError

    if isinstance(exc, JourneyError | RuleError):
        err.print(f"[bold red]invalid journey · 旅程定义有误[/] ({len(exc.problems)} problem(s)):")
        for p in exc.problems:
            err.print(f"  {escape(p.path or '(journey)')}: {escape(p.reason)}")
    else:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


def _load(path: Path) -> Any:
    from medscrm.journeys.model import load_file

    try:
        return load_file(path)
    except OSError as exc:
        _fail(MedscrmError(f"{path}: cannot read: {exc}"))
    except MedscrmError as exc:
        _fail(exc)


def _run(tenant: str | None, fn, *, write: bool = True):
    ws = _ws(tenant)
    try:
        with ws.engine.begin() if write else ws.engine.connect() as conn:
            return fn(conn, ws)
    except MedscrmError as exc:
        _fail(exc)


def _print_stats(rows: list[dict[str, Any]], title: str) -> None:
    t = Table(
        "step · 步骤",
        "type · 类型",
        "entered · 进入",
        "waiting · 等待中",
        "sent · 已发送",
        "blocked · 被拦截",
        "converted · 转化",
        title=title,
    )
    for r in rows:
        blocked = ", ".join(f"{k} {v}" for k, v in sorted(r["blocked"].items())) or "0"
        t.add_row(
            r["step_id"],
            r["type"],
            f"{r['entered']:,}",
            f"{r['waiting']:,}",
            f"{r['sent']:,}",
            blocked,
            f"{r['converted']:,}",
        )
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add ``journeys`` and ``worker`` to the ``medscrm`` app."""
    japp = typer.Typer(
        help="Journeys (营销旅程): validate, create, start/pause/resume/stop, statistics, enrol.",
        no_args_is_help=True,
    )
    app.add_typer(japp, name="journeys")

    @japp.command("validate")
    def validate(
        file: Annotated[Path, typer.Argument(help="Journey definition (.yaml/.yml/.json).")],
        offline: Annotated[
            bool, typer.Option("--offline", help="Only structure and graph; do not check the tenant's data.")
        ] = False,
        tenant: TenantOpt = None,
    ) -> None:
        """Check a journey definition; every problem is printed with the node it is at."""
        from medscrm.journeys import service
        from medscrm.journeys.model import validate_definition

        data = _load(file)
        if offline:
            try:
                j = validate_definition(data)
            except MedscrmError as exc:
                _fail(exc)
        else:
            j = _run(
                tenant,
                lambda c, ws: service.validate(c, tenant_id=ws.tenant_id, definition=data),
                write=False,
            )
        console.print(f"[green]valid · 有效[/]: {j.key} ({len(j.steps)} steps, {len(j.triggers)} triggers)")

    @japp.command("create")
    def create(
        file: Annotated[Path, typer.Argument(help="Journey definition (.yaml/.yml/.json).")],
        start: Annotated[bool, typer.Option("--start", help="Start it right away.")] = False,
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Create a journey (draft, version 1) from FILE; --start starts it."""
        from medscrm.journeys import service

        data = _load(file)

        def fn(c, ws):
            j = service.create(c, tenant_id=ws.tenant_id, definition=data, actor=actor)
            if start:
                j = service.start(c, tenant_id=ws.tenant_id, key=j["key"], actor=actor)
            return j

        j = _run(tenant, fn)
        console.print(f"journey {j['key']} v{j['current_version']}: {j['status']}")

    @japp.command("update")
    def update(
        key: str,
        file: Annotated[Path, typer.Argument(help="The edited definition.")],
        migrate: Annotated[
            bool,
            typer.Option("--migrate/--keep", help="Move people to the new version, or keep them on theirs."),
        ] = False,
        map_: Annotated[
            list[str] | None, typer.Option("--map", help="OLD=NEW step id mapping for --migrate (repeat).")
        ] = None,
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Save an edited definition as a new version (people move with --migrate, else stay)."""
        from medscrm.journeys import service

        data = _load(file)
        step_map = {}
        for m in map_ or []:
            old, sep, new = m.partition("=")
            if not sep:
                _fail(MedscrmError(f"--map {m!r}: use OLD=NEW"))
            step_map[old] = new
        j = _run(
            tenant,
            lambda c, ws: service.update(
                c,
                tenant_id=ws.tenant_id,
                key=key,
                definition=data,
                actor=actor,
                migrate=migrate,
                step_map=step_map,
            ),
        )
        console.print(f"journey {key} v{j['current_version']}; moved {j['moved']} enrollment(s)")

    @japp.command("list")
    def list_(tenant: TenantOpt = None) -> None:
        """All journeys with status, version and how many people are in them."""
        from medscrm.journeys import service

        rows = _run(tenant, lambda c, ws: service.list_journeys(c, tenant_id=ws.tenant_id), write=False)
        t = Table("key", "name", "status · 状态", "version", "active · 进行中", "finished · 已结束")
        for r in rows:
            done = sum(v for k, v in r["enrollments"].items() if k != "active")
            t.add_row(
                r["key"], r["name"], r["status"], str(r["current_version"]), f"{r['active']:,}", f"{done:,}"
            )
        console.print(t)

    @japp.command("show")
    def show(key: str, tenant: TenantOpt = None) -> None:
        """The current definition (JSON), status and versions of one journey."""
        from medscrm.journeys import service

        j = _run(tenant, lambda c, ws: service.get_journey(c, tenant_id=ws.tenant_id, key=key), write=False)
        console.print(
            f"{j['key']} · {j['name']} · {j['status']} · v{j['current_version']} · "
            f"active by version {j['active_by_version']}"
        )
        console.print_json(json.dumps(j["definition"], ensure_ascii=False, default=str))

    def _life(action: str):
        def cmd(key: str, actor: ActorOpt = "cli", tenant: TenantOpt = None) -> None:
            from medscrm.journeys import service

            fn = getattr(service, action)
            j = _run(tenant, lambda c, ws: fn(c, tenant_id=ws.tenant_id, key=key, actor=actor))
            console.print(f"journey {key}: {j['status']}")

        cmd.__doc__ = {
            "start": "Start a draft journey (checks content approval and channels first).",
            "pause": "Pause: nobody moves on until resume.",
            "resume": "Resume a paused journey.",
            "stop": "Stop for good: everyone still in it leaves.",
        }[action]
        return cmd

    @japp.command("start")
    def start(
        key: str,
        enrol_current: Annotated[
            bool,
            typer.Option(
                "--enrol-current/--no-enrol-current",
                help="Also enrol the persons already in the journey's entry segments now (re-entry rules "
                "and caps apply). Off: only persons who enter from now on. 立即纳入分群现有成员。",
            ),
        ] = True,
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Start a draft journey (checks content approval and channels first). By default the current
        members of its segment-entry triggers' segments are enrolled at once."""
        from medscrm.journeys import service

        j = _run(
            tenant,
            lambda c, ws: service.start(
                c, tenant_id=ws.tenant_id, key=key, actor=actor, enrol_current=enrol_current
            ),
        )
        console.print(f"journey {key}: {j['status']}")
        at_start = j.get("enrolled_at_start")
        if at_start is not None:
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(at_start["skipped"].items()))
            console.print(
                f"current members enrolled now: {at_start['enrolled']:,}"
                + (f" (skipped: {skipped})" if skipped else "")
            )

    for action in ("pause", "resume", "stop"):
        japp.command(action)(_life(action))

    @japp.command("stats")
    def stats(key: str, tenant: TenantOpt = None) -> None:
        """Per-step statistics: entered, waiting, sent, blocked by reason, converted."""
        from medscrm.journeys import service

        def fn(c, ws):
            return service.step_stats(c, tenant_id=ws.tenant_id, key=key), service.enrollment_counts(
                c, tenant_id=ws.tenant_id, key=key
            )

        rows, counts = _run(tenant, fn, write=False)
        _print_stats(rows, f"journey {key} · 旅程统计")
        console.print("enrollments · 参与: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))

    @japp.command("results")
    def results_cmd(
        key: str,
        event: Annotated[
            str | None,
            typer.Option(help="Conversion event (default: the journey's goal, else its own default)."),
        ] = None,
        prop: Annotated[str | None, typer.Option("--property", help="Event property to match.")] = None,
        value: Annotated[str | None, typer.Option(help="The property's value.")] = None,
        days: Annotated[int, typer.Option(min=1, max=365, help="Days after the split.")] = 14,
        as_json: Annotated[bool, typer.Option("--json", help="The full result as JSON.")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        """A/B results of the journey's splits: per variant entered, sends, opens, clicks, conversions,
        and the test against the first variant (z-test or Fisher's exact, 95 % CI of the difference)."""
        from medscrm.journeys import results as jr

        conv = jr.Conversion(mode="event", event=event, prop=prop, value=value, days=days) if event else None
        res = _run(
            tenant,
            lambda c, ws: jr.split_results(c, tenant_id=ws.tenant_id, key=key, conversion=conv),
            write=False,
        )
        if as_json:
            print(json.dumps(res, ensure_ascii=False, default=str))
            return
        c = res["conversion"]
        what = "the journey goal" if c["mode"] == "goal" else f"{c['event']} within {c['days']} days"
        console.print(f"conversion · 转化: {escape(what)}", highlight=False)
        if not res["splits"]:
            console.print("this journey has no split step · 此旅程没有 A/B 分流")
        for sp in res["splits"]:
            t = Table(title=f"split {sp['step_id']} · A/B 分流", title_justify="left")
            for h in (
                "variant",
                "entered",
                "sends",
                "blocked",
                "opened",
                "clicked",
                "converted",
                "rate",
                "vs control",
            ):
                t.add_column(h)
            for v in sp["variants"]:
                cmp = v.get("vs_control")
                if cmp is None:
                    verdict = "control"
                elif not cmp["enough"]:
                    verdict = f"not enough data ({cmp['why']})"
                else:
                    lo, hi = cmp["ci"]
                    verdict = (
                        f"{cmp['diff'] * 100:+.1f} pp (95% CI {lo * 100:+.1f} to {hi * 100:+.1f}), "
                        f"{cmp['test']} p={cmp['p_value']:.3g}"
                    )
                rate = "-" if v["rate"] is None else f"{v['rate'] * 100:.1f}%"
                t.add_row(
                    escape(v["label"]),
                    *(str(v[k]) for k in ("entered", "sends", "blocked", "opened", "clicked", "converted")),
                    rate,
                    verdict,
                )
            console.print(t)
            if sp["overall"]:
                console.print(f"all variants: chi-square p={sp['overall']['p_value']:.3g}")

    @japp.command("enroll")
    def enroll(
        key: str,
        person_ids: Annotated[
            list[str], typer.Argument(help="Person ids to enrol (the journey needs an api trigger).")
        ],
        ref: Annotated[
            str | None, typer.Option(help="Idempotency reference: the same ref enrols once.")
        ] = None,
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Enrol persons through the journey's api trigger (re-entry rules and caps apply)."""
        from medscrm.journeys import service

        res = _run(
            tenant,
            lambda c, ws: service.enroll(
                c, tenant_id=ws.tenant_id, key=key, person_ids=person_ids, actor=actor, ref=ref
            ),
        )
        console.print(f"enrolled {res['enrolled']}; skipped {res['skipped']}")

    @app.command("worker")
    def worker(
        worker_id: Annotated[str | None, typer.Option("--id", help="Worker id (default: host-pid).")] = None,
        once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
        interval: Annotated[float, typer.Option(help="Seconds to sleep when there is nothing to do.")] = 1.0,
        tenant: Annotated[
            str | None, typer.Option("--tenant", help="Only this tenant (default: all).")
        ] = None,
    ) -> None:
        """Run journeys, deliver queued sends and webhooks (several workers may run at once on PostgreSQL)."""

        from medscrm.journeys.engine import worker_loop

        engine = get_engine()
        upgrade_to_head(engine)
        tenant_id = _ws(tenant).tenant_id if tenant else None
        wid = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if not once:
            err.print(f"worker {wid} on {engine.dialect.name}: running journeys (Ctrl-C to stop)")
        from medscrm.webhooks.dispatch import WebhookDispatcher, dispatch_once

        hooks_thread = None if once else WebhookDispatcher(engine, worker_id=wid, interval=interval).start()
        try:
            totals = worker_loop(
                engine, worker_id=wid, once=once, interval=interval, tenant_id=tenant_id, stop=stop
            )
        finally:
            if hooks_thread:
                hooks_thread.stop()
        if once:
            dispatch_once(engine, worker_id=wid)
        console.print(
            f"worker {wid}: {totals['ticks']} round(s), {totals['enrolled']} enrolled, "
            f"{totals['steps']} step(s), {totals['dispatched']} send(s) delivered"
        )
