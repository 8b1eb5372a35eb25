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
    from leadscore.cli_views import resumable_pass
    from leadscore.service.rekey import rekey_leads

    app = container()
    with resumable_pass("re-keying", app.store.count_leads(), as_json) as on_page:
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
