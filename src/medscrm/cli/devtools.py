"""`medscrm devtools`: the bundled local stand-ins of the demo (what they received)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medscrm.cli._common import JsonOpt, WideOpt, _fail, console, print_rows
from medscrm.common import MedscrmError
from medscrm.config import get_settings

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

app = typer.Typer(
    help="Local stand-ins for the message providers (demo and trials). 本地演示用的消息服务替身。",
    no_args_is_help=True,
)


@app.command("inbox")
def inbox(
    limit: Annotated[int, typer.Option(min=1, help="The newest N messages.")] = 50,
    outbox: Annotated[
        Path | None, typer.Option(help="The stand-ins' folder (default: the one `medscrm demo` used).")
    ] = None,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The messages the local e-mail and WeCom stand-ins received (what `medscrm demo` and
    `medscrm serve` in a demo workspace sent), newest last. 演示发出的邮件和企业微信消息。"""
    from medscrm.devtools.demo_providers import inbox as read_inbox
    from medscrm.devtools.demo_providers import read_providers

    if outbox is None:
        cfg = read_providers(get_settings().database_url)
        if not cfg:
            _fail(
                MedscrmError(
                    "no demo providers in this workspace: run `medscrm demo` first, or give --outbox"
                )
            )
        outbox = Path(cfg["outbox"])  # type: ignore[index]
    rows = read_inbox(outbox, limit=limit)
    if not rows and not as_json:
        console.print(f"no messages yet in {outbox}")
        return
    print_rows(
        rows,
        [
            ("at", lambda r: str(r.get("at") or "")[:19]),
            ("channel", "channel"),
            ("to", "to"),
            ("subject", "subject"),
            (
                "text",
                lambda r: (r.get("text") or "") if wide else (r.get("text") or "").replace("\n", " ")[:80],
            ),
        ],
        wide=wide,
        as_json=as_json,
        id_columns=(),
    )
