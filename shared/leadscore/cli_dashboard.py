"""`leadscore dashboard recount`: count the leads stored by an older release into the
dashboard's statistics documents (see `service/stats_recount.py`)."""

from __future__ import annotations

import click

from leadscore import jsonfmt
from leadscore.container import container


@click.group("dashboard")
def dashboard() -> None:
    """The dashboard's statistics documents."""


@dashboard.command("recount")
@click.option("--after", "after_id", default=None, metavar="LEAD_ID",
              help="Resume after this lead id (the last one an interrupted run printed).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def recount(after_id: str | None, as_json: bool) -> None:
    """Count every lead stored without the dashboard's statistics keys (an older release
    wrote it), each in its own transaction, then mark the statistics complete so the
    dashboard reads them instead of aggregation queries. Safe beside live traffic, safe to
    run again (it counts nothing twice) and to interrupt: `--after` resumes."""
    from leadscore.cli_views import resumable_pass
    from leadscore.service.stats_recount import recount as run

    app = container()
    with resumable_pass("recounting", app.store.count_leads(), as_json) as on_page:
        report = run(app.store, app.rules, after_id=after_id, on_page=on_page)
    if as_json:
        click.echo(jsonfmt.dumps(report.model_dump(mode="json"), indent=2))
        return
    click.echo(f"{report.scanned} leads checked: {report.counted} counted now; the "
               "dashboard's statistics are complete")


def register(main: click.Group) -> None:
    main.add_command(dashboard)
