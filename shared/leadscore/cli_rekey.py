"""`leadscore rekey`: move leads stored under the unkeyed ids of earlier releases to their
keyed ids (see `service/rekey.py`)."""

from __future__ import annotations

import click

from leadscore import jsonfmt
from leadscore.container import container


@click.command("rekey")
@click.option("--dry-run", is_flag=True, help="Count what would move; write nothing.")
@click.option("--after", "after_id", default=None, metavar="LEAD_ID",
              help="Resume after this lead id (the last one an interrupted run printed).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rekey(dry_run: bool, after_id: str | None, as_json: bool) -> None:
    """Move leads stored under the unkeyed ids of releases before keyed ids (SHA-256 of the
    address) to their keyed id, with their history, orders, aliases, handovers, email-tool
    records and visitor links; a lead that also exists under the new id is merged. Safe to
    run again, and to interrupt: `--after` resumes where a run stopped."""
    from leadscore.cli_views import progress
    from leadscore.service.rekey import RekeyReport, rekey_leads

    app = container()
    done = [0]

    with progress("re-keying", enabled=not as_json, total=app.store.count_leads()) as step:
        def on_page(report: RekeyReport) -> None:
            step(report.scanned - done[0])
            done[0] = report.scanned
            if not as_json:  # where to resume from, should the run be interrupted
                click.echo(f"checked up to {report.last_lead_id}", err=True)

        report = rekey_leads(app.store, app.rules, app.now(), dry_run=dry_run,
                             after_id=after_id, on_page=on_page)
    if as_json:
        click.echo(jsonfmt.dumps(report.model_dump(mode="json"), indent=2))
        return
    verb = "would move" if dry_run else "moved"
    click.echo(f"{report.scanned} leads checked: {verb} {report.moved} "
               f"({report.merged} merged into a lead under the new id), "
               f"{report.current} already keyed, {report.unrecognised} unrecognised ids "
               "left alone")


def register(main: click.Group) -> None:
    main.add_command(rekey)
