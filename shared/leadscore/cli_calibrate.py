"""`leadscore calibrate` (is the score any good?) and `leadscore import outcomes FILE.csv`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from leadscore import jsonfmt
from leadscore.container import container, rules_text


def instant(_: click.Context, __: click.Parameter, value: str | None) -> datetime | None:
    """A command's moment option: ISO 8601 with a zone, from 1970 to 2200."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-08-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give a timezone, e.g. 2026-08-01T00:00:00Z")
    from leadscore.domain.events import within_scored_years

    try:  # 9999-12-31 overflowed in the back-test with a traceback
        return within_scored_years(parsed)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _svg_path(_: click.Context, __: click.Parameter, value: Path | None) -> Path | None:
    """Checked before the back-test runs: SVG only (a PNG would need a rendering library;
    `rsvg-convert chart.svg -o chart.png` makes one)."""
    if value is not None and value.suffix.lower() != ".svg":
        raise click.BadParameter("the chart is SVG: name it FILE.svg (for a PNG, convert it, "
                                 "e.g. rsvg-convert chart.svg -o chart.png)")
    return value


@click.group("import")
def import_group() -> None:
    """Import facts from files (sales outcomes)."""


@import_group.command("outcomes")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_outcomes(file: Path, as_json: bool) -> None:
    """Import sales outcomes from FILE.csv: email, outcome, occurred_at, and optionally
    amount, currency, reason, id. Bad rows are listed by line and skipped."""
    from leadscore.cli_views import progress
    from leadscore.service.outcomes_import import import_outcomes as run

    app = container()
    # bytes UTF-8 cannot read are kept as surrogates: their rows are listed as bad, the
    # others imported (a Latin-1 "España" ended the import with a traceback)
    with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as lines, \
            progress("importing outcomes", enabled=not as_json) as step:
        report = run(app.store, app.rules, lines, app.now(), on_progress=step)
    if as_json:
        click.echo(jsonfmt.dumps(report.model_dump(mode="json"), indent=2))
    else:
        erased = (f", {report.erased} for erased addresses, not recorded" if report.erased
                  else "")
        click.echo(f"{report.rows} rows: {report.applied} outcomes recorded, "
                   f"{report.duplicates} already known, {report.bad} bad{erased}")
        for bad in report.bad_rows:
            click.echo(f"  line {bad.line}: {bad.problem}", err=True)
        if report.bad > len(report.bad_rows):
            click.echo(f"  ... and {report.bad - len(report.bad_rows)} more", err=True)
    if report.bad:
        sys.exit(1)


@click.command()
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="A candidate rules file, back-tested beside the current rules.")
@click.option("--at", callback=instant,
              help="Cut-off (ISO 8601 with zone); default: now minus the window.")
@click.option("--window", "window_days", type=click.IntRange(min=1, max=3650), default=90,
              show_default=True, help="Days after the cut-off in which a win counts.")
@click.option("--purchases-are-wins/--no-purchases-are-wins", default=True, show_default=True,
              help="Count a paid, not fully refunded purchase as a win.")
@click.option("--target-precision", type=click.FloatRange(0, 1), default=None,
              help="Find the lowest threshold whose precision reaches this.")
@click.option("--target-volume", type=click.IntRange(min=1), default=None,
              help="Find the lowest threshold that hands over at most this many leads.")
@click.option("--bootstrap", "resamples", type=click.IntRange(min=0), default=200,
              show_default=True, help="Bootstrap resamples for the intervals (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), callback=_svg_path,
              help="Also draw it to FILE.svg: reliability curve and lift by band.")
def calibrate(rules_file: Path | None, at: datetime | None, window_days: int,
              purchases_are_wins: bool, target_precision: float | None,
              target_volume: int | None, resamples: int, as_json: bool,
              chart: Path | None) -> None:
    """Back-test the score: each lead as it stood at the cut-off against wins after it."""
    from leadscore.cli_views import progress
    from leadscore.domain.rules import parse_rules
    from leadscore.service.calibration import calibrate as run

    app = container()
    rules_sets = {"current": app.rules}
    if rules_file:
        rules_sets["candidate"] = parse_rules(rules_text(rules_file), str(rules_file))
    store = app.existing_store()
    with progress("back-testing", enabled=not as_json, total=store.count_leads()) as step:
        report = run(store, rules_sets, app.now(), at=at, window_days=window_days,
                     purchases_are_wins=purchases_are_wins, target_precision=target_precision,
                     target_volume=target_volume, resamples=resamples, on_progress=step)
    data = report.model_dump(mode="json")
    _save_for_the_dashboard(store, data)
    if as_json:
        click.echo(jsonfmt.dumps(data, indent=2))
    else:
        print_calibration(data)
    if chart:
        from leadscore.calibration_chart import chart_svg

        chart.write_text(chart_svg(data), "utf-8")
        if not as_json:  # the JSON alone on stdout, for pipes
            click.echo(f"wrote {chart}")


def _save_for_the_dashboard(store: Any, data: dict[str, Any]) -> None:
    """The dashboard shows the latest back-test (it reads every history: never on page view)."""
    from leadscore.store.port import DashboardStats

    if isinstance(store, DashboardStats):
        store.put_calibration(data)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_calibration(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"cut-off {report['at'][:19]}, window {report['window_days']} days: "
        f"{report['included']} leads back-tested, {report['conversions']} converted "
        f"({_pct(report['base_rate'])}); excluded {report['excluded_young']} not yet seen "
        f"and {report['excluded_converted']} already converted at the cut-off")
    results = report["results"]
    summary = Table(title="ranking (95% bootstrap intervals)")
    summary.add_column("")
    for result in results:
        summary.add_column(f"{result['name']} ({result['rules_version']})")
    summary.add_row("ROC AUC", *[f"{_num(r['auc'])} [{_num(r['auc_interval']['low'])}, "
                                 f"{_num(r['auc_interval']['high'])}]" for r in results])
    summary.add_row("Brier (calibrated)", *[
        f"{_num(r['brier'], 4)} [{_num(r['brier_interval']['low'], 4)}, "
        f"{_num(r['brier_interval']['high'], 4)}]" for r in results])
    console.print(summary)
    for result in results:
        for key, title in (("quantile_bands", "by score quintile"),
                           ("stage_bands", "by stage threshold")):
            table = Table(title=f"{result['name']}: conversion {title}")
            for column in ("band", "leads", "converted", "rate"):
                table.add_column(column)
            for band in result[key]:
                table.add_row(band["label"], str(band["leads"]), str(band["conversions"]),
                              _pct(band["rate"]))
            console.print(table)
        table = Table(title=f"{result['name']}: thresholds")
        for column in ("threshold", "volume", "precision", "recall", "lift"):
            table.add_column(column)
        named = [("MQL", result["thresholds"][0]), ("SQL", result["thresholds"][1]),
                 (f"precision >= {report['target_precision']}", result["for_target_precision"]),
                 (f"volume <= {report['target_volume']}", result["for_target_volume"])]
        for name, row in named:
            if row is None:
                if not name.endswith("None"):
                    table.add_row(name, "not reachable", "", "", "")
                continue
            table.add_row(f"{name}: {row['threshold']:g}", str(row["volume"]),
                          _pct(row["precision"]), _pct(row["recall"]), _num(row["lift"], 2))
        console.print(table)


@click.command("suggest-rules")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the candidate rules file.")
@click.option("--at", callback=instant,
              help="Cut-off (ISO 8601 with zone); default: now minus the window.")
@click.option("--window", "window_days", type=click.IntRange(min=1), default=90,
              show_default=True, help="Days after the cut-off in which a win counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def suggest_rules(out: Path, at: datetime | None, window_days: int, as_json: bool) -> None:
    """Fit points to past conversions and write them as a candidate rules file
    (needs `pip install 'leadscore[learn]'` and at least 100 conversions)."""
    from leadscore.domain.rules import default_rules_text
    from leadscore.service.suggest import candidate_yaml, suggest

    try:
        import sklearn  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "suggest-rules needs scikit-learn: pip install 'leadscore[learn]'") from None
    app = container()
    found = suggest(app.existing_store(), app.rules, app.now(), at=at, window_days=window_days)
    source = app.settings.rules
    text = rules_text(source) if source else default_rules_text()
    out.write_text(candidate_yaml(text, found, f"suggested-{app.now():%Y%m%d}"), "utf-8")
    if as_json:
        click.echo(jsonfmt.dumps(found.model_dump(mode="json"), indent=2))
        return
    click.echo(f"fitted on {found.training_leads} leads, judged on the latest "
               f"{found.holdout_leads} ({found.conversions} conversions in all)")
    click.echo(f"holdout ROC AUC: suggested {_num(found.holdout_auc_model)}, current rules "
               f"{_num(found.holdout_auc_current)}")
    if found.current_is_as_good:
        click.echo("the current rules rank as well as the suggestion: no change needed")
    for key, points in sorted(found.points.items(), key=lambda kv: -abs(kv[1])):
        click.echo(f"  {points:+5.0f}  {key}")
    click.echo(f"wrote {out}: preview with `leadscore rescore --dry-run --rules {out}` and "
               f"`leadscore calibrate --rules {out}`")


def register(main: click.Group) -> None:
    main.add_command(import_group)
    main.add_command(calibrate)
    main.add_command(suggest_rules)
