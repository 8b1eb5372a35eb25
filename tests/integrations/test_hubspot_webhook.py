"""HubSpot webhooks: signature v3 (valid, forged, stale, replayed) and deal outcomes.

The payload fixture tests/events/crm/hubspot_deal_events.json follows the event shape of
HubSpot's Webhooks API reference (a JSON array of events with eventId, subscriptionId,
portalId, appId, occurredAt in ms, subscriptionType, attemptNumber, objectId,
propertyName/propertyValue, changeSource, sourceId); ids are invented.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW

from leadscore.integrations.hubspot_webhook import (
    PayloadInvalid,
    SignatureInvalid,
    deal_outcomes,
    verify_v3,
)
from leadscore.store.memory import MemoryStore

SECRET = "hubspot-client-secret"
URI = "https://leads.example.com/crm_webhook/hubspot"
BODY = (Path(__file__).parents[1] / "events/crm/hubspot_deal_events.json").read_bytes()


def signed(body: bytes = BODY, at: Any = NOW, uri: str = URI, secret: str = SECRET,
           method: str = "POST") -> dict[str, str]:
    """Headers as HubSpot sends them, computed independently of the code under test."""
    stamp = str(int(at.timestamp() * 1000))
    message = f"{method}{uri}".encode() + body + stamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return {"X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
            "X-HubSpot-Request-Timestamp": stamp}


def test_a_request_signed_with_the_client_secret_passes() -> None:
    verify_v3("POST", URI, BODY, signed(), [SECRET], NOW)
    verify_v3("POST", URI, BODY, signed(), ["old-secret", SECRET], NOW + timedelta(minutes=4))


def test_the_uri_is_compared_with_hubspots_decoded_characters() -> None:
    # HubSpot signs the URI with %3A, %40 and friends decoded
    uri = "https://leads.example.com/crm_webhook/hubspot?portal=a:b@c"
    headers = signed(uri=uri)
    verify_v3("POST", "https://leads.example.com/crm_webhook/hubspot?portal=a%3Ab%40c",
              BODY, headers, [SECRET], NOW)


@pytest.mark.parametrize("tamper", ["other secret", "body", "uri", "method", "no header",
                                    "timestamp moved"])
def test_a_forged_or_altered_request_is_refused(tamper: str) -> None:
    headers, body, uri, method = signed(), BODY, URI, "POST"
    if tamper == "other secret":
        headers = signed(secret="guess")
    elif tamper == "body":
        body = BODY.replace(b"closedlost", b"closedwon_")
    elif tamper == "uri":
        uri = URI + "?x=1"
    elif tamper == "method":
        method = "PUT"
    elif tamper == "no header":
        headers.pop("X-HubSpot-Signature-v3")
    else:
        headers["X-HubSpot-Request-Timestamp"] = str(int(headers[
            "X-HubSpot-Request-Timestamp"]) + 1)
    with pytest.raises(SignatureInvalid):
        verify_v3(method, uri, body, headers, [SECRET], NOW)


def test_a_stale_request_is_refused_even_when_its_signature_holds() -> None:
    old = signed(at=NOW - timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureInvalid, match="stale"):
        verify_v3("POST", URI, BODY, old, [SECRET], NOW)
    future = signed(at=NOW + timedelta(minutes=6))
    with pytest.raises(SignatureInvalid, match="stale"):
        verify_v3("POST", URI, BODY, future, [SECRET], NOW)


def test_a_replay_within_the_five_minutes_is_refused_by_the_one_use_claim() -> None:
    # GIVEN the store's one-use token claim as the replay guard (each request its own owner)
    store = MemoryStore()
    owners = iter(range(10))

    def claim(signature: str) -> bool:
        return bool(store.claim_token(f"hubspot-v3:{signature}", f"req-{next(owners)}"))

    headers = signed()
    verify_v3("POST", URI, BODY, headers, [SECRET], NOW, claim)
    # WHEN the same bytes arrive again a minute later
    with pytest.raises(SignatureInvalid, match="replayed"):
        verify_v3("POST", URI, BODY, headers, [SECRET], NOW + timedelta(minutes=1), claim)
    # AND HubSpot's own retry (a new timestamp, so a new signature) still passes
    verify_v3("POST", URI, BODY, signed(at=NOW + timedelta(minutes=1)), [SECRET],
              NOW + timedelta(minutes=1), claim)


def test_deal_changes_become_sales_outcomes() -> None:
    outcomes = deal_outcomes(json.loads(BODY))
    assert [(o["type"], o["deal_id"], o["amount"]) for o in outcomes] == [
        ("opportunity_created", "18342661030", None),
        ("deal_won", "18342661031", 12500.0),
        ("deal_lost", "18342661032", None)]
    assert outcomes[0]["occurred_at"] == NOW
    assert outcomes[1]["idempotency_key"] == "hubspot-146512-3816279342"


def test_custom_pipeline_stages_and_the_generic_object_form() -> None:
    events = [{"eventId": 1, "portalId": 9, "occurredAt": 1795348800000,
               "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
               "objectId": 77, "propertyName": "dealstage", "propertyValue": "1234567"}]
    assert deal_outcomes(events, won_stages=["1234567"])[0]["type"] == "deal_won"
    assert deal_outcomes(events) == []  # not a won or lost stage of the default pipeline


def test_a_malformed_payload_names_its_bad_fields() -> None:
    with pytest.raises(PayloadInvalid) as raised:
        deal_outcomes([{"eventId": "x", "subscriptionType": "deal.creation"}])
    assert "eventId" in json.dumps(raised.value.problems)
