"""The ``medscrm`` command line (Typer). Every command explains itself with ``--help``.

The command line is presentation: one module per group of commands, each calling the services of
its domain. This module builds the ``medscrm`` app and is the one place that lists the groups, in
the order ``medscrm --help`` shows them (top-level commands first, then groups). A new group is a
new module here and one line below.

Commands import the services they call inside the command function, not at the top of their
module: ``medscrm --help`` (and every command's start) then loads only the command line itself,
not pandas, Splink, scikit-learn or the web app.
"""

from __future__ import annotations

import re
import sys

import typer
from rich.markup import escape

from medscrm.cli import (
    admin,
    content,
    db,
    devtools,
    dsr,
    events,
    identity,
    imports,
    journeys,
    outreach,
    retention,
    scores,
    segments,
    serve,
    sso,
    tasks,
    webhooks,
)
from medscrm.cli._common import err, held_message
from medscrm.common import MedscrmError
from medscrm.workspace import running_server

app = typer.Typer(
    name="medscrm",
    help="medscrm — SCRM + HCP360 for pharma and medtech in China. 医药 SCRM + HCP360：统一身份、"
    "360° 画像、分群与合规旅程。\n\nState lives in MEDSCRM_DATABASE_URL (default: ./medscrm.duckdb).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

app.command("import")(imports.import_cmd)
app.command()(serve.synth)
app.command()(serve.demo)
app.command()(serve.serve)
app.add_typer(admin.tenants_app, name="tenants")
app.add_typer(admin.sources_app, name="sources")
app.add_typer(admin.tokens_app, name="tokens")
app.add_typer(admin.users_app, name="users")
app.add_typer(imports.quarantine_app, name="quarantine")
app.add_typer(imports.imports_app, name="imports")
app.add_typer(db.app, name="db")  # upgrade, current, backup, restore
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.secrets_app, name="secrets")
app.add_typer(events.events_app, name="events")
app.add_typer(identity.identity_app, name="identity")
app.add_typer(identity.persons_app, name="persons")
identity.register(app)  # resolve FILE
segments.register(app)  # segments, tags
scores.register(app)  # scores, behaviour tags, micro-segments
journeys.register(app)  # journeys, worker
content.register(app)  # content library
outreach.register(app)  # consents, do-not-contact, channels, sends, outreach-policy
app.add_typer(tasks.app, name="tasks")  # reps' tasks from journeys: list, done
app.add_typer(webhooks.app, name="webhooks")  # outbound event subscriptions
app.add_typer(devtools.app, name="devtools")  # local provider stand-ins: inbox
app.add_typer(dsr.app, name="dsr")  # data-subject requests (PIPL Arts. 44–47)
app.add_typer(retention.app, name="retention")  # retention policies and runs
app.add_typer(sso.app, name="sso")  # console single sign-on (OpenID Connect)


def main() -> None:  # pragma: no cover
    try:
        app()
    except MedscrmError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except Exception as exc:
        held = lock_message(exc)
        if held is None:
            raise
        err.print(f"[bold red]error:[/] {escape(held)}")
        sys.exit(2)


def lock_message(exc: BaseException) -> str | None:
    """One line for DuckDB's "Could not set lock" (another process holds the embedded file): the
    running `medscrm serve` and what to do, instead of a long traceback. None for other errors."""
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(x) for x in seen)
    if "Could not set lock" not in text:
        return None

    server = running_server()
    if server is not None:
        return held_message(server)
    m = re.search(r"\(PID (\d+)\)", text)
    m_file = re.search(r'on file "([^"]+)"', text)
    pid = f" (pid {m.group(1)})" if m else ""
    where = m_file.group(1) if m_file else "the database file"
    return f"{where} is in use by another process{pid}; stop it or wait until it has finished, then retry"
