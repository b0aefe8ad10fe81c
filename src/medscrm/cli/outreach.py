"""``medscrm consents …``, ``medscrm dnc …``, ``medscrm channels …``, ``medscrm sends …`` and
``medscrm outreach-policy``."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medscrm.cli._common import JsonOpt, TenantOpt, WideOpt, _rid, _ws, print_rows
from medscrm.common import MedscrmError

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal
ActorOpt = Annotated[str, typer.Option("--actor", help="Who makes the change (audited).")]


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def _kv(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in pairs:
        if "=" not in kv:
            raise MedscrmError(f"--set {kv!r}: use KEY=VALUE")
        k, v = kv.split("=", 1)
        k = k.strip()
        from medscrm.outreach.settings import SECRET_KEYS

        if v and any(k in keys for keys in SECRET_KEYS.values()):
            out[k] = v  # secrets stay strings, whatever they look like
        elif v == "":
            out[k] = None
        elif v.lower() in ("true", "false"):
            out[k] = v.lower() == "true"
        elif v.isdigit():
            out[k] = int(v)
        else:
            out[k] = v
    return out


def register(app: typer.Typer) -> None:
    consents_app = typer.Typer(
        help="Consents (PIPL 同意) per channel and purpose, with history.", no_args_is_help=True
    )
    dnc_app = typer.Typer(help="Do-not-contact list (免打扰).", no_args_is_help=True)
    channels_app = typer.Typer(
        help="Channel providers and credentials (stored sealed).", no_args_is_help=True
    )
    sends_app = typer.Typer(help="The outbox: list sends, dispatch them.", no_args_is_help=True)
    app.add_typer(consents_app, name="consents")
    app.add_typer(dnc_app, name="dnc")
    app.add_typer(channels_app, name="channels")
    app.add_typer(sends_app, name="sends")
    compliance_app = typer.Typer(
        help="Compliance (合规) evidence: why each message was allowed or refused.", no_args_is_help=True
    )
    app.add_typer(compliance_app, name="compliance")

    @compliance_app.command("sends")
    def compliance_sends(
        journey: Annotated[str | None, typer.Option(help="Journey key (or id): its sends.")] = None,
        person: Annotated[
            str | None, typer.Option(help="Person id (or a unique prefix): their sends.")
        ] = None,
        fmt: Annotated[
            str,
            typer.Option("--format", help="table (default), csv (formula-safe, for spreadsheets) or json."),
        ] = "table",
        limit: Annotated[int, typer.Option(help="At most this many sends, newest first.")] = 1000,
        actor: Annotated[str, typer.Option("--actor", help="Who reads the report (audited).")] = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Proof of every send of a journey or a person: the consent relied on (history id, version,
        SHA-256 of what was agreed), the content approval code and its expiry at send time, and each
        guardrail check (consent, content approval, audience, frequency cap, quiet hours, …) with its
        result and the values compared. Allowed and blocked sends alike. The read is audited
        (compliance.sends.read).

        Examples: medscrm compliance sends --journey onboarding --format csv > proof.csv;
        medscrm compliance sends --person p_123 --format json"""
        from medscrm.outreach import compliance

        if fmt not in ("table", "csv", "json"):
            _fail(MedscrmError(f"--format: {fmt!r} is not one of table, csv, json"))
        ws = _ws(tenant)
        try:
            if person:
                person = _rid(ws, "person", person)
            with ws.engine.begin() as conn:
                rows = compliance.send_proofs(
                    conn,
                    tenant_id=ws.tenant_id,
                    role="admin",  # the operator's shell: the database is theirs
                    actor=actor,
                    journey=journey,
                    person_id=person,
                    limit=limit,
                )
        except MedscrmError as exc:
            _fail(exc)
        if fmt == "csv":
            print(compliance.to_csv(rows), end="")
            return
        if fmt == "json":
            print_rows(rows, [], as_json=True)
            return
        print_rows(
            rows,
            [
                ("send", "send_id"),
                ("person", "person_id"),
                ("channel", "channel"),
                ("status", "status"),
                ("reason", "reason"),
                ("consent v", "consent_version"),
                ("approval", "approval_code"),
                (
                    "expires",
                    lambda r: r["approval_expires_at"].date().isoformat() if r["approval_expires_at"] else "",
                ),
                ("checks", lambda r: compliance.checks_text(r["checks"])),
            ],
            wide=True,
            id_columns=("send", "person"),
        )

    # --- consents ---
    @consents_app.command("set")
    def consents_set(
        person_id: str,
        channel: Annotated[str, typer.Option(help="email, sms, wecom, wechat, phone or any")],
        purpose: Annotated[str, typer.Option(help="marketing, medical_info, survey or service")],
        status: Annotated[str, typer.Option(help="granted or withdrawn")],
        source: Annotated[str, typer.Option(help="Where it came from, e.g. webinar_form, hotline")],
        evidence: Annotated[str | None, typer.Option(help="JSON evidence, e.g. a form id and IP")] = None,
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Grant or withdraw a consent. Withdrawal stops every later send at once."""
        from medscrm.outreach import consent

        ws = _ws(tenant)
        person_id = _rid(ws, "person", person_id)
        try:
            ev = json.loads(evidence) if evidence else None
            with ws.engine.begin() as conn:
                consent.set_consent(
                    conn,
                    tenant_id=ws.tenant_id,
                    person_id=person_id,
                    channel=channel,
                    purpose=purpose,
                    status=status,
                    source=source,
                    evidence=ev,
                    actor=actor,
                )
        except (MedscrmError, ValueError) as exc:
            _fail(exc)
        console.print(f"{person_id}: {channel}/{purpose} {status}")

    @consents_app.command("show")
    def consents_show(person_id: str, tenant: TenantOpt = None) -> None:
        """A person's consents, do-not-contact status and consent history."""
        from medscrm.outreach import consent

        ws = _ws(tenant)
        person_id = _rid(ws, "person", person_id)
        with ws.engine.connect() as conn:
            rows = consent.list_consents(conn, tenant_id=ws.tenant_id, person_id=person_id)
            hist = consent.consent_log(conn, tenant_id=ws.tenant_id, person_id=person_id)
            dnc = consent.get_dnc(conn, tenant_id=ws.tenant_id, person_id=person_id)
        t = Table("channel", "purpose", "status", "source", "updated")
        for r in rows:
            t.add_row(r["channel"], r["purpose"], r["status"], r["source"], str(r["updated_at"]))
        console.print(t)
        console.print(f"do-not-contact: {'yes — ' + dnc['reason'] if dnc else 'no'}")
        h = Table("when", "channel", "purpose", "from", "to", "source", "actor", title="history")
        for r in hist:
            h.add_row(
                str(r["changed_at"]),
                r["channel"],
                r["purpose"],
                r["old_status"] or "",
                r["new_status"],
                r["source"],
                r["actor"],
            )
        console.print(h)

    # --- do-not-contact ---
    @dnc_app.command("add")
    def dnc_add(
        person_id: str,
        reason: Annotated[str, typer.Option(help="Why")],
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Put a person on the do-not-contact list (every channel)."""
        from medscrm.outreach import consent

        ws = _ws(tenant)
        person_id = _rid(ws, "person", person_id)
        try:
            with ws.engine.begin() as conn:
                consent.set_dnc(conn, tenant_id=ws.tenant_id, person_id=person_id, reason=reason, actor=actor)
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{person_id}: do not contact")

    @dnc_app.command("remove")
    def dnc_remove(person_id: str, actor: ActorOpt = "cli", tenant: TenantOpt = None) -> None:
        """Take a person off the do-not-contact list."""
        from medscrm.outreach import consent

        ws = _ws(tenant)
        person_id = _rid(ws, "person", person_id)
        with ws.engine.begin() as conn:
            removed = consent.clear_dnc(conn, tenant_id=ws.tenant_id, person_id=person_id, actor=actor)
        console.print(f"{person_id}: {'removed' if removed else 'was not on the list'}")

    # --- channels and policy ---
    @channels_app.command("configure")
    def channels_configure(
        channel: Annotated[str, typer.Argument(help="email, sms, wecom, wechat_template or webhook")],
        provider: Annotated[str, typer.Option(help="smtp | aliyun, tencent | wecom | wechat | hmac")],
        set_: Annotated[
            list[str],
            typer.Option(
                "--set",
                help="KEY=VALUE; repeat. smtp: host, port, from_addr, username, password, starttls. aliyun: "
                "base_url, access_key_id, access_key_secret, sign_name. tencent: base_url, secret_id, secret_key, "
                "sms_sdk_app_id, sign_name. wecom: base_url, corp_id, corp_secret. wechat: base_url, app_id, "
                "app_secret. hmac: url, secret. Secrets are sealed and never shown.",
            ),
        ],
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Set a channel's provider and credentials for the tenant."""
        from medscrm.outreach import settings

        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                shown = settings.configure_channel(
                    conn,
                    tenant_id=ws.tenant_id,
                    channel=channel,
                    provider=provider,
                    settings=_kv(set_),
                    actor=actor,
                )
        except MedscrmError as exc:
            _fail(exc)
        console.print(f"{channel} via {shown['provider']}: {shown['settings']} secrets {shown['secrets']}")

    @channels_app.command("list")
    def channels_list(tenant: TenantOpt = None) -> None:
        """Configured channels (secrets redacted)."""
        from medscrm.outreach import settings

        ws = _ws(tenant)
        with ws.engine.connect() as conn:
            rows = settings.list_channels(conn, tenant_id=ws.tenant_id)
        t = Table("channel", "provider", "settings", "secrets")
        for r in rows:
            t.add_row(
                r["channel"],
                r["provider"],
                json.dumps(r["settings"], ensure_ascii=False),
                json.dumps(r["secrets"]),
            )
        console.print(t)

    @channels_app.command("callback-urls")
    def channels_callback_urls(
        base_url: Annotated[
            str, typer.Option(help="The server's public address, e.g. https://scrm.example.com")
        ] = "http://127.0.0.1:8000",
        tenant: TenantOpt = None,
    ) -> None:
        """The SMS reply callback URL to set in each provider's console, with the tenant's callback
        token (keep it secret: it lets the caller withdraw SMS consents). Prints PROVIDER URL lines."""
        from medscrm.outreach import settings

        ws = _ws(tenant)
        for provider, url in settings.reply_callback_urls(ws.tenant_id, base_url).items():
            print(f"{provider} {url}")

    @app.command("outreach-policy")
    def outreach_policy(
        set_json: Annotated[
            str | None,
            typer.Option(
                "--set",
                help='JSON merged into the policy, e.g. {"quiet_hours": {"start": "22:00", "end": "08:00"}}',
            ),
        ] = None,
        actor: ActorOpt = "cli",
        tenant: TenantOpt = None,
    ) -> None:
        """Show (or change) frequency caps, quiet hours (Asia/Shanghai) and retry settings."""
        from medscrm.outreach import settings

        ws = _ws(tenant)
        try:
            with ws.engine.begin() as conn:
                if set_json:
                    pol = settings.set_policy(
                        conn, tenant_id=ws.tenant_id, changes=json.loads(set_json), actor=actor
                    )
                else:
                    pol = settings.get_policy(conn, tenant_id=ws.tenant_id)
        except (MedscrmError, ValueError) as exc:
            _fail(exc)
        print(json.dumps(pol, indent=2, ensure_ascii=False))

    # --- sends ---
    @sends_app.command("list")
    def sends_list(
        status: Annotated[
            str | None,
            typer.Option(help="queued, sending, sent, delivered, failed, blocked, cancelled, unknown"),
        ] = None,
        person: Annotated[str | None, typer.Option(help="Person id (or a unique prefix)")] = None,
        limit: int = 50,
        wide: WideOpt = False,
        as_json: JsonOpt = False,
        tenant: TenantOpt = None,
    ) -> None:
        """Recent sends with their status, reason and error."""
        from medscrm.outreach import send

        ws = _ws(tenant)
        if person:
            person = _rid(ws, "person", person)
        with ws.engine.connect() as conn:
            rows = send.list_sends(conn, tenant_id=ws.tenant_id, status=status, person_id=person, limit=limit)
            totals = send.send_counts(conn, tenant_id=ws.tenant_id)
        if as_json:
            print_rows([dict(r) for r in rows], [], as_json=True)
            return
        print_rows(
            [dict(r) for r in rows],
            [
                ("id", "id"),
                ("person", "person_id"),
                ("channel", "channel"),
                ("status", "status"),
                ("reason", "reason"),
                ("attempts", "attempts"),
                ("origin", "origin"),
                ("error", lambda r: (r["error"] or "") if wide else (r["error"] or "")[:60]),
            ],
            wide=wide,
            id_columns=("id", "person"),
        )
        console.print(f"totals: {json.dumps(totals, ensure_ascii=False)}")

    @sends_app.command("dispatch")
    def sends_dispatch(
        loop: Annotated[
            bool, typer.Option("--loop", help="Keep dispatching until stopped (SIGTERM/Ctrl-C)")
        ] = False,
        interval: Annotated[float, typer.Option(help="Seconds to sleep when nothing is due (--loop)")] = 1.0,
        limit: Annotated[int, typer.Option(help="Sends claimed per round")] = 100,
        worker_id: Annotated[str | None, typer.Option(help="Worker id (default host:pid)")] = None,
        all_tenants: Annotated[bool, typer.Option("--all-tenants", help="Dispatch for every tenant")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        """Deliver due sends through their channels (safe to run several at once on PostgreSQL)."""
        from medscrm.outreach.send import dispatch_once

        ws = _ws(tenant)
        wid = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        total = 0
        while True:
            n = dispatch_once(
                ws.engine, worker_id=wid, tenant_id=None if all_tenants else ws.tenant_id, limit=limit
            )
            total += n
            if stop["now"] or (n == 0 and not loop):
                break  # without --loop: drain what is due now, then exit
            if n == 0:
                time.sleep(interval)
        console.print(f"dispatched {total} send(s) as {wid}")
        print(total)
