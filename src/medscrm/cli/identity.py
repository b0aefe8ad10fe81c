"""OneID on the command line: `medscrm resolve FILE`, `medscrm identity ...` (run, explain, review,
merge, unmerge) and `medscrm persons ...` (golden records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medscrm.access import visible_attributes
from medscrm.cli._common import (
    JsonOpt,
    TenantOpt,
    WideOpt,
    _fail,
    _rid,
    _transact,
    _ws,
    console,
    print_rows,
    via_server,
)
from medscrm.cli._ids import resolve_id, resolve_ids
from medscrm.common import MedscrmError
from medscrm.db.schema import PERSON_FIELDS, identities, persons, source_records, sources

# The commands import their services when they run, so that `medscrm --help` stays light
# (medscrm/cli/__init__.py).

identity_app = typer.Typer(
    help="OneID: resolve records into persons, review uncertain pairs, merge and "
    "unmerge. 统一身份：合并、拆分与人工复核。",
    no_args_is_help=True,
)
review_app = typer.Typer(help="The review queue of uncertain pairs.", no_args_is_help=True)
identity_app.add_typer(review_app, name="review")
persons_app = typer.Typer(help="Golden records: show a person with lineage.", no_args_is_help=True)


@identity_app.command("run")
def identity_run(
    survivorship: Annotated[
        Path | None, typer.Option(help="Survivorship rules YAML (default: shipped).")
    ] = None,
    settings: Annotated[
        Path | None, typer.Option(help="Match settings YAML (default: the HCP settings).")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Resolve every record again and retrain the model (default: link only the new "
            "records when a previous run exists). 全量重算。",
        ),
    ] = False,
    tenant: TenantOpt = None,
) -> None:
    """Resolve source records into persons (OneID) and rebuild golden records.

    After a first full run, new records (imports, identify calls) are linked incrementally into
    the existing persons with the saved model; `--full` resolves everything again. People's
    decisions (merges, unmerges, rejections) are respected; uncertain pairs go to the review
    queue; person ids stay stable across runs. 增量关联新记录；--full 全量重算。
    """
    from medscrm.persons.engine import resolve_with_engine
    from medscrm.persons.incremental import run_incremental
    from medscrm.persons.run import run_identity
    from medscrm.persons.survivorship import load_survivorship

    try:
        cfg = load_survivorship(survivorship)
    except MedscrmError as exc:
        _fail(exc)
    from medscrm.identity.model import model_path

    ws = _ws(tenant)
    model_file = model_path(ws.engine, ws.tenant_slug)
    t = Table.grid(padding=(0, 2))
    inc = None
    with console.status("resolving identities…"), ws.engine.begin() as conn:
        if not full and settings is None:
            inc = run_incremental(
                conn, tenant_id=ws.tenant_id, model_file=model_file, survivorship=cfg, actor="cli"
            )
        if inc is None:
            rep, result, queued = run_identity(
                conn,
                tenant_id=ws.tenant_id,
                survivorship=cfg,
                actor="cli",
                resolve=lambda recs: resolve_with_engine(recs, settings_path=settings, model_file=model_file),
            )
    if inc is not None:
        for k, v in (
            ("mode", "incremental (new records only; --full to resolve everything)"),
            ("new source records", f"{inc.new_records:,}"),
            ("joined an existing person", f"{inc.attached:,}"),
            ("new persons", f"{inc.created:,}"),
            ("persons that grew", f"{inc.grown:,}"),
            ("merges", f"{inc.merged:,}"),
            ("pairs queued for review", f"{inc.review_pairs:,}"),
            ("persons", f"{inc.persons:,}"),
            ("seconds", ", ".join(f"{k} {v}" for k, v in inc.seconds.items())),
        ):
            t.add_row(k, v)
        console.print(t)
        return
    for k, v in (
        ("source records", rep.records),
        ("persons", rep.persons),
        ("new persons", rep.created),
        ("persons that grew", rep.grown),
        ("merges", rep.merged),
        ("splits", rep.split),
        ("persons with conflicting values", rep.conflicts),
        ("pairs queued for review", queued),
    ):
        t.add_row(k, f"{v:,}")
    for k, v in result.summary.items():
        t.add_row(k, str(v))
    console.print(t)


@identity_app.command("explain")
def identity_explain(
    record_a: Annotated[str, typer.Argument(help="Source record id (sr_…).")],
    record_b: Annotated[str, typer.Argument(help="Source record id (sr_…).")],
    tenant: TenantOpt = None,
) -> None:
    """Why two records did or did not match: every comparison, its level and weight, the decision."""
    try:
        explain_command(record_a, record_b, tenant)
    except MedscrmError as exc:
        _fail(exc)


@review_app.command("list")
def review_list(limit: int = 20, tenant: TenantOpt = None) -> None:
    """Open uncertain pairs, most likely first, side by side with the reasons."""
    from medscrm.persons import review

    ws = _ws(tenant)
    with ws.engine.connect() as conn:
        rows = review.list_reviews(conn=conn, tenant_id=ws.tenant_id, limit=limit)
    for r in rows:
        t = Table("field", "A", "B", title=f"{r['id']}  p={r['probability']:.3f}", title_justify="left")
        for f in (
            "source",
            "name",
            "hospital",
            "department",
            "title",
            "city",
            "phone",
            "email",
            "license_no",
        ):
            t.add_row(f, str((r["a"] or {}).get(f) or ""), str((r["b"] or {}).get(f) or ""))
        console.print(t)
        if r["detail"]:
            console.print("  why: " + json.dumps(r["detail"], ensure_ascii=False, default=str)[:300])


@review_app.command("decide")
def review_decide(
    review_id: str,
    decision: Annotated[str, typer.Argument(help="merge or reject")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Decide a pair: merge (same person) or reject (never merge these two)."""
    from medscrm.persons import review

    res = _transact(
        tenant,
        lambda conn, ws: review.decide(
            conn,
            tenant_id=ws.tenant_id,
            review_id=resolve_id(conn, ws.tenant_id, "review item", review_id),
            decision=decision,
            actor="cli",
            reason=reason,
        ),
    )
    console.print(res)


@review_app.command("revoke")
def review_revoke(
    review_id: Annotated[str, typer.Argument(help="The rejected pair's review id (or a unique prefix).")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Take back a rejection: the two records may be linked again by later runs, and the pair is open
    for review once more (audited). 撤销"不是同一人"的决定。"""
    from medscrm.persons import review

    res = _transact(
        tenant,
        lambda conn, ws: review.revoke_rejection(
            conn,
            tenant_id=ws.tenant_id,
            review_id=resolve_id(conn, ws.tenant_id, "review item", review_id),
            actor="cli",
            reason=reason,
        ),
    )
    console.print(f"{res['review_id']}: rejection revoked, the pair is open for review again")


@identity_app.command("merge")
def identity_merge(
    person_a: str,
    person_b: str,
    reason: Annotated[str | None, typer.Option()] = None,
    tenant: TenantOpt = None,
) -> None:
    """Merge person B into person A (kept together by later runs)."""
    from medscrm.persons import review

    def merge(conn, ws):
        a = resolve_id(conn, ws.tenant_id, "person", person_a)
        b = resolve_id(conn, ws.tenant_id, "person", person_b)
        rep = review.merge_persons(
            conn, tenant_id=ws.tenant_id, person_a=a, person_b=b, actor="cli", reason=reason
        )
        return rep.person_of.get(a, a)

    console.print(f"merged into {_transact(tenant, merge)}")


@identity_app.command("unmerge")
def identity_unmerge(
    person_id: str,
    records: Annotated[list[str], typer.Option("--record", help="Source record id to split off; repeat.")],
    reason: Annotated[str | None, typer.Option()] = None,
    tenant: TenantOpt = None,
) -> None:
    """Split records off a person into a new one (kept apart by later runs)."""
    from medscrm.persons import review

    rep = _transact(
        tenant,
        lambda conn, ws: review.unmerge(
            conn,
            tenant_id=ws.tenant_id,
            person_id=resolve_id(conn, ws.tenant_id, "person", person_id),
            record_ids=resolve_ids(conn, ws.tenant_id, "source record", records),
            actor="cli",
            reason=reason,
        ),
    )
    new = [p for k, p in rep.person_of.items() if k.startswith("split:")]
    console.print(f"split off into {', '.join(new)}")


@persons_app.command("search")
def persons_search(
    q: Annotated[str | None, typer.Argument(help="Part of the name.")] = None,
    hospital: Annotated[str | None, typer.Option(help="Part of the hospital name.")] = None,
    department: Annotated[str | None, typer.Option(help="Part of the department.")] = None,
    role: Annotated[
        str, typer.Option(help="Show as this role (PII masked for roles without PII rights).")
    ] = "analyst",
    limit: int = 20,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
    tenant: TenantOpt = None,
) -> None:
    """Search golden records by name, hospital or department."""
    from medscrm.profiles import service as profiles

    api = via_server(tenant)
    if api is not None:  # `medscrm serve` holds the database: read through its API (its token's role)
        params = {"q": q, "hospital": hospital, "department": department, "limit": max(1, min(limit, 500))}
        rows = api.get("/api/v1/persons", params=params)["persons"]
        if role != "admin":  # show as the role asked for, as the local path does
            rows = [visible_attributes(dict(r), role) for r in rows]
    else:
        ws = _ws(tenant)
        with ws.engine.connect() as conn:
            rows = profiles.search(
                conn,
                tenant_id=ws.tenant_id,
                q=q,
                hospital=hospital,
                department=department,
                role=role,
                limit=limit,
            )
    print_rows(
        [dict(r) for r in rows],
        [
            ("person", "person_id"),
            *[(k, k) for k in ("name", "hospital", "department", "title", "city", "phone")],
        ],
        wide=wide,
        as_json=as_json,
        id_columns=("person",),
    )


@persons_app.command("show")
def persons_show(
    person_id: Annotated[str, typer.Argument(help="Person id (p_…) or a unique prefix of it.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, full values.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """A person's golden record: each attribute with the source record and rule it came from, and
    the person's source records (their ids are what `medscrm identity unmerge --record` takes).
    While `medscrm serve` holds the database, read through its API."""
    api = via_server(tenant)
    if api is not None:  # `medscrm serve` holds the database: read through its API
        missing = f"person {person_id!r} not found (through the server's API, give the full id)"
        prof = api.get(f"/api/v1/persons/{person_id}", missing=missing)
        rec_rows = api.get(f"/api/v1/persons/{person_id}/records", missing=missing)["records"]
        p = {
            "status": "merged"
            if prof["person_id"] != prof.get("requested_id", prof["person_id"])
            else "active",
            "merged_into": prof["person_id"] if prof["person_id"] != person_id else None,
            "person_type": prof["person_type"],
            "attributes": prof["attributes"],
            "lineage": prof["lineage"],
        }
        ids = [(i["type"], i["value"]) for i in prof["identities"]]
    else:
        p, ids, rec_rows = _person_local(tenant, person_id)
        person_id = p["id"]
    if as_json:
        out = {
            "id": person_id,
            "status": p["status"],
            "merged_into": p["merged_into"],
            "person_type": p["person_type"],
            "attributes": p["attributes"] or {},
            "lineage": p["lineage"] or {},
            "identities": [{"type": a, "value": b} for a, b in ids],
            "source_records": rec_rows,
        }
        print(json.dumps(out, ensure_ascii=False, default=str))
        return
    if p["status"] == "merged":
        console.print(f"[yellow]{person_id} was merged into {p['merged_into']}[/]")
    t = Table("attribute", "value", "source", "rule", "conflicts", title=f"{person_id} ({p['person_type']})")
    for k, v in (p["attributes"] or {}).items():
        lin = (p["lineage"] or {}).get(k, {})
        t.add_row(
            k, str(v), lin.get("source", ""), lin.get("rule", ""), ", ".join(lin.get("conflicts", []))[:60]
        )
    console.print(t)
    console.print("identities: " + ", ".join(f"{a}={b}" for a, b in ids))
    r = Table("source record", "source", "key", "name", "hospital", title=f"source records: {len(rec_rows)}")
    r.columns[0].no_wrap = True  # full ids: `medscrm identity unmerge PERSON --record SR_ID` takes them
    r.columns[0].min_width = max((len(x["id"]) for x in rec_rows), default=10)
    for x in rec_rows:
        r.add_row(x["id"], x["source"], x["record_key"], x.get("name") or "", x.get("hospital") or "")
    console.print(r)


def _person_local(tenant: str | None, person_id: str) -> tuple[dict, list, list[dict]]:
    """A person, its identities and its source records, read from the database."""

    from medscrm.persons import review

    ws = _ws(tenant)
    person_id = _rid(ws, "person", person_id)
    with ws.engine.connect() as conn:
        p = (
            conn.execute(
                sa.select(persons).where(persons.c.tenant_id == ws.tenant_id, persons.c.id == person_id)
            )
            .mappings()
            .first()
        )
        if not p:
            _fail(MedscrmError(f"person {person_id!r} not found"))
        ids = conn.execute(
            sa.select(identities.c.type, identities.c.value).where(
                identities.c.tenant_id == ws.tenant_id, identities.c.person_id == person_id
            )
        ).all()
        recs = review.current_clusters(conn, ws.tenant_id).get(person_id, [])
        sr = source_records
        rec_rows = [
            dict(r)
            for r in conn.execute(
                sa.select(sr.c.id, sources.c.name.label("source"), sr.c.record_key, sr.c.name, sr.c.hospital)
                .join(sources, sources.c.id == sr.c.source_id)
                .where(sr.c.tenant_id == ws.tenant_id, sr.c.id.in_(list(recs)))
                .order_by(sources.c.name, sr.c.record_key)
            ).mappings()
        ]
    return dict(p), [tuple(x) for x in ids], rec_rows


# --- medscrm resolve FILE ----------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    @app.command("resolve")
    def resolve(
        input: Path = typer.Argument(..., help="CSV/XLSX/JSONL/Parquet with a record_id column"),
        output: Path = typer.Option(..., "--output", "-o", help="OUT.csv: record_id,person_id,confidence"),
        engine: str = typer.Option("duckdb", "--engine", help="duckdb (embedded) or spark"),
        settings: Path | None = typer.Option(None, "--settings", help="match settings YAML"),
        person_type: str | None = typer.Option(
            None, "--person-type", help="hcp or patient (default: per record)"
        ),
        report: Path | None = typer.Option(None, "--report", help="write the full report as JSON"),
    ) -> None:
        """Resolve the records of INPUT into persons and write OUT.csv."""
        from medscrm.identity.resolve import resolve_file

        console = Console(stderr=True)
        if engine not in ("duckdb", "spark"):
            console.print(f"[red]unknown engine {engine!r}: use duckdb or spark[/red]")
            raise typer.Exit(2)
        if person_type not in (None, "hcp", "patient"):
            console.print(f"[red]unknown person type {person_type!r}: use hcp or patient[/red]")
            raise typer.Exit(2)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as prog:
            task = prog.add_task("reading", total=1.0)

            def step(msg: str, frac: float) -> None:
                prog.update(task, description=msg, completed=frac)

            try:
                summary = resolve_file(
                    input, output, engine=engine, settings=settings, person_type=person_type, progress=step
                )
            except (ValueError, OSError) as e:
                prog.stop()
                console.print(f"[red]cannot resolve {input}: {e}[/red]")
                raise typer.Exit(1) from e
        t = Table(title="identity resolution", show_header=False)
        feats = summary.get("features", {})
        rows = [
            ("input rows", summary["input_rows"]),
            ("persons", summary["persons"]),
            ("singletons", summary["singletons"]),
            ("duplicate record ids", summary["duplicate_record_ids"]),
            ("records with no usable field (own person)", feats.get("unusable_records", 0)),
            ("malformed values (ignored for matching)", sum(feats.get("malformed", {}).values())),
            ("shared identifier values (not identities)", summary["shared_identifier_values"]),
            ("seconds", summary["seconds"]),
        ]
        for ptype, st in summary.get("person_types", {}).items():
            rows.append(
                (
                    f"{ptype}: deterministic / accepted / review links",
                    f"{st['deterministic_links']} / {st['accepted_pairs']} / {st['review_pairs']}",
                )
            )
        for k, v in rows:
            t.add_row(k, str(v))
        console.print(t)
        for k, v in feats.get("malformed", {}).items():
            console.print(
                f"  malformed {k}: {v} (e.g. {', '.join(feats['malformed_examples'].get(k, [])[:3])})"
            )
        for s in summary.get("shared_identifier_examples", [])[:5]:
            console.print(
                f"  shared {s['column']} {s['value']}: {s['records']} records, {s['persons']} persons"
            )
        for e in summary.get("errors", []):
            console.print(f"[yellow]{e}[/yellow]")
        if report:
            report.write_text(
                json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
            )
        console.print(f"wrote {output}")


# --- medscrm identity explain A B -------------------------------------------------------------
_SHOW = {
    "name": ("name_full", "name_py", "surname_py"),
    "hospital": ("hospital_id",),
    "department": ("department",),
    "title": ("title",),
    "phone": ("phone",),
    "email": ("email",),
    "city": ("city", "province"),
    "gender": ("gender",),
    "license": ("license_no",),
    "unionid": ("unionid",),
    "wecom": ("wecom_id",),
}


def _val(feat: dict, comparison: str) -> str:
    vals = [feat.get(c) for c in _SHOW.get(comparison, (comparison,))]
    vals = [str(v) for v in vals if v is not None and v != ""]
    if comparison == "name" and feat.get("name_partial") == 1:
        return f"{feat.get('surname_py')} (nickname)"
    return vals[0] if vals else "—"


def explain_command(record_a: str, record_b: str, tenant: str | None = None) -> None:
    """``medscrm identity explain A B``: why two source records did or did not match."""

    from medscrm.persons.engine import load_or_train_model, record_table

    ws = _ws(tenant)
    record_a, record_b = _rid(ws, "source record", record_a), _rid(ws, "source record", record_b)
    sr = source_records
    with ws.engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(sr.c.id, sources.c.name.label("source"), *[sr.c[f] for f in PERSON_FIELDS])
                .join(sources, sources.c.id == sr.c.source_id)
                .where(sr.c.tenant_id == ws.tenant_id, sr.c.id.in_([record_a, record_b]))
            )
            .mappings()
            .all()
        )
    by_id = {r["id"]: dict(r) for r in rows}
    missing = [x for x in (record_a, record_b) if x not in by_id]
    if missing:
        raise MedscrmError(f"source record(s) not found in tenant {ws.tenant_slug!r}: {', '.join(missing)}")
    a, b = (record_table([by_id[x]])[0] for x in (record_a, record_b))
    ptype = (
        (a.get("person_type") or "hcp") if (a.get("person_type") or "hcp") in ("hcp", "patient") else "hcp"
    )
    model, path, trained = load_or_train_model(ws, person_type=ptype)
    print_explanation(
        record_a, record_b, a, b, model, note=f"model: {path}" + (" (trained now)" if trained else "")
    )


def print_explanation(id_a: str, id_b: str, a: dict, b: dict, model, *, note: str = "", console=None) -> None:
    from medscrm.identity.explain import explain_pair

    console = console or Console()
    left, right, exp, shared = explain_pair(a, b, model)
    t = Table(title=f"{id_a}  vs  {id_b}")
    for col in ("comparison", "A", "B", "level", "weight"):
        t.add_column(col, justify="right" if col == "weight" else "left")
    for f in exp.fields:
        t.add_row(
            f.comparison,
            _val(left, f.comparison),
            _val(right, f.comparison),
            f"{f.label} ({f.level})",
            "" if f.level == -1 else f"{f.weight:+.2f}",
        )
    t.add_row("prior", "", "", "", f"{exp.prior_weight:+.2f}", end_section=True)
    t.add_row("[b]total[/b]", "", "", "", f"[b]{exp.total_weight:+.2f}[/b]")
    console.print(t)
    decision = exp.decision
    reason = exp.reason
    if shared and decision != "match":
        decision = "match (deterministic)"
        reason = (
            f"shared strong identifier: {', '.join(shared)} (linked unless the value is used by more "
            f"persons than allowed); {reason}"
        )
    console.print(f"probability [b]{exp.probability:.4f}[/b]   decision [b]{decision}[/b]")
    console.print(f"reason: {reason}")
    if note:
        console.print(f"[dim]{note}[/dim]")
