"""Sales outcomes through the tracking API (issue 16): a `track` call named
`opportunity_created`, `deal_won` or `deal_lost` from a server write key becomes the same
outcome event `/ingest` records; a client (browser) key cannot send one, because its key is
public and a forged win would flatter the back-test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import NOW

from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.service.lead_events import conversion_times, lead_pages

from .conftest import CLIENT_KEY, ORIGIN, SERVER_KEY, client_for, track_settings

EMAIL = "oliver.grant@fabrikam-logistics.com"
LEAD = lead_id_for(EMAIL)


def _outcomes(app: Any, lead_id: str = LEAD) -> list[dict[str, Any]]:
    return [e.event for e in app.store.history(lead_id)
            if e.event and e.event["type"] == "outcome"]


def test_segment_sdk_sends_outcomes_with_a_server_key(live_server: dict[str, Any]) -> None:
    from segment.analytics import Client

    errors: list[Any] = []
    # GIVEN a CRM's backend using Segment's library with the server write key
    client = Client(write_key=SERVER_KEY, host=live_server["base"] + "/track",
                    on_error=lambda e, batch: errors.append(e), max_retries=3,
                    upload_interval=0.1)
    opened = datetime.now(UTC) - timedelta(days=20)
    # WHEN it identifies the contact, then tracks an opportunity and the won deal (with an
    # amount, a currency and a reason), and a lost deal for another contact
    client.identify("crm-88", {"email": EMAIL, "title": "Head of Operations"},
                    timestamp=opened - timedelta(days=1))
    client.track("crm-88", "opportunity_created", {"deal_id": "D-2041"}, timestamp=opened)
    client.track("crm-88", "deal_won", {"amount": 1250.5, "currency": "EUR",
                                        "reason": "signed annual plan", "deal_id": "D-2041"},
                 timestamp=opened + timedelta(days=12))
    client.track("crm-90", "deal_lost", {"reason": "went with a competitor"},
                 context={"traits": {"email": "ines@tailspin-toys.com"}})
    client.flush()
    client.join()
    # THEN each is an outcome event on its lead, as /ingest would record it
    app = live_server["app"]
    assert errors == []
    created, won = _outcomes(app)
    assert (created["outcome"], created["deal_id"], created["source"]) == (
        "opportunity_created", "D-2041", "track")
    assert (won["outcome"], won["amount_minor"], won["currency"], won["reason"]) == (
        "deal_won", 125050, "EUR", "signed annual plan")
    lost = _outcomes(app, lead_id_for("ines@tailspin-toys.com"))
    assert [(o["outcome"], o["reason"], o["amount_minor"]) for o in lost] == [
        ("deal_lost", "went with a competitor", None)]
    # ... adding no points by itself (the default rules name no outcome)
    lead = app.store.get_lead(LEAD)
    assert lead is not None and lead.counters["outcome_deal_won"] == 1
    assert lead.engagement_score == 0
    # ... and the back-test counts the win when it happened
    leads = {lead.lead_id: lead for page in lead_pages(app.store) for lead in page}
    wins = conversion_times(leads[LEAD].events, purchases_are_wins=True)
    assert len(wins) == 1 and abs(wins[0] - (opened + timedelta(days=12))) < timedelta(seconds=5)


def _post(body: dict[str, Any]) -> Any:
    return client_for("track").post("/v1/t" if "batch" not in body else "/v1/b",
                                    data=json.dumps(body).encode(),
                                    headers={"Origin": ORIGIN}, content_type="text/plain")


def test_a_client_key_cannot_send_outcomes_even_when_listed(durable_store: Any) -> None:
    # GIVEN an operator who (wrongly) lists deal_won among the browser's events
    app = Container(track_settings(track_client_events="Demo Requested,deal_won"),
                    store=durable_store, clock=lambda: NOW)
    install(app)
    try:
        # WHEN a browser sends deal_won with the client key, alone and in a batch
        single = _post({"writeKey": CLIENT_KEY, "anonymousId": "a-9", "event": "deal_won",
                        "traits": {"email": EMAIL}, "properties": {"amount": 99000}})
        batch = _post({"writeKey": CLIENT_KEY, "batch": [
            {"type": "track", "anonymousId": "a-9", "event": "opportunity_created",
             "context": {"traits": {"email": EMAIL}}},
            {"type": "track", "anonymousId": "a-9", "event": "Demo Requested",
             "context": {"traits": {"email": EMAIL}}}]})
        # THEN the single call is refused (400) and the batch's outcome is listed as refused,
        # while its ordinary event is accepted
        assert single.status_code == 400 and "sales outcome" in single.get_json()["message"]
        assert batch.status_code == 200
        assert [r["index"] for r in batch.get_json()["refused"]] == [0]
        assert "only server write keys" in batch.get_json()["refused"][0]["problem"]
        assert batch.get_json()["accepted"] == 1
        # ... and no outcome reached the lead
        assert _outcomes(app) == []
    finally:
        install(None)
