"""Strict, cheap parsing (issue 21): hostile numbers, odd timestamps, lone surrogates and
wrong JSON types inside correctly signed payloads never cost CPU seconds or answer 5xx."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from conftest import NOW
from functional.conftest import SECRETS, SENDGRID, TOKENS, client_for
from signatures import stripe_style

from hardening.figures import add
from leadscore.container import Container

NOW_TS = int(NOW.timestamp())
BIG = ["1e10000000", "9" * 5000, "1E999999999", "NaN", "-Infinity"]


def sendgrid(client: Any, body: bytes, stamp: str | None = None) -> Any:
    headers = SENDGRID.headers(body, NOW_TS)
    if stamp is not None:
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
    return client.post("/sendgrid", data=body, headers=headers, content_type="application/json")


@pytest.mark.parametrize("number", BIG)
def test_a_hostile_number_in_a_signed_batch_is_refused_at_once(
        app_container: Container, number: str) -> None:
    body = ('[{"email": "n@example.com", "timestamp": ' + number +
            ', "event": "open", "sg_event_id": "e1"}]').encode()
    client = client_for("email_webhook")
    sendgrid(client, b"[]")  # warm: imports and keys loaded
    started = time.perf_counter()
    answer = sendgrid(client, body)
    took = time.perf_counter() - started
    add("5xx on malformed or unauthenticated input", int(answer.status_code >= 500))
    # (the unbounded conversion took 5-30 CPU seconds; a generous bound, not a benchmark)
    assert answer.status_code == 400 and took < 3.0
    assert app_container.store.list_leads() == []


@pytest.mark.parametrize("stamp", ["²", "9" * 5000, "\u0661\u0667" + "\u0660" * 8,
                                   "+1700000000", ""])
def test_an_odd_timestamp_header_is_401(app_container: Container, stamp: str) -> None:
    body = b'[{"email": "n@example.com", "timestamp": 1700000000, "event": "open"}]'
    answer = sendgrid(client_for("email_webhook"), body, stamp)
    add("5xx on malformed or unauthenticated input", int(answer.status_code >= 500))
    assert answer.status_code == 401


@pytest.mark.parametrize("header", ["t=²,v1=00", "t=" + "9" * 5000 + ",v1=00"])
def test_an_odd_stripe_timestamp_is_401(app_container: Container, header: str) -> None:
    answer = client_for("purchase_webhook").post(
        "/stripe", data=b"{}", headers={"Stripe-Signature": header},
        content_type="application/json")
    assert answer.status_code == 401


@pytest.mark.parametrize("payload", [
    [{"email": 5, "timestamp": 1700000000, "event": "open", "sg_event_id": "a"}],
    [{"email": "n@example.com", "timestamp": "soon", "event": "open", "sg_event_id": "b"}],
    [{"email": "not an address", "timestamp": 1700000000, "event": "open", "sg_event_id": "c"}],
    [{"email": "n@example.com", "timestamp": 99999999999999, "event": "open",
      "sg_event_id": "d"}],
    [{"email": ["n@example.com"], "timestamp": {}, "event": 7}],
    {"not": "a list"}, ["a string"], [None],
])
def test_wrong_types_in_a_signed_sendgrid_batch_are_never_a_5xx(
        app_container: Container, payload: Any) -> None:
    answer = sendgrid(client_for("email_webhook"), json.dumps(payload).encode())
    add("5xx on malformed or unauthenticated input", int(answer.status_code >= 500))
    assert answer.status_code < 500, answer.get_data(as_text=True)


@pytest.mark.parametrize("payload", [
    {"id": "evt_1", "type": "checkout.session.completed", "data": "a string"},
    {"id": "evt_2", "type": "checkout.session.completed", "data": {"object": []}},
    {"id": "evt_3", "type": "checkout.session.completed",
     "data": {"object": {"id": "cs_1", "amount_total": "lots", "currency": 7,
                         "customer_details": {"email": 12}, "payment_status": "paid"}}},
    {"id": "evt_4", "type": 12, "created": "yesterday"},
])
def test_wrong_types_in_a_signed_stripe_event_are_never_a_5xx(
        app_container: Container, payload: Any) -> None:
    body = json.dumps(payload).encode()
    answer = client_for("purchase_webhook").post(
        "/stripe", data=body, content_type="application/json",
        headers={"Stripe-Signature": stripe_style(body, SECRETS["stripe"], NOW_TS)})
    add("5xx on malformed or unauthenticated input", int(answer.status_code >= 500))
    assert answer.status_code < 500, answer.get_data(as_text=True)
    # signed, so acknowledged: Stripe would retry a 4xx for days, then disable the endpoint
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app_container.store.list_leads() == []


def test_a_lone_surrogate_in_a_form_is_400(app_container: Container) -> None:
    answer = client_for("form_submission").post(
        "/", data=b'{"email": "s@example.com", "form": "contact", "name": "\\ud800"}',
        content_type="application/json")
    assert answer.status_code == 400
    assert app_container.store.list_leads() == []


@pytest.mark.parametrize("depth", [450, 900])
def test_a_lone_surrogate_deep_in_nested_lists_is_400(app_container: Container,
                                                     depth: int) -> None:
    # GIVEN a small body json.loads accepts: lists nested hundreds deep around "\ud800"
    # (found by a review: walking it recursively overflowed the stack, a 500 and a 115 KB
    # traceback per request, with no credentials)
    nested = b"[" * depth + b'"\\ud800"' + b"]" * depth
    body = b'{"email": "s@example.com", "form": "contact", "x": ' + nested + b"}"
    # WHEN a stranger posts it as a form
    answer = client_for("form_submission").post("/", data=body,
                                                content_type="application/json")
    # THEN it is refused as bad JSON naming the surrogate, and nothing is written
    assert answer.status_code == 400
    assert "lone surrogate" in answer.get_json()["message"]
    assert app_container.store.list_leads() == []


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z",
                                  "2201-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"])
def test_a_time_outside_the_scored_years_is_a_422_naming_it(app_container: Container,
                                                           when: str) -> None:
    # GIVEN an event dated where scores are not exact, or whose UTC is before year 1 (found
    # by a review: "+14:00" on year 1 overflowed converting to UTC in the store, a 500)
    body = json.dumps({"type": "email_opened", "email": "t@example.com", "source": "esp",
                       "idempotency_key": "k1", "occurred_at": when})
    # WHEN it is sent to /ingest with the token
    answer = client_for("ingest").post("/", data=body, content_type="application/json",
                                       headers={"Authorization": f"Bearer {TOKENS.split(',')[0]}"})
    # THEN it is a 422 naming the field and the years, and nothing is written
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "1970 to 2200" in json.dumps(answer.get_json())
    assert "occurred_at" in json.dumps(answer.get_json()["details"])
    assert app_container.store.list_leads() == []


# Python's urlsplit refuses these ("Invalid IPv6 URL"); a provider may still send them
ODD_URLS = ["http://[x", "https://[::1/pricing?utm_source=x", "http://]/"]


@pytest.mark.parametrize("url", ODD_URLS)
def test_a_click_on_a_url_python_cannot_split_still_counts(
        app_container: Container, url: str) -> None:
    # GIVEN a signed SendGrid batch with such a click beside an open (the default rules
    # have behaviour rules, which read a click's page and UTM fields)
    body = json.dumps([
        {"email": "c@example.com", "timestamp": NOW_TS - 60, "event": "click", "url": url,
         "sg_event_id": "click-1"},
        {"email": "c@example.com", "timestamp": NOW_TS - 30, "event": "open",
         "sg_event_id": "open-1"}]).encode()
    # WHEN it arrives
    answer = sendgrid(client_for("email_webhook"), body)
    # THEN it is accepted whole (no 5xx, so SendGrid does not retry it for ever), and both
    # events count: the URL has no page to read, so only rules on the whole URL see it
    add("5xx on malformed or unauthenticated input", int(answer.status_code >= 500))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    (lead,) = app_container.store.list_leads()
    assert lead.counters["email_clicked"] == 1 and lead.counters["email_opened"] == 1
