"""``medscrm webhooks create|list|deliveries|replay|dispatch``: outbound webhook subscriptions."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medscrm.cli._common import _ws
from medscrm.cli._ids import resolve_id
from medscrm.common import MedscrmError
from medscrm.workspace import open_workspace

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)
app = typer.Typer(help="Outbound webhooks: subscriptions, deliveries, replay.", no_args_is_help=True)
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="Tenant slug (default: $MEDSCRM_TENANT or 'default').")
]


def _run(tenant: str | None, fn, *, write: bool = True):
    try:
        ws = open_workspace(tenant)
        with ws.engine.begin() if write else ws.engine.connect() as conn:
            return fn(conn, ws)
    except MedscrmError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="The endpoint (http or https).")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="Event type to receive (repeatable; default: all)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    tenant: TenantOpt = None,
    actor: Annotated[str, typer.Option(help="Who creates it (audited).")] = "cli",
) -> None:
    """Subscribe an endpoint; prints its signing secret once (store it in the receiver)."""
    from medscrm.webhooks import service

    sub = _run(
        tenant,
        lambda c, ws: service.create(
            c, tenant_id=ws.tenant_id, url=url, events=event or ["*"], description=description, actor=actor
        ),
    )
    console.print(f"subscription {sub['id']} → {sub['url']} ({', '.join(sub['events'])})")
    console.print(f"signing secret (shown once): {sub['secret']}")


@app.command("list")
def list_(tenant: TenantOpt = None) -> None:
    """The tenant's subscriptions."""
    from medscrm.webhooks import service

    subs = _run(tenant, lambda c, ws: service.list_subscriptions(c, tenant_id=ws.tenant_id), write=False)
    t = Table("id", "url", "events", "active", "created")
    for s in subs:
        t.add_row(
            s["id"], s["url"], ", ".join(s["events"]), "yes" if s["active"] else "no", str(s["created_at"])
        )
    console.print(t)


@app.command("deliveries")
def deliveries(
    subscription_id: Annotated[str, typer.Argument(help="The subscription id (whs_…) or a unique prefix.")],
    status: Annotated[str | None, typer.Option(help="pending, delivering, delivered or dead.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON with every attempt.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """A subscription's deliveries, newest first."""
    from medscrm.webhooks import service

    rows = _run(
        tenant,
        lambda c, ws: service.list_deliveries(
            c,
            tenant_id=ws.tenant_id,
            subscription_id=resolve_id(c, ws.tenant_id, "webhook subscription", subscription_id),
            status=status,
            limit=limit,
        ),
        write=False,
    )
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    t = Table("id", "event", "type", "status", "attempts", "last code", "last error")
    for r in rows:
        t.add_row(
            r["id"],
            r["event_id"],
            r["event_type"],
            r["status"],
            str(r["attempts"]),
            str(r["last_status_code"] or ""),
            (r["last_error"] or "")[:60],
        )
    console.print(t)


@app.command("replay")
def replay(
    subscription_id: Annotated[str, typer.Argument(help="The subscription id (whs_…) or a unique prefix.")],
    delivery: Annotated[
        str | None, typer.Option("--delivery", help="Replay this delivery (default: every dead one).")
    ] = None,
    tenant: TenantOpt = None,
    actor: Annotated[str, typer.Option(help="Who replays (audited).")] = "cli",
) -> None:
    """Queue a delivery, or every dead delivery of a subscription, again."""
    from medscrm.webhooks import service

    n = _run(
        tenant,
        lambda c, ws: service.replay(
            c,
            tenant_id=ws.tenant_id,
            subscription_id=resolve_id(c, ws.tenant_id, "webhook subscription", subscription_id),
            delivery_id=resolve_id(c, ws.tenant_id, "webhook delivery", delivery) if delivery else None,
            actor=actor,
        ),
    )
    console.print(f"queued {n} deliver{'y' if n == 1 else 'ies'} again")


@app.command("dispatch")
def dispatch_cmd(tenant: TenantOpt = None) -> None:
    """Attempt the due deliveries once now (``medscrm worker`` does this continuously)."""
    from medscrm.webhooks import dispatch

    r = dispatch.dispatch_once(_ws(tenant).engine, worker_id="cli")
    console.print(f"delivered {r['delivered']}, retry later {r['retry']}, dead {r['dead']}")
