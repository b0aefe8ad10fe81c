"""`medscrm events tail`: stored events, live."""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Annotated

import typer

from medscrm.cli._common import TenantOpt, _fail, _ws, console
from medscrm.common import MedscrmError

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

events_app = typer.Typer(help="Stored events: tail them live.", no_args_is_help=True)


@events_app.command("tail")
def events_tail(
    user_id: Annotated[str | None, typer.Option(help="Only this userId.")] = None,
    person_id: Annotated[str | None, typer.Option(help="Only this person.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="track, identify, page, ...")] = None,
    last: Annotated[int, typer.Option(help="Show the last N events first.")] = 10,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep polling for new events.")] = True,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    url: Annotated[
        str | None,
        typer.Option(
            help="Read through a running server's API instead of the database "
            "(needed while `medscrm serve` holds an embedded DuckDB file)."
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="MEDSCRM_TOKEN", help="API token for --url.")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Show stored events, newest last, and keep showing new ones (Ctrl-C to stop)."""

    from medscrm.profiles.events import query_events

    if url:
        import httpx

        def fetch(limit: int) -> list[dict]:
            params = {
                k: v
                for k, v in {
                    "user_id": user_id,
                    "person_id": person_id,
                    "type": type_,
                    "limit": limit,
                }.items()
                if v
            }
            r = httpx.get(
                url.rstrip("/") + "/api/v1/events",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            if r.status_code != 200:
                _fail(MedscrmError(f"{url}: HTTP {r.status_code}: {r.text[:200]}"))
            rows = r.json()["events"]
            for row in rows:
                for k in ("received_at", "timestamp"):
                    row[k] = _dt.datetime.fromisoformat(row[k])
            return rows
    else:
        try:
            ws = _ws(tenant)
        except Exception as exc:  # DuckDB refuses a second process while the server writes
            _fail(
                MedscrmError(
                    f"cannot open the database ({exc}); while `medscrm serve` runs on an embedded "
                    "DuckDB file, use --url http://HOST:PORT --token TOKEN"
                )
            )

        def fetch(limit: int) -> list[dict]:
            with ws.engine.connect() as conn:
                return query_events(
                    conn,
                    tenant_id=ws.tenant_id,
                    person_id=person_id,
                    user_id=user_id,
                    type_=type_,
                    limit=limit,
                )

    seen: set[str] = set()
    since = None

    def show(rows: list[dict]) -> None:
        for r in sorted(rows, key=lambda r: (r["received_at"], r["id"])):
            if r["id"] in seen:
                continue
            seen.add(r["id"])
            who = r["user_id"] or f"anon:{r['anonymous_id']}"
            what = r["event"] or r["name"] or ""
            props = json.dumps(r["properties"] or {}, ensure_ascii=False, default=str)[:100]
            console.print(f"{str(r['timestamp'])[:19]}  [bold]{r['type']:<8}[/] {what:<28} {who:<20} {props}")

    try:
        while True:
            with ws.engine.connect() as conn:
                rows = query_events(
                    conn,
                    tenant_id=ws.tenant_id,
                    person_id=person_id,
                    user_id=user_id,
                    type_=type_,
                    limit=last if since is None else 1000,
                )
            if rows:
                since = max(r["received_at"] for r in rows)
            show(rows)
            if not follow:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


# --- identity (OneID) ---------------------------------------------------------------------------
