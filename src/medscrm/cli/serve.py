"""`medscrm synth`, `medscrm demo` and `medscrm serve`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medscrm.cli._common import _fail, console
from medscrm.common import MedscrmError
from medscrm.config import get_settings
from medscrm.db import get_engine, upgrade_to_head
from medscrm.db.engine import default_spool_dir
from medscrm.demo import run_demo
from medscrm.workspace import announce_server, withdraw_server

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).


# --- synth, demo, serve --------------------------------------------------------------------------
def synth(
    hcps: Annotated[int, typer.Option("--hcps", help="Number of distinct HCPs.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    patients: Annotated[
        int | None, typer.Option(help="Patients in the patient programme (default hcps/5).")
    ] = None,
) -> None:
    """Write realistic synthetic source files for one tenant, with a ground-truth file."""
    from medscrm.synth import generate

    manifest = generate(out, hcps=hcps, seed=seed, patients=patients, progress=True)
    t = Table("source", "file", "rows")
    for s in manifest.sources:
        t.add_row(s["name"], s["file"], f"{s['rows']:,}")
    console.print(t)
    console.print(f"ground truth: {out / manifest.ground_truth}")


def demo(
    hcps: Annotated[int, typer.Option(help="HCPs in the demo tenant.")] = 2000,
    data_dir: Annotated[Path, typer.Option(help="Where the synthetic files go.")] = Path("demo-data"),
    seed: int = 42,
    tenant: Annotated[str, typer.Option(help="Demo tenant slug.")] = "demo",
) -> None:
    """Build a demo tenant end to end from synthetic data and print what happened."""

    try:
        code = run_demo(hcps=hcps, data_dir=data_dir, seed=seed, tenant=tenant, console=console)
    except MedscrmError as exc:
        _fail(exc)
    raise typer.Exit(code)


def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (PostgreSQL only; DuckDB allows one process). One Python process "
            "uses one core: on a machine with C cores, C workers serve up to C times the requests. "
            "Each keeps its own event spool; the segment refresher runs in one of them.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /openapi.json) and the web console (/)."""

    import uvicorn

    from medscrm.app import create_app
    from medscrm.workers import WORKERS_ENV

    get_settings()  # a bad MEDSCRM_ENV or a weak production key stops here, before anything starts
    engine = get_engine()
    upgrade_to_head(engine)
    # log format, access log, multiprocess metrics (medscrm.api.observe)
    from medscrm.api.observe import serve_options

    options = serve_options(workers, engine, default_spool_dir(engine.url))
    if workers > 1:
        if engine.dialect.name != "postgresql":
            _fail(
                MedscrmError(
                    f"--workers: {workers} processes need PostgreSQL; the embedded DuckDB database "
                    "can be opened by one process only (use --workers 1)"
                )
            )
        engine.dispose()
        os.environ[WORKERS_ENV] = str(workers)
        uvicorn.run(
            "medscrm.app:create_served_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            **options,
        )
        return

    # the server file beside an embedded database: the command line finds this server through it
    # (one-line message, or reads through the API) instead of failing on the file's lock
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    announced = providers = None
    try:
        announced = announce_server(engine, url=f"http://{local}:{port}")
        providers = _demo_providers(engine)
        uvicorn.run(create_app(), host=host, port=port, **options)
    finally:
        if providers is not None:
            providers.stop()
        withdraw_server(engine, announced)


def _demo_providers(engine):
    """In a demo workspace (`medscrm demo` left its providers file), outside production: the local
    e-mail and WeCom stand-ins, on the ports the demo tenant's channels point at."""
    from medscrm.devtools.demo_providers import read_providers, start_demo_providers

    if get_settings().is_production:
        return None
    cfg = read_providers(engine.url.render_as_string(hide_password=False))
    if not cfg:
        return None
    try:
        providers = start_demo_providers(
            Path(cfg["outbox"]), smtp_port=int(cfg["smtp_port"]), api_port=int(cfg["api_port"])
        )
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        console.print(f"[yellow]demo providers not started ({exc}); demo sends will wait and retry[/]")
        return None
    console.print(
        f"demo mode · 演示模式: local e-mail (SMTP 127.0.0.1:{providers.smtp.port}) and WeCom "
        f"({providers.api.base_url}) stand-ins record into {providers.outbox} — `medscrm devtools inbox`"
    )
    return providers
