"""``medscrm resolve``: batch identity resolution of a file (works on the embedded engine)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["register"]


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
