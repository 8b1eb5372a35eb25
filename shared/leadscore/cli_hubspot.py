"""`leadscore hubspot ...`: set up HubSpot for the score sync."""

from __future__ import annotations

import click

from leadscore.container import container


@click.group()
def hubspot() -> None:
    """HubSpot: properties for the score, contact sync."""


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
