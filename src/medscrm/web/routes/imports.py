"""Console imports: file upload, the quarantine of rejected rows, fixes and replays."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from medscrm import access
from medscrm.common import MedscrmError
from medscrm.config import get_settings
from medscrm.db.schema import imports, quarantine, sources
from medscrm.ingest import quarantine as qs
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping, load_mapping
from medscrm.web import data
from medscrm.web.auth import Ctx, Forbidden
from medscrm.web.routes.base import ConsoleRoute, Csrf, Page, _ctx, _engine, _redirect, render

UPLOAD_SUFFIXES = (".csv", ".tsv", ".xlsx", ".jsonl", ".parquet")

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


# --- imports and quarantine ------------------------------------------------------------------------------
def _imports_ctx(ctx: Ctx) -> None:
    if not (ctx.can("data.import") or ctx.can("quarantine.manage")):
        raise Forbidden("imports")


def _imports_page(ctx: Ctx, status: int = 200, **kw: Any) -> Response:
    with _engine(ctx.request).connect() as conn:
        recent = [
            dict(r)
            for r in conn.execute(
                sa.select(imports, sources.c.name.label("source_name"))
                .join(sources, sources.c.id == imports.c.source_id)
                .where(imports.c.tenant_id == ctx.tenant_id)
                .order_by(imports.c.started_at.desc())
                .limit(10)
            ).mappings()
        ]
        counts = qs.count_open(conn=conn, tenant_id=ctx.tenant_id)
        total = sum(counts.values())
        entries = (  # the newest 25 open entries, newest first
            qs.list_entries(
                conn=conn, tenant_id=ctx.tenant_id, status="open", limit=25, offset=max(0, total - 25)
            )[::-1]
            if ctx.can("quarantine.manage")
            else []
        )
        names = data.source_names(conn, tenant_id=ctx.tenant_id)
    for e in entries:
        if not ctx.can("pii.read"):
            e["payload"] = access.visible_attributes(e["payload"] or {}, ctx.role)
        e["current"] = e.get("fixed_payload") or e["payload"]
    # quarantined rows are raw input (names, phones, e-mails as the source sent them)
    ctx.audit_read("quarantine.read", object_type="quarantine", count=len(entries))
    kw.setdefault("report", None)
    kw.setdefault("upload_error", None)
    kw.setdefault("replay", None)
    return render(
        ctx,
        "imports.html",
        status,
        recent=recent,
        entries=entries,
        counts=counts,
        open_total=sum(counts.values()),
        source_names=names,
        max_bytes=get_settings().max_import_bytes,
        can_import=ctx.can("data.import"),
        can_fix=ctx.can("quarantine.manage"),
        **kw,
    )


@router.get("/imports")
def imports_page(ctx: Page) -> Response:
    _imports_ctx(ctx)
    return _imports_page(ctx, focus=ctx.request.query_params.get("focus"))


@router.post("/imports")
def upload(
    ctx: Page,
    _: Csrf,
    file: Annotated[UploadFile | None, File()] = None,
    source: Annotated[str, Form()] = "",
    mapping_mode: Annotated[str, Form()] = "auto",
    mapping_file: Annotated[UploadFile | None, File()] = None,
    person_type: Annotated[str, Form()] = "hcp",
) -> Response:
    ctx.require("data.import")

    t = ctx.t
    errors: dict[str, str] = {}
    fname = Path((file.filename if file else "") or "").name.replace("\x00", "")
    suffix = Path(fname).suffix.lower()
    if len(fname) > 120:  # keep the extension: the importer reads the format from it
        fname = fname[: 120 - len(suffix)] + suffix
    limit = get_settings().max_import_bytes
    if not file or not fname:
        errors["file"] = t("imp.no_file")
    elif suffix not in UPLOAD_SUFFIXES:
        errors["file"] = t("imp.bad_type", ext=suffix or "(none)")
    elif file.size is not None and file.size > limit:
        errors["file"] = t("imp.too_large", limit=f"{limit:,}")
    source = source.strip()
    if not source or len(source) > 100:
        errors["source"] = t("imp.bad_source")
    if mapping_mode == "file" and not (mapping_file and mapping_file.filename):
        errors["mapping"] = t("imp.mapping_needed")
    if errors:
        return _imports_page(ctx, 400, upload_error=errors, form={"source": source})
    tmp = Path(tempfile.mkdtemp(prefix="medscrm-upload-"))
    try:
        path = tmp / fname
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1024 * 1024)  # type: ignore[union-attr]
        if path.stat().st_size > limit:
            return _imports_page(
                ctx,
                400,
                upload_error={"file": t("imp.too_large", limit=f"{limit:,}")},
                form={"source": source},
            )
        mapping = None
        if mapping_mode == "file":
            mpath = tmp / "mapping.yaml"
            with mpath.open("wb") as out:
                shutil.copyfileobj(mapping_file.file, out, 1024 * 1024)  # type: ignore[union-attr]
            try:
                mapping = load_mapping(mpath)
            except MedscrmError as exc:
                msg = str(exc).replace(str(mpath), mapping_file.filename or "mapping.yaml")  # type: ignore[union-attr]
                return _imports_page(ctx, 400, upload_error={"mapping": msg}, form={"source": source})
        elif person_type in ("hcp", "patient"):
            mapping = Mapping(person_type=person_type)
        report = import_file(
            engine=_engine(ctx.request),
            tenant_id=ctx.tenant_id,
            source=source,
            path=path,
            mapping=mapping,
            actor=ctx.actor,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep = report.to_dict()
    if not ctx.can("pii.read"):
        for r in rep["rejections"]:
            r["value"] = "***" if r.get("value") else r.get("value")
    return _imports_page(
        ctx, 200 if report.status == "committed" else 400, report=rep, form={"source": source}
    )


@router.post("/quarantine/{entry_id}/fix")
async def quarantine_fix(entry_id: str, request: Request, _: Csrf) -> Response:
    form = await request.form()
    changes = {k[4:]: v for k, v in form.items() if k.startswith("col:") and isinstance(v, str)}
    return await _run_sync(_quarantine_fix, request, entry_id, changes)


def _quarantine_fix(request: Request, entry_id: str, changes: dict[str, str]) -> Response:
    ctx = _ctx(request)
    ctx.require("quarantine.manage")

    with _engine(request).begin() as conn:
        entry = qs.get_entry(conn=conn, tenant_id=ctx.tenant_id, entry_id=entry_id)
        base = entry.get("fixed_payload") or entry["payload"]
        diff = {
            k: v
            for k, v in changes.items()
            if k in base and str(base.get(k) if base.get(k) is not None else "") != v
        }
        if diff:
            qs.fix(conn=conn, tenant_id=ctx.tenant_id, entry_id=entry_id, changes=diff, actor=ctx.actor)
    return _redirect(ctx, f"/imports?focus={entry_id}#q-{entry_id}")


async def _run_sync(fn, *args):
    return await run_in_threadpool(fn, *args)


@router.post("/quarantine/{entry_id}/replay")
def quarantine_replay_one(ctx: Page, _: Csrf, entry_id: str) -> Response:
    return _replay(ctx, [entry_id])


@router.post("/quarantine/replay")
def quarantine_replay_fixed(ctx: Page, _: Csrf) -> Response:
    with _engine(ctx.request).connect() as conn:
        ids = list(
            conn.execute(
                sa.select(quarantine.c.id).where(
                    quarantine.c.tenant_id == ctx.tenant_id,
                    quarantine.c.status == "open",
                    quarantine.c.fixed_payload.is_not(None),
                )
            ).scalars()
        )
    return _replay(ctx, ids)


def _replay(ctx: Ctx, ids: list[str]) -> Response:
    ctx.require("quarantine.manage")

    if not ids:
        return _imports_page(ctx, replay={"replayed": [], "still_bad": []})
    with _engine(ctx.request).begin() as conn:
        result = qs.replay(conn=conn, tenant_id=ctx.tenant_id, entry_ids=ids, actor=ctx.actor)
    return _imports_page(ctx, replay=result)
