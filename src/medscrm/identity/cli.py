"""``medscrm resolve``: batch identity resolution of a file (works on the embedded engine)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["register", "explain_command", "load_or_train_model", "model_path", "save_models"]


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
        from .resolve import resolve_file

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


def model_path(engine, tenant_slug: str) -> Path:
    """Where the tenant's trained match model lives: beside the DuckDB/SQLite database file
    (``<db file>.identity-model.<tenant>.json``), else in the working directory."""
    db = getattr(engine.url, "database", None)
    backend = engine.url.get_backend_name()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tenant_slug) or "default"
    if backend in ("duckdb", "sqlite") and db and db != ":memory:":
        return Path(f"{db}.identity-model.{safe}.json")
    return Path.cwd() / f".medscrm-identity-model.{safe}.json"


def _record_table(records: list[dict]) -> list[dict]:
    from medscrm.db.schema import PERSON_FIELDS

    return [
        {"record_id": r["id"], "source": r.get("source"), **{f: r.get(f) for f in PERSON_FIELDS}}
        for r in records
    ]


def load_or_train_model(ws, *, person_type: str = "hcp", retrain: bool = False):
    """The tenant's saved model, or one trained now on the tenant's records (and saved)."""
    from medscrm.common import MedscrmError
    from medscrm.persons.service import load_records

    from .model import MatchModel
    from .resolve import resolve_records

    path = model_path(ws.engine, ws.tenant_slug)
    if path.exists() and not retrain:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            models = data.get("models") if "models" in data else {person_type: data}
            if person_type in models:
                return MatchModel.from_json(models[person_type]), path, False
        except (OSError, ValueError, KeyError):
            pass  # unreadable: retrain
    with ws.engine.connect() as conn:
        records = load_records(conn, ws.tenant_id)
    if len(records) < 2:
        raise MedscrmError("not enough source records to train a match model")
    res = resolve_records(_record_table(records))
    if not res.models:
        raise MedscrmError("the match model could not be trained: " + "; ".join(res.report.get("errors", [])))
    save_models(path, res.models)
    mdl = res.models.get(person_type) or next(iter(res.models.values()))
    return mdl, path, True


def save_models(path: Path, models: dict) -> None:
    """Persist {person_type: MatchModel} (what ``identity run`` trained) for ``explain``."""
    payload = {"models": {k: m.to_json() for k, m in models.items()}}
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def explain_pair(record_a: dict, record_b: dict, model) -> tuple[dict, dict, object, list[str]]:
    """Features of two raw records, the scorer's explanation and the strong identifiers they share."""
    import pandas as pd

    from .explain import Scorer
    from .features import STRONG_ID_COLUMNS, build_features

    feats, _ = build_features(pd.DataFrame([record_a, record_b]).astype(object))
    rows = []
    for rec in feats.to_dict("records"):
        rows.append(
            {
                k: (None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v)
                for k, v in rec.items()
            }
        )
    left, right = rows
    exp = Scorer(model).score(left, right)
    shared = [c for c in STRONG_ID_COLUMNS if left.get(c) and left.get(c) == right.get(c)]
    return left, right, exp, shared


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
    import sqlalchemy as sa

    from medscrm.common import MedscrmError
    from medscrm.db.schema import PERSON_FIELDS, source_records, sources
    from medscrm.workspace import open_workspace

    ws = open_workspace(tenant)
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
    a, b = (_record_table([by_id[x]])[0] for x in (record_a, record_b))
    ptype = (
        (a.get("person_type") or "hcp") if (a.get("person_type") or "hcp") in ("hcp", "patient") else "hcp"
    )
    model, path, trained = load_or_train_model(ws, person_type=ptype)
    print_explanation(
        record_a, record_b, a, b, model, note=f"model: {path}" + (" (trained now)" if trained else "")
    )


def print_explanation(id_a: str, id_b: str, a: dict, b: dict, model, *, note: str = "", console=None) -> None:
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
