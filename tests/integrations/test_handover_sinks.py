"""End to end: a stage change recorded by the store reaches the Slack fake through the
handover sweep and the HubSpot fake through the CRM outbox, once each, with the lead's
reasons."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW
from fakes.hubspot_api import HubSpotFake
from fakes.slack_api import SlackWebhookFake

from integrations.conftest import HOOK_PATH, HUBSPOT_TOKEN, warm_lead_events
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules, default_rules
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


@pytest.mark.parametrize(("margin", "cards"), [("default", 1), ("none", 2)])
def test_no_card_for_a_stage_flap_inside_the_hysteresis_margin(
        durable_store: Any, slack_api: SlackWebhookFake, margin: str, cards: int) -> None:
    from builders import activity, form
    from unit.test_hysteresis import rules_with

    from leadscore.service.decay import run_decay
    from leadscore.service.ingest import ingest

    # GIVEN the default rules (an MQL holds 10 points below 40) or none at all
    rules = default_rules() if margin == "default" else rules_with(None)
    clock = {"now": NOW}
    app = Container(Settings(store="memory", slack_webhook_url=slack_api.url + HOOK_PATH),
                    store=durable_store, rules=rules, clock=lambda: clock["now"])

    def happen(days: int, *events: Any) -> None:
        clock["now"] = at = NOW + timedelta(days=days)
        if events:
            app.dispatch(ingest(durable_store, rules, events, at).events)
        app.dispatch(run_decay(durable_store, rules, at).events, sweep=True)

    # WHEN a demo request makes a lead an MQL (53 points), a month fades it to 36, and a
    # pricing-page visit the next day brings it back over 40
    happen(0, form(EMAIL, "demo", NOW, kind="demo_request", industry="retail"))
    happen(30)
    lead = durable_store.get_lead(lead_id_for(EMAIL))
    assert lead.score < 40 and lead.stage == ("mql" if margin == "default" else "lead")
    happen(31, activity(EMAIL, "price", NOW + timedelta(days=31), name="pricing_page_visit"))
    assert durable_store.get_lead(lead_id_for(EMAIL)).stage == "mql"
    # THEN Slack heard of the MQL once; without hysteresis the flap would have sent another
    assert len(slack_api.delivered) == cards


def test_slack_refusing_a_card_for_good_is_asked_once(store: Any, rules: Rules,
                                                       slack_api: SlackWebhookFake) -> None:
    app = Container(Settings(store="memory", slack_webhook_url=slack_api.url + HOOK_PATH),
                    store=store, rules=rules, clock=lambda: NOW)
    # GIVEN an MQL, a topic that takes it, and Slack refusing its card (400 invalid_blocks)
    apply_events(store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL), rules, NOW)
    slack_api.fail_next(400, "invalid_blocks", times=10)
    published: list[dict[str, Any]] = []
    sinks = [published.append, *app.integration_sinks()]
    # WHEN ten sweeps run, two hours apart
    for n in range(10):
        deliver_pending(store, sinks, NOW + timedelta(hours=2 * n), attempts=3, base_s=0)
    # THEN Slack was asked once, the topic got the change once, and nothing is pending
    assert len(slack_api.requests) == 1 and len(published) == 1
    assert store.pending_handovers(NOW + timedelta(days=30)) == []


def test_slack_rate_limiting_rests_slack_for_the_sweep_and_its_retry_after(
        store: Any, rules: Rules, slack_api: SlackWebhookFake) -> None:
    app = Container(Settings(store="memory", slack_webhook_url=slack_api.url + HOOK_PATH),
                    store=store, rules=rules, clock=lambda: NOW)
    # GIVEN two new MQLs, and Slack answering 429 with Retry-After: 600 (ten minutes)
    for email in (EMAIL, "bo@tiendassol.example"):
        apply_events(store, lead_id_for(email), email, warm_lead_events(email), rules, NOW)
    slack_api.fail_next(429, "rate_limited", {"Retry-After": "600"})
    # WHEN a sweep runs with three tries a sink
    report = deliver_pending(store, app.integration_sinks(), NOW, attempts=3, base_s=0)
    # THEN Slack was asked once in it, and neither card is due before the ten minutes
    assert len(slack_api.requests) == 1 and report.failed == 2
    assert store.pending_handovers(NOW + timedelta(minutes=9)) == []
    # WHEN the next sweep runs after them THEN both cards arrive
    later = NOW + timedelta(minutes=10)
    assert deliver_pending(store, app.integration_sinks(), later).delivered == 2
    assert len(slack_api.delivered) == 2
