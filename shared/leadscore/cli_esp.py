"""`leadscore esp ...`: scores back in Mailchimp, Brevo and SendGrid (issue 22)."""

from __future__ import annotations

import click

from leadscore.container import container
from leadscore.integrations.esp.port import EspSync

TOOLS = ("mailchimp", "brevo", "sendgrid")


def _tool(name: str) -> EspSync:
    from leadscore.domain.segments import segments_of
    from leadscore.integrations.esp.registry import build

    app = container()
    esp = build(name, app.settings, segments_of(app.rules))
    if esp is None:
        keys = {"mailchimp": "LEADSCORE_MAILCHIMP_API_KEY and LEADSCORE_MAILCHIMP_LIST_ID",
                "brevo": "LEADSCORE_BREVO_API_KEY", "sendgrid": "LEADSCORE_SENDGRID_API_KEY"}
        raise click.ClickException(f"{name} is not configured: set {keys[name]}")
    return esp


def _tools(name: str | None) -> list[EspSync]:
    if name:
        return [_tool(name)]
    found: list[EspSync] = container().esp_syncs()
    if not found:
        raise click.ClickException("no email tool is configured (see the README)")
    return found


@click.group()
def esp() -> None:
    """Email tools: score fields, stage tags and lists, the non-opener clean-up."""


@esp.command("setup")
@click.argument("tool", type=click.Choice(TOOLS))
def esp_setup(tool: str) -> None:
    """Create the score fields in TOOL if missing (safe to run again)."""
    from leadscore.integrations.ports import DeliveryError

    try:
        report = _tool(tool).setup()
    except DeliveryError as exc:
        raise click.ClickException(f"{tool} refused the setup: {exc.reason}") from None
    for name in report.created:
        click.echo(f"created  {name}")
    for name in report.existing:
        click.echo(f"exists   {name}")


@esp.command("resync")
@click.argument("tool", type=click.Choice(TOOLS))
@click.option("--force", is_flag=True, help="Send every lead, not only the differences.")
@click.option("--after", "after_id", default=None, help="Resume after this lead id.")
@click.option("--page", type=click.IntRange(1, 5000), default=500, show_default=True)
def esp_resync(tool: str, force: bool, after_id: str | None, page: int) -> None:
    """Walk every lead, a page at a time, and send TOOL what differs from its last sync.

    Resumable: a run that stops (a limit, Ctrl-C) prints the lead id to pass to --after;
    running it again from the start is also cheap, since synced leads are skipped."""
    from leadscore.cli_views import progress, stop_if_pending
    from leadscore.service.esp_sync import sync_tool

    app, sync = container(), _tool(tool)
    last = after_id
    with progress(f"resync {tool}", True) as advance:
        try:
            report = sync_tool(app.store, sync, app.rules, app.now(), after_id=after_id,
                               cleanup=app.settings.esp_cleanup, force=force, page=page,
                               attempts=app.settings.esp_attempts, on_progress=advance)
        except KeyboardInterrupt:
            raise click.ClickException(
                f"interrupted; resume with --after {last}" if last else "interrupted") from None
    click.echo(f"{tool}: examined {report.examined}, sent {report.synced}, "
               f"removed {report.removed}, restored {report.restored}, "
               f"refused {report.rejected}, failed {report.failed}, "
               f"pending {report.pending}")
    if report.refused_earlier:
        click.echo(f"{tool}: {report.refused_earlier} refused for good earlier (invalid or "
                   "forbidden addresses); sent again when those leads change, or with --force")
    stop_if_pending(report, "the tool", f"leadscore esp resync {tool}")


@esp.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Only say who would be removed, per tool.")
@click.option("--show-emails", is_flag=True, help="With --dry-run: list the addresses.")
@click.option("--tool", type=click.Choice(TOOLS), default=None, help="Only this tool.")
def esp_cleanup(dry_run: bool, show_emails: bool, tool: str | None) -> None:
    """Take flagged non-openers off each tool's list (its configured removal action)."""
    from leadscore.service.esp_sync import cleanup_preview, sync_tool

    app = container()
    if not app.settings.esp_cleanup:
        raise click.ClickException("LEADSCORE_ESP_CLEANUP is off: nothing is removed")
    for sync in _tools(tool):
        if dry_run:
            preview = cleanup_preview(app.store, sync, app.rules, show_emails=show_emails)
            click.echo(f"{sync.name}: {preview.would_remove} non-openers would be removed "
                       f"({preview.action}); the list shrinks by {preview.would_remove}")
            for email in preview.emails:
                click.echo(f"  {email}")
            continue
        flagged = [lead.lead_id for lead in app.store.list_leads(non_opener=True,
                                                                  limit=100_000)]
        report = sync_tool(app.store, sync, app.rules, app.now(), lead_ids=flagged,
                           attempts=app.settings.esp_attempts)
        click.echo(f"{sync.name}: removed {report.removed}, pending {report.pending}")
