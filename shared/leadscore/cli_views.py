"""Tables for people (rich); `--json` is for machines."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table


def _console() -> Console:
    """The terminal's width for people; a wide fixed width when piped, so lines stay whole."""
    return Console(width=None if sys.stdout.isatty() else 160)


def print_lead(data: dict[str, Any]) -> None:
    console = _console()
    console.print(f"[bold]{data['email']}[/bold]  ({data['lead_id']})")
    console.print(f"score {data['score']:.1f} = fit {data['fit_score']:.1f} + engagement "
                  f"{data['engagement_score']:.1f}   stage [bold]{data['stage']}[/bold]   "
                  f"grade {data['grade']}   email {data['email_status']}"
                  + ("   [yellow]non-opener[/yellow]" if data["non_opener"] else ""))
    purchases = data["purchases"]
    if purchases["count"]:
        console.print(f"purchases {purchases['count']}, total "
                      f"{purchases['total_minor'] / 100:.2f} {purchases['currency']}")
    table = Table(title="history", show_lines=False)
    for column in ("at", "kind", "delta", "reason", "rules"):
        table.add_column(column)
    for line in data["history"]:
        table.add_row(str(line["at"])[:19], line["kind"], f"{line['delta']:+g}",
                      line["reason"], line["rules_version"])
    console.print(table)


def print_leads(rows: list[dict[str, Any]]) -> None:
    table = Table()
    for column in ("email", "score", "stage", "grade", "email status", "scored at"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["email"], f"{row['score']:.1f}", row["stage"], row["grade"],
                      row["email_status"], str(row["scored_at"] or "")[:19])
    _console().print(table)


@contextmanager
def progress(label: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on an interactive terminal (stderr), nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _: None
        return
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.advance(task, n)


def write_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    if fmt == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str) + "\n")
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
