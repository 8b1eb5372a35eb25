"""`leadscore hubspot ...`: set up HubSpot for the score sync."""

from __future__ import annotations

import click

from leadscore.container import container


@click.group()
def hubspot() -> None:
    """HubSpot: properties for the score, the contact sync."""


@hubspot.command("setup")
def hubspot_setup() -> None:
    """Create the `leadscore` property group and contact properties (safe to run again)."""
    from leadscore.integrations.hubspot import HubSpotCrm
    from leadscore.integrations.ports import DeliveryError

    settings = container().settings
    token = settings.hubspot_token.get_secret_value()
    if not token:
        raise click.ClickException("set LEADSCORE_HUBSPOT_TOKEN (a private-app token)")
    try:
        report = HubSpotCrm(token, settings.hubspot_api_url).setup_properties()
    except DeliveryError as exc:
        raise click.ClickException(f"HubSpot refused the setup: {exc.reason}") from None
    for name in report.created:
        click.echo(f"created  {name}")
    for name in report.existing:
        click.echo(f"exists   {name}")


@hubspot.command("sync")
@click.option("--force", is_flag=True, help="Send every lead, not only changes that matter.")
@click.option("--after", "after_id", default=None, help="Resume after this lead id.")
@click.option("--page", type=click.IntRange(1, 5000), default=500, show_default=True)
def hubspot_sync(force: bool, after_id: str | None, page: int) -> None:
    """Walk every lead and upsert into HubSpot the ones whose stage, grade or score (by more
    than LEADSCORE_HUBSPOT_SCORE_STEP) changed since HubSpot last took them.

    The decay job does the same sweep on every run; use this for the first fill or after an
    outage. Resumable: a stopped run prints the lead id to pass to --after, and running it
    again from the start is cheap, since synced leads are skipped."""
    from leadscore.cli_views import progress, stop_if_pending
    from leadscore.service.crm_outbox import sync_crm

    app = container()
    crm = app.hubspot_crm()
    if crm is None:
        raise click.ClickException("set LEADSCORE_HUBSPOT_TOKEN (a private-app token)")
    with progress("sync hubspot", True) as advance:
        report = sync_crm(app.existing_store(), crm, "hubspot", app.rules, app.now(),
                          step=app.settings.hubspot_score_step, after_id=after_id,
                          force=force, page=page, attempts=app.settings.hubspot_attempts,
                          on_progress=advance, clock=app.now)
    click.echo(f"hubspot: examined {report.examined}, sent {report.synced}, "
               f"refused {report.rejected + report.failed}, pending {report.pending}")
    stop_if_pending(report, "HubSpot", "leadscore hubspot sync")
