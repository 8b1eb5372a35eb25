"""End to end: a stage change recorded by the store reaches the Slack fake through the
handover sweep and the HubSpot fake through the CRM outbox, once each, with the lead's
reasons."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW
from fakes.hubspot_api import HubSpotFake
from fakes.slack_api import SlackWebhookFake

from integrations.conftest import HOOK_PATH, HUBSPOT_TOKEN, warm_lead_events
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.integrations.hubspot import HubSpotCrm
from leadscore.service.handover import deliver_pending
from leadscore.service.writes import apply_events

EMAIL = "ana@tiendassol.example"


def container_for(store: Any, slack: SlackWebhookFake, hubspot: HubSpotFake,
                  rules: Rules) -> Container:
    return Container(Settings(store="memory", slack_webhook_url=slack.url + HOOK_PATH,
                              dashboard_url="https://crm.example/leads/{lead_id}",
                              hubspot_token=HUBSPOT_TOKEN, hubspot_api_url=hubspot.url),
                     store=store, rules=rules, clock=lambda: NOW)


def test_an_mql_reaches_slack_and_hubspot_once(durable_store: Any, rules: Rules,
                                               slack_api: SlackWebhookFake,
                                               hubspot_api: HubSpotFake) -> None:
    HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url).setup_properties()
    app = container_for(durable_store, slack_api, hubspot_api, rules)
    # GIVEN events that make a lead marketing-qualified, recorded with their stage change
    apply_events(durable_store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL), rules, NOW)
    # WHEN Slack is busy once and the sweeps run twice
    slack_api.fail_next(503, "busy")
    report = deliver_pending(durable_store, app.integration_sinks(), NOW, attempts=3,
                             base_s=0)
    again = deliver_pending(durable_store, app.integration_sinks(), NOW + timedelta(hours=2))
    app.sync_crm()
    app.sync_crm()
    # THEN one card and one contact update arrived, and the second sweep had nothing to do
    assert (report.delivered, again.delivered) == (1, 0)
    assert len(slack_api.delivered) == 1
    card = str(slack_api.delivered[0])
    assert "MQL: Ana Pereira" in card and "Requested a demo" in card
    assert f"https://crm.example/leads/{lead_id_for(EMAIL)}" in card
    assert hubspot_api.stored == {EMAIL: 1}
    contact = hubspot_api.contacts[EMAIL]
    assert contact["leadscore_stage"] == "mql"
    assert contact["leadscore_top_reasons"].startswith("Requested a demo")


def test_a_move_down_updates_hubspot_but_sends_no_card(durable_store: Any, rules: Rules,
                                                       slack_api: SlackWebhookFake,
                                                       hubspot_api: HubSpotFake) -> None:
    from leadscore.service.decay import run_decay

    HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url).setup_properties()
    app = container_for(durable_store, slack_api, hubspot_api, rules)
    apply_events(durable_store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL), rules, NOW)
    deliver_pending(durable_store, app.integration_sinks(), NOW)
    app.sync_crm()
    later = NOW + timedelta(days=120)
    app.dispatch(run_decay(durable_store, rules, later).events, sweep=True)
    deliver_pending(durable_store, app.integration_sinks(), later)
    assert len(slack_api.delivered) == 1  # only the move up
    assert hubspot_api.stored == {EMAIL: 2}
    assert hubspot_api.contacts[EMAIL]["leadscore_stage"] == "lead"
