"""Console "Outbox (demo)": what the local provider stand-ins of a demo workspace received (the
e-mails and WeCom messages the demo's journey sent). Shown only where `medscrm demo` left its
providers file, and only to roles that may read PII (the messages carry addresses and names)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from medscrm.common import NotFound
from medscrm.web.routes.base import ConsoleRoute, Page, _engine, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/outbox")
def outbox_page(ctx: Page) -> Response:
    ctx.require("pii.read")
    # lazy: off the server's start-up path
    from medscrm.devtools.demo_providers import inbox, read_providers

    cfg = read_providers(_engine(ctx.request).url.render_as_string(hide_password=False))
    if not cfg:
        raise NotFound("outbox: this workspace has no demo providers (run `medscrm demo`)")
    rows = inbox(Path(cfg["outbox"]), limit=200)
    rows.reverse()  # newest first
    # the messages as delivered: addresses and bodies
    ctx.audit_read("outreach.outbox.read", object_type="message", count=len(rows))
    return render(ctx, "outbox.html", rows=rows, outbox=cfg["outbox"])
