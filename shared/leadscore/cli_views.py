"""Tables for people (rich); `--json` is for machines."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Protocol

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from leadscore import jsonfmt


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
    now_table = Table(title="what each rule is worth now (adds up to the score)")
    for column in ("rule", "points now", "events", "reason"):
        now_table.add_column(column)
    for line in data.get("contributions", []):
        now_table.add_row(line["rule"], f"{line['points']:+.2f}", str(line["events"] or ""),
                          line["reason"])
    console.print(now_table)
    table = Table(title="history (points when each event happened)", show_lines=False)
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


def progress_columns(known_total: bool) -> list[ProgressColumn]:
    """Count, rate and time for every bar; a bar and time left when the total is known."""
    columns: list[ProgressColumn] = [TextColumn("{task.description}")]
    if known_total:
        columns += [BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed} done")]
    return [*columns, TimeElapsedColumn()]


@contextmanager
def progress(label: str, enabled: bool,
             total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on an interactive terminal (stderr), nothing otherwise. With `total`
    it shows done/total and the time left; without, the count so far and the time spent."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _: None
        return
    with Progress(*progress_columns(total is not None), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


class PageReport(Protocol):
    """What a resumable pass over every lead reports after each page."""

    @property
    def scanned(self) -> int: ...

    @property
    def last_lead_id(self) -> str | None: ...


@contextmanager
def resumable_pass(label: str, total: int,
                   as_json: bool) -> Iterator[Callable[[PageReport], None]]:
    """The page callback of a resumable pass over every lead (`rekey`, `dashboard
    recount`): it advances a progress bar and, unless the output is JSON, prints where an
    interrupted run resumes from (`--after`)."""
    done = [0]
    with progress(label, enabled=not as_json, total=total) as step:
        def on_page(report: PageReport) -> None:
            step(report.scanned - done[0])
            done[0] = report.scanned
            if not as_json:
                click.echo(f"checked up to {report.last_lead_id}", err=True)

        yield on_page


def write_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    if fmt == "jsonl":
        for row in rows:
            sys.stdout.write(jsonfmt.dumps(row) + "\n")
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A value as the JSONL export writes it (`false`, `2026-11-20T10:00:00Z`, not Python's
    `False` and `2026-11-20 10:00:00+00:00`), as text a spreadsheet shows as text: an
    address or a profile field may begin with "=", "+", "-" or "@", which Excel and Sheets
    would run as a formula (OWASP's CSV injection); a leading apostrophe makes it text.
    Numbers are not text, so a negative score stays a number."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if isinstance(value, datetime | date):
        return str(jsonfmt.default(value))
    return jsonfmt.dumps(value)


def print_timeline(email: str, lines: list[dict[str, Any]]) -> None:
    console = _console()
    console.print(f"[bold]{email}[/bold]: {len(lines)} history entries")
    total = 0.0
    for line in lines:
        total += line["delta"]
        console.print(f"[dim]{str(line['at'])[:19]}[/dim]  [bold]{line['kind']}[/bold]  "
                      f"{line['delta']:+g} points (running {total:.1f})  "
                      f"[dim]rules {line['rules_version']}, from {line['source'] or '-'}[/dim]")
        for item in line.get("items", []):
            console.print(f"    {item['points']:+g}  {item['rule']}: {item['reason']}")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    return table


def print_rescore(report: dict[str, Any]) -> None:
    console = _console()
    verb = "would change" if report["dry_run"] else "changed"
    console.print(f"rules {report['rules_version']}: {report['examined']} leads, {verb} "
                  f"{report['changed']}, skipped {report['skipped']} already rescored")
    console.print(_table("stage moves", ["move", "leads"],
                         [[k, v] for k, v in report["stage_moves"].items()]))
    console.print(_table("biggest movers", ["email", "before", "after", "stage"], [
        [m["email"], m["score_before"], m["score_after"],
         f"{m['stage_before']} -> {m['stage_after']}"] for m in report["biggest_movers"]]))
    console.print(_table("new distribution", ["score", "leads"],
                         [[k, v] for k, v in report["distribution"].items()]))


def print_report(report: dict[str, Any]) -> None:
    console = _console()
    console.print(f"{report['leads']} leads")
    console.print(_table("score distribution", ["score", "leads"],
                         [[k, v] for k, v in report["distribution"].items()]))
    console.print(_table("stage funnel", ["stage", "leads"],
                         [[k, v] for k, v in report["funnel"].items()]))
    console.print(_table("grade matrix (fit x engagement)", ["fit", "1", "2", "3", "4"],
                         [[f, *row.values()] for f, row in report["grades"].items()]))
    console.print(_table("calibration: purchases by score band", [
        "band", "leads", "purchased", "rate", "median days"], [
        [r["band"], r["leads"], r["purchased"], f"{r['purchase_rate']:.1%}",
         r["median_days_to_purchase"] if r["median_days_to_purchase"] is not None else "-"]
        for r in report["calibration"]]))


def stop_if_pending(report: Any, asker: str, resume_command: str) -> None:
    """End a sync command that left leads pending: why, how long the tool asked to wait,
    and the command that resumes after the last lead done (a ClickException, exit 1)."""
    if not report.pending:
        return
    wait = f" ({asker} asked to wait {report.retry_after_s:g} s)" if (
        report.retry_after_s is not None) else ""
    resume = f" --after {report.last_lead_id}" if report.last_lead_id else ""
    raise click.ClickException(f"stopped: {report.error}{wait}; resume with "
                               f"`{resume_command}{resume}`")
