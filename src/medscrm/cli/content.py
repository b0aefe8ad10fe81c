"""``medscrm content …``: the content library and its MLR review."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medscrm.accounts import service as accounts
from medscrm.cli._common import TenantOpt, _rid, _ws
from medscrm.common import MedscrmError

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal
AsOpt = Annotated[
    str, typer.Option("--as", help="Your username (its role applies: approval needs compliance).")
]


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def _role(conn, tenant_id: str, username: str) -> str:
    u = accounts.get_user(conn=conn, tenant_id=tenant_id, username=username)
    if not u or u["disabled_at"]:
        raise MedscrmError(
            f"--as: no active user {username!r} in this tenant (create one with `medscrm users create`)"
        )
    return u["role"]


def _date(v: str | None, field: str) -> dt.datetime | None:
    if not v:
        return None
    try:
        d = dt.datetime.fromisoformat(v)
    except ValueError:
        raise MedscrmError(
            f"{field}: {v!r} is not an ISO date/time (e.g. 2027-06-30 or 2027-06-30T00:00:00+08:00)"
        ) from None
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))  # China time by default


def _show(item: dict) -> None:
    for k in (
        "id",
        "key",
        "title",
        "kind",
        "status",
        "audience",
        "prescription",
        "therapy_area",
        "product",
        "topics",
        "approval_code",
        "valid_from",
        "expires_at",
        "created_by",
        "submitted_by",
        "approved_by",
        "approved_at",
        "review_note",
    ):
        console.print(f"[bold]{k}[/]: {item.get(k)}")
    if "cancelled_sends" in item:
        console.print(f"[bold]cancelled_sends[/]: {item['cancelled_sends']}")


def register(app: typer.Typer) -> None:
    c_app = typer.Typer(
        help="Content library (内容库): create, MLR review, approve, withdraw.", no_args_is_help=True
    )
    app.add_typer(c_app, name="content")

    @c_app.command("create")
    def create(
        key: Annotated[str, typer.Argument(help="Unique key, e.g. dm-guideline-2026")],
        title: Annotated[str, typer.Option(help="Title (标题)")],
        audience: Annotated[str, typer.Option(help="hcp_only, patient or public")],
        as_: AsOpt,
        kind: Annotated[
            str, typer.Option(help="article, video, pdf, webinar, survey, *_template")
        ] = "article",
        therapy_area: Annotated[str | None, typer.Option(help="e.g. diabetes, oncology")] = None,
        product: Annotated[
            str | None, typer.Option(help="Product name (required for prescription content)")
        ] = None,
        prescription: Annotated[
            bool, typer.Option("--prescription", help="Prescription-product content (Rx)")
        ] = False,
        topic: Annotated[list[str] | None, typer.Option("--topic", help="Topic; repeat")] = None,
        subject: Annotated[str | None, typer.Option(help="E-mail subject (Jinja: {{ name }})")] = None,
        body: Annotated[str | None, typer.Option(help="Body text (Jinja: {{ name }}, {{ url }})")] = None,
        body_file: Annotated[Path | None, typer.Option(help="Read the body from a file")] = None,
        url: Annotated[str | None, typer.Option(help="Link to the material (tracked when sent)")] = None,
        template: Annotated[
            str | None,
            typer.Option(
                help='Provider templates as JSON, e.g. {"aliyun_template_code":"SMS_1","params":["name"]}'
            ),
        ] = None,
        valid_from: Annotated[str | None, typer.Option(help="ISO date/time (China time if no zone)")] = None,
        expires: Annotated[str | None, typer.Option(help="ISO date/time (China time if no zone)")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        """Create a draft item. Prescription content must be hcp_only and name its product."""
        from medscrm.content import service

        ws = _ws(tenant)
        try:
            tpl = json.loads(template) if template else None
            text = body_file.read_text(encoding="utf-8") if body_file else body
            with ws.engine.begin() as conn:
                item = service.create_item(
                    conn,
                    tenant_id=ws.tenant_id,
                    key=key,
                    title=title,
                    kind=kind,
                    audience=audience,
                    actor=as_,
                    therapy_area=therapy_area,
                    product=product,
                    prescription=prescription,
                    topics=topic or [],
                    subject=subject,
                    body=text,
                    url=url,
                    template=tpl,
                    valid_from=_date(valid_from, "valid_from"),
                    expires_at=_date(expires, "expires_at"),
                )
        except (MedscrmError, ValueError, OSError) as exc:
            _fail(exc)
        console.print(f"created draft [bold]{item['key']}[/] ({item['id']})")
        print(item["id"])

    @c_app.command("submit")
    def submit(item: str, as_: AsOpt, tenant: TenantOpt = None) -> None:
        """Send a draft to MLR review (draft → in_review)."""
        from medscrm.content import service

        ws = _ws(tenant)
        item = _rid(ws, "content item", item)
        try:
            with ws.engine.begin() as conn:
                out = service.submit_for_review(conn, tenant_id=ws.tenant_id, item_id=item, actor=as_)
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{out['key']}: {out['status']}")

    @c_app.command("edit")
    def edit(
        item: str,
        as_: AsOpt,
        title: Annotated[str | None, typer.Option(help="Title (标题)")] = None,
        kind: Annotated[
            str | None, typer.Option(help="article, video, pdf, webinar, survey, *_template")
        ] = None,
        audience: Annotated[str | None, typer.Option(help="hcp_only, patient or public")] = None,
        therapy_area: Annotated[str | None, typer.Option(help="e.g. diabetes, oncology")] = None,
        product: Annotated[str | None, typer.Option(help="Product name")] = None,
        prescription: Annotated[
            bool | None, typer.Option("--prescription/--no-prescription", help="Prescription-product content")
        ] = None,
        topic: Annotated[
            list[str] | None, typer.Option("--topic", help="Topic; repeat (replaces all)")
        ] = None,
        subject: Annotated[str | None, typer.Option(help="E-mail subject (Jinja: {{ name }})")] = None,
        body: Annotated[str | None, typer.Option(help="Body text (Jinja: {{ name }}, {{ url }})")] = None,
        body_file: Annotated[Path | None, typer.Option(help="Read the body from a file")] = None,
        url: Annotated[str | None, typer.Option(help="Link to the material (tracked when sent)")] = None,
        template: Annotated[str | None, typer.Option(help="Provider templates as JSON")] = None,
        valid_from: Annotated[str | None, typer.Option(help="ISO date/time (China time if no zone)")] = None,
        expires: Annotated[str | None, typer.Option(help="ISO date/time (China time if no zone)")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        """Edit a draft (only the options given change; the same checks as create). An item in review
        is sent back to draft by a reviewer's reject first."""
        from medscrm.content import service

        ws = _ws(tenant)
        item = _rid(ws, "content item", item)
        try:
            changes = {
                k: v
                for k, v in {
                    "title": title,
                    "kind": kind,
                    "audience": audience,
                    "therapy_area": therapy_area,
                    "product": product,
                    "prescription": prescription,
                    "topics": topic,
                    "subject": subject,
                    "body": body_file.read_text(encoding="utf-8") if body_file else body,
                    "url": url,
                    "template": json.loads(template) if template else None,
                    "valid_from": _date(valid_from, "valid_from"),
                    "expires_at": _date(expires, "expires_at"),
                }.items()
                if v is not None
            }
            with ws.engine.begin() as conn:
                out = service.update_item(conn, tenant_id=ws.tenant_id, item_id=item, actor=as_, **changes)
        except (MedscrmError, ValueError, OSError) as exc:
            _fail(exc)
        console.print(f"{out['key']}: {out['status']} (edited: {', '.join(sorted(changes)) or 'nothing'})")

    @c_app.command("approve")
    def approve(
        item: str,
        as_: AsOpt,
        code: Annotated[str, typer.Option("--code", help="MLR approval code (审批编号)")],
        expires: Annotated[str | None, typer.Option(help="Expiry (required if the item has none)")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        """Approve an item in review. Needs a compliance user who neither wrote nor submitted it."""
        from medscrm.content import service

        ws = _ws(tenant)
        item = _rid(ws, "content item", item)
        try:
            with ws.engine.begin() as conn:
                out = service.approve(
                    conn,
                    tenant_id=ws.tenant_id,
                    item_id=item,
                    approval_code=code,
                    actor=as_,
                    actor_role=_role(conn, ws.tenant_id, as_),
                    expires_at=_date(expires, "expires_at"),
                )
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{out['key']}: {out['status']} ({out['approval_code']}, expires {out['expires_at']})")

    @c_app.command("reject")
    def reject(
        item: str,
        as_: AsOpt,
        reason: Annotated[str, typer.Option(help="Why it goes back to draft")],
        tenant: TenantOpt = None,
    ) -> None:
        """Send an item in review back to draft, with the reviewer's reason."""
        from medscrm.content import service

        ws = _ws(tenant)
        item = _rid(ws, "content item", item)
        try:
            with ws.engine.begin() as conn:
                out = service.reject(
                    conn,
                    tenant_id=ws.tenant_id,
                    item_id=item,
                    reason=reason,
                    actor=as_,
                    actor_role=_role(conn, ws.tenant_id, as_),
                )
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{out['key']}: {out['status']}")

    @c_app.command("withdraw")
    def withdraw(
        item: str,
        as_: AsOpt,
        reason: Annotated[str | None, typer.Option(help="Why")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        """Withdraw an item: nothing more of it is sent; queued sends are cancelled."""
        from medscrm.content import service

        ws = _ws(tenant)
        item = _rid(ws, "content item", item)
        try:
            with ws.engine.begin() as conn:
                out = service.withdraw(conn, tenant_id=ws.tenant_id, item_id=item, actor=as_, reason=reason)
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{out['key']}: {out['status']}; {out['cancelled_sends']} queued send(s) cancelled")

    @c_app.command("list")
    def list_(
        status: Annotated[
            str | None, typer.Option(help="draft, in_review, approved, expired, withdrawn")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        """List content items."""
        from medscrm.content import service

        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                items = service.list_items(conn, tenant_id=ws.tenant_id, status=status)
        except MedscrmError as exc:
            _fail(exc)
        if as_json:
            for it in items:
                print(json.dumps(it, default=str, ensure_ascii=False))
            return
        t = Table("key", "title", "status", "audience", "Rx", "therapy area", "approval", "expires")
        for it in items:
            t.add_row(
                it["key"],
                it["title"],
                it["status"],
                it["audience"],
                "Rx" if it["prescription"] else "",
                it["therapy_area"] or "",
                it["approval_code"] or "",
                str(it["expires_at"] or ""),
            )
        console.print(t)

    @c_app.command("show")
    def show(item: str, tenant: TenantOpt = None) -> None:
        """Show one item (by id or key)."""
        from medscrm.content import service

        ws = _ws(tenant)
        item = _rid(ws, "content item", item)
        try:
            with ws.engine.connect() as conn:
                it = service.get_item(conn, tenant_id=ws.tenant_id, item_id=item)
        except MedscrmError as exc:
            _fail(exc)
        _show(it)
