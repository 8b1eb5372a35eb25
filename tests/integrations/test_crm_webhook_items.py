"""HubSpot deal webhooks item by item: a value no outcome can carry costs only its own
item, and a body no JSON parser should descend into is a 400, never a 500.

Payload: tests/events/crm/hubspot_deal_events.json (see test_crm_webhook.py), with one value
changed per test (the review of main of 2026-11-23 reproduced each as a 400 or 500)."""

from __future__ import annotations

import json
from typing import Any

from conftest import NOW
from fakes.hubspot_api import HubSpotFake

from integrations.test_crm_webhook import ANA, EVENTS, NEW_DEAL, app, outcomes, post
from leadscore.container import Container

__all__ = ["app"]  # the fixture, shared with test_crm_webhook.py


def test_an_occurred_at_no_date_can_hold_is_acknowledged_not_a_400(app: Container) -> None:
    # GIVEN a signed deal.creation whose occurredAt is 10^15 ms (the year 33658)
    events = json.loads(EVENTS.read_bytes())[:1]
    events[0]["occurredAt"] = 10**15
    # WHEN it arrives (before: 400 "the body is not JSON", which HubSpot retries)
    answer = post(json.dumps(events).encode())
    # THEN it is acknowledged as invalid and nothing is written
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["ignored"] == {"invalid": 1}
    assert outcomes(app, ANA) == []


def test_a_future_deal_event_is_dropped_the_others_recorded(app: Container) -> None:
    # GIVEN HubSpot's batch with its deal creation dated a day ahead
    events = json.loads(EVENTS.read_bytes())
    events[0]["occurredAt"] = int(NOW.timestamp() * 1000) + 86_400_000
    # WHEN it arrives (before: 422 for the whole batch)
    answer = post(json.dumps(events).encode())
    # THEN the won deal still lands on its contact and the future item is named
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["ignored"]["future"] == 1
    assert [e.event["outcome"] for e in outcomes(app, ANA)] == ["deal_won"]


def test_one_contact_with_an_invalid_address_keeps_the_outcome_of_the_others(
        app: Container, hubspot_api: HubSpotFake) -> None:
    # GIVEN a new deal whose contacts are Ana and one whose address is not one
    hubspot_api.contact_emails["103"] = "not an address@example.com"
    hubspot_api.deal_contacts[NEW_DEAL] = ["101", "103"]
    events = json.loads(EVENTS.read_bytes())[:1]
    # WHEN its creation arrives (before: the whole request ignored, Ana's outcome lost)
    answer = post(json.dumps(events).encode())
    # THEN Ana gets the outcome and the other contact is acknowledged as invalid
    assert answer.status_code == 200, answer.get_json()
    assert [e.event["outcome"] for e in outcomes(app, ANA)] == ["opportunity_created"]
    assert answer.get_json()["ignored"] == {"opportunity_created (invalid)": 1}


def test_signed_deep_nesting_is_a_400(app: Container) -> None:
    # GIVEN a signed body nested 100,000 deep (before: RecursionError, a 500 retried for
    # days; the review used 5,000, which Python 3.13's parser reads without recursing)
    answer: Any = post(b"[" * 100_000 + b"]" * 100_000)
    # THEN it is refused as bad JSON
    assert answer.status_code == 400, answer.get_json()
