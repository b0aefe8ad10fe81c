"""``medscrm dsr export|correct|erase|restrict|hold|certificate|show|requests``: data-subject
requests under PIPL Arts. 44–47, for the DPO. Each finds ONE person by any identifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medscrm.cli._common import TenantOpt, _fail, _ws, console

app = typer.Typer(
    help="Data-subject requests (PIPL Arts. 44–47): export, correct, erase, restrict, legal hold. "
    "个人信息主体权利请求：查阅复制、更正、删除、限制处理、法律保全。\n\n"
    "IDENTIFIER is a person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence "
    "number, source-record id or event user id; --kind names which when it is ambiguous.",
    no_args_is_help=True,
)
IdArg = Annotated[
    str, typer.Argument(help="Person id, phone, e-mail, WeCom/WeChat id, licence no., record id.")
]
KindOpt = Annotated[
    str,
    typer.Option(
        "--kind",
        help="How to read IDENTIFIER: auto, person_id, source_record, phone, email, license_no, wecom, "
        "openid, unionid, user_id.",
    ),
]
ActorOpt = Annotated[str, typer.Option(help="Who handles the request (recorded and audited).")]
ReasonOpt = Annotated[str | None, typer.Option(help="Why: the request's reference, the legal basis.")]


def _run(tenant: str | None, fn):
    from medscrm.common import MedscrmError

    ws = _ws(tenant)
    try:
        with ws.engine.begin() as conn:
            return fn(conn, ws)
    except MedscrmError as exc:
        _fail(exc)


def _print_request(r: dict) -> None:
    console.print(
        f"request {r['id']} ({r['kind']}): {r['status']}"
        + (f" — {r['refusal_code']}: {(r['result'] or {}).get('why', '')}" if r.get("refusal_code") else "")
        + f", person {r['person_id']}"
    )


@app.command("show")
def show(identifier: IdArg, kind: KindOpt = "auto", tenant: TenantOpt = None) -> None:
    """What is held about the person: rows per table, restriction, legal hold, past requests."""
    from medscrm.privacy import service

    h = _run(tenant, lambda c, ws: service.held(c, tenant_id=ws.tenant_id, identifier=identifier, kind=kind))
    t = Table("table", "rows")
    for name, n in h["tables"].items():
        if n:
            t.add_row(name, str(n))
    console.print(f"person {h['person_id']}: {h['total_rows']} rows")
    console.print(t)
    console.print(
        f"restricted: {'yes' if h['restricted'] else 'no'}; legal hold: {'yes' if h['legal_hold'] else 'no'}"
    )


@app.command("export")
def export(
    identifier: IdArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the zip (JSON + CSV per table, manifest).")
    ],
    kind: KindOpt = "auto",
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    tenant: TenantOpt = None,
) -> None:
    """Export every row about the person (PIPL Art. 45) as a zip with a manifest."""
    from medscrm.privacy import service

    req, blob = _run(
        tenant,
        lambda c, ws: service.export(
            c, tenant_id=ws.tenant_id, identifier=identifier, kind=kind, actor=actor, reason=reason
        ),
    )
    out.write_bytes(blob)
    _print_request(req)
    console.print(f"{req['result']['total_rows']} rows → {out}")


@app.command("correct")
def correct(
    identifier: IdArg,
    field: Annotated[
        str, typer.Option(help="The golden-record field: name, phone, email, hospital, department, title, …")
    ],
    value: Annotated[str, typer.Option(help="The corrected value (normalised like an import).")],
    kind: KindOpt = "auto",
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    tenant: TenantOpt = None,
) -> None:
    """Correct one field of the person's golden record (PIPL Art. 46), with a manual source as provenance."""
    from medscrm.privacy import service

    _print_request(
        _run(
            tenant,
            lambda c, ws: service.correct(
                c,
                tenant_id=ws.tenant_id,
                identifier=identifier,
                kind=kind,
                field=field,
                value=value,
                actor=actor,
                reason=reason,
            ),
        )
    )


@app.command("erase")
def erase(
    identifier: IdArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the erasure cannot be undone.")] = False,
    kind: KindOpt = "auto",
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    certificate: Annotated[
        Path | None, typer.Option(help="Also write the erasure certificate (JSON) here.")
    ] = None,
    tenant: TenantOpt = None,
) -> None:
    """Erase the person (PIPL Art. 47); refused (exit 3) under legal hold.

    Every row is deleted, audit rows keep the action without the personal data, and keyed hashes of
    the identifiers are kept so re-imports and events are suppressed. Prints the certificate's sha256
    (``medscrm dsr certificate REQUEST_ID`` downloads it)."""
    from medscrm.privacy import service

    if not yes:
        _fail(ValueError("erasure cannot be undone: add --yes to confirm"))
    r = _run(
        tenant,
        lambda c, ws: service.erase(
            c, tenant_id=ws.tenant_id, identifier=identifier, kind=kind, actor=actor, reason=reason
        ),
    )
    _print_request(r)
    if r["status"] == "refused":
        raise typer.Exit(3)
    console.print(
        f"{r['certificate']['total_rows_removed']} rows removed; certificate sha256 {r['certificate_sha256']}"
    )
    if certificate:
        certificate.write_text(
            json.dumps(
                {"certificate": r["certificate"], "sha256": r["certificate_sha256"]},
                ensure_ascii=False,
                indent=2,
            ),
            encoding="utf-8",
        )


@app.command("restrict")
def restrict(
    identifier: IdArg,
    lift: Annotated[bool, typer.Option("--lift", help="Lift the restriction instead.")] = False,
    kind: KindOpt = "auto",
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    tenant: TenantOpt = None,
) -> None:
    """Restrict the person's processing (PIPL Art. 44), or --lift it.

    While restricted the person enters no segment, takes no journey step and gets no message (sends
    are blocked with reason processing_restricted)."""
    from medscrm.privacy import service

    _print_request(
        _run(
            tenant,
            lambda c, ws: service.restrict(
                c,
                tenant_id=ws.tenant_id,
                identifier=identifier,
                kind=kind,
                actor=actor,
                reason=reason,
                lift=lift,
            ),
        )
    )


@app.command("hold")
def hold(
    identifier: IdArg,
    release: Annotated[bool, typer.Option("--release", help="Release the legal hold instead.")] = False,
    kind: KindOpt = "auto",
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    tenant: TenantOpt = None,
) -> None:
    """Put the person under legal hold (erasure is refused with the reason), or --release it."""
    from medscrm.privacy import service

    _print_request(
        _run(
            tenant,
            lambda c, ws: service.hold(
                c,
                tenant_id=ws.tenant_id,
                identifier=identifier,
                kind=kind,
                actor=actor,
                reason=reason,
                release=release,
            ),
        )
    )


@app.command("certificate")
def certificate(
    request_id: Annotated[str, typer.Argument(help="The erase request id (dsr_…).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write it here instead of printing it.")
    ] = None,
    tenant: TenantOpt = None,
) -> None:
    """The erasure certificate of a completed erase request, with its sha256."""
    from medscrm.privacy import service

    cert = _run(tenant, lambda c, ws: service.certificate(c, tenant_id=ws.tenant_id, request_id=request_id))
    text = json.dumps(cert, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"certificate → {out}")
    else:
        console.print_json(text)


@app.command("requests")
def requests(limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, tenant: TenantOpt = None) -> None:
    """The request log, newest first."""
    from medscrm.privacy import service

    rows = _run(tenant, lambda c, ws: service.list_requests(c, tenant_id=ws.tenant_id, limit=limit))
    t = Table("id", "kind", "status", "person", "actor", "created", "completed")
    for r in rows:
        t.add_row(
            r["id"],
            r["kind"],
            r["status"],
            r["person_id"] or "",
            r["actor"],
            str(r["created_at"]),
            str(r["completed_at"] or ""),
        )
    console.print(t)
