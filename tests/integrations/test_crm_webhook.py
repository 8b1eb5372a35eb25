"""HubSpot deal webhooks through the provider registry: signed with signature v3 as HubSpot
documents it, the deal's contacts looked up on a fake of HubSpot's CRM API over real HTTP,
and the outcomes recorded on those leads, once, scoring nothing by themselves.

Payload: tests/events/crm/hubspot_deal_events.json (HubSpot's webhook docs: an array of
events with eventId, occurredAt in ms, subscriptionType, objectId, propertyName/Value)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from fakes.hubspot_api import HubSpotFake
from functional.conftest import client_for

from integrations.conftest import HUBSPOT_TOKEN
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.integrations.hubspot_webhook import signature_v3

EVENTS = Path(__file__).parent.parent / "events" / "crm" / "hubspot_deal_events.json"
SECRET = "hubspot-app-client-secret-7f1c"
URL = "https://leads.example.com/crm_webhook/hubspot"
WON_DEAL, LOST_DEAL, NEW_DEAL = "18342661031", "18342661032", "18342661030"
ANA, BEN = "ana.pereira@tiendassol.example", "ben@acme.example"


@pytest.fixture
def app(durable_store: Any, hubspot_api: HubSpotFake) -> Iterator[Container]:
    hubspot_api.contact_emails = {"101": ANA, "102": BEN}
    hubspot_api.deal_contacts = {WON_DEAL: ["101"], LOST_DEAL: ["102"], NEW_DEAL: ["101"]}
    built = Container(Settings(hubspot_client_secret=f"old-secret,{SECRET}",
                               hubspot_webhook_url=URL, hubspot_token=HUBSPOT_TOKEN,
                               hubspot_api_url=hubspot_api.url, hubspot_currency="EUR"),
                      store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def post(body: bytes, *, secret: str = SECRET, at_ms: int | None = None,
         signature: str | None = None) -> Any:
    stamp = str(at_ms if at_ms is not None else int(NOW.timestamp() * 1000))
    signed = signature or signature_v3(secret, "POST", URL, body, stamp)
    return client_for("crm_webhook").post(
        "/hubspot", data=body, content_type="application/json",
        headers={"X-HubSpot-Signature-v3": signed, "X-HubSpot-Request-Timestamp": stamp})


def outcomes(app: Container, email: str) -> list[Any]:
    return [e for e in app.store.history(lead_id_for(email)) if e.kind == "outcome"]


def test_deal_changes_become_outcomes_on_the_deal_contacts(app: Container) -> None:
    # GIVEN HubSpot's documented batch: a deal created, one won (with an amount), one lost,
    # one moved to a stage we do not record, and a contact change
    body = EVENTS.read_bytes()
    # WHEN it arrives signed
    answer = post(body)
    # THEN each recorded outcome lands on the deal's contact
    assert answer.status_code == 200, answer.get_json()
    ana = outcomes(app, ANA)
    assert sorted(e.event["outcome"] for e in ana) == ["deal_won", "opportunity_created"]
    won = next(e for e in ana if e.event["outcome"] == "deal_won")
    assert won.event["amount_minor"] == 1_250_000 and won.event["currency"] == "EUR"
    assert won.event["deal_id"] == WON_DEAL
    assert [e.event["outcome"] for e in outcomes(app, BEN)] == ["deal_lost"]
    # AND they add no points: outcomes are what the score is judged against
    assert all(e.delta == 0 for e in ana)
    lead = app.store.get_lead(lead_id_for(ANA))
    assert lead is not None and lead.score == 0 and lead.counters["outcome_deal_won"] == 1


def test_a_retried_delivery_counts_once(app: Container) -> None:
    body = EVENTS.read_bytes()
    assert post(body).status_code == 200
    # HubSpot's retry is a new request: a new timestamp and so a new signature
    again = post(body, at_ms=int(NOW.timestamp() * 1000) + 60_000)
    assert again.status_code == 200 and again.get_json()["duplicates"] == 3
    assert len(outcomes(app, ANA)) == 2


@pytest.mark.parametrize("case", ["forged", "stale", "missing"])
def test_a_bad_signature_is_refused_and_writes_nothing(app: Container, case: str) -> None:
    body = EVENTS.read_bytes()
    if case == "forged":
        answer = post(body, secret="not-the-secret")
    elif case == "stale":
        answer = post(body, at_ms=int(NOW.timestamp() * 1000) - 6 * 60_000)
    else:
        answer = client_for("crm_webhook").post("/hubspot", data=body,
                                                content_type="application/json")
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthorized"
    assert app.store.get_lead(lead_id_for(ANA)) is None


def test_a_tampered_body_under_a_captured_signature_is_refused(app: Container) -> None:
    body = EVENTS.read_bytes()
    stamp = int(NOW.timestamp() * 1000)
    captured = signature_v3(SECRET, "POST", URL, body, str(stamp))
    tampered = body.replace(b"closedlost", b"closedwon")
    assert post(tampered, at_ms=stamp, signature=captured).status_code == 401
    assert app.store.get_lead(lead_id_for(BEN)) is None


def test_hubspot_down_answers_503_so_it_retries(app: Container,
                                                hubspot_api: HubSpotFake) -> None:
    hubspot_api.fail_next(500, {"status": "error", "message": "internal"}, {}, 1)
    answer = post(EVENTS.read_bytes())
    assert answer.status_code == 503
    assert app.store.get_lead(lead_id_for(ANA)) is None


def test_a_deal_without_contacts_is_acknowledged(app: Container,
                                                 hubspot_api: HubSpotFake) -> None:
    hubspot_api.deal_contacts = {}
    answer = post(EVENTS.read_bytes())
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"


def test_outcomes_also_arrive_through_ingest(durable_store: Any) -> None:
    app = Container(Settings(api_token="tok"), store=durable_store, clock=lambda: NOW)
    install(app)
    try:
        body = [{"type": "outcome", "outcome": "deal_won", "email": ANA, "source": "crm",
                 "idempotency_key": "deal-9-won", "occurred_at": "2026-11-22T10:00:00Z",
                 "amount_minor": 990000, "currency": "USD"}]
        answer = client_for("ingest").post("/", data=json.dumps(body),
                                           content_type="application/json",
                                           headers={"Authorization": "Bearer tok"})
        assert answer.status_code == 200 and answer.get_json()["applied"] == 1
        assert [e.event["outcome"] for e in outcomes(app, ANA)] == ["deal_won"]
    finally:
        install(None)


def test_a_replayed_request_is_refused_and_writes_nothing(app: Container) -> None:
    # GIVEN a request captured on its way in, answered and written
    body = EVENTS.read_bytes()
    assert post(body).status_code == 200
    before = app.store.history(lead_id_for(ANA))
    # WHEN the same bytes, signature and timestamp arrive again inside the five minutes
    again = post(body)
    # THEN it is refused as a replay, and the lead is as it was
    assert again.status_code == 401 and again.get_json()["error"] == "unauthorized"
    assert app.store.history(lead_id_for(ANA)) == before


def test_one_undatable_event_costs_only_itself(app: Container) -> None:
    # GIVEN HubSpot's documented batch (tests/events/crm/hubspot_deal_events.json) in which
    # only the deal creation carries an occurredAt no date can hold (review of the hooks merge)
    events = json.loads(EVENTS.read_bytes())
    creation = next(e for e in events if e["subscriptionType"] == "deal.creation")
    creation["occurredAt"] = 10**15
    # WHEN it arrives signed
    answer = post(json.dumps(events).encode())
    # THEN that event alone is acknowledged as invalid and the rest of the request counts
    assert answer.status_code == 200, answer.get_json()
    assert "invalid" in json.dumps(answer.get_json())
    assert [e.event["outcome"] for e in outcomes(app, ANA)] == ["deal_won"]
    assert [e.event["outcome"] for e in outcomes(app, BEN)] == ["deal_lost"]
