"""The acknowledgement rule, Mailgun's replay binding, and the new providers' handshakes.

Only an unauthenticated or unparseable request is refused; a verified one that carries
nothing we score is a 200 "ignored" with one log line naming the provider and the types.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import NOW
from signatures import basic_auth

from functional.conftest import SECRETS, client_for
from functional.email_senders import (
    deliver,
    fixture,
    mailgun_post,
    mailgun_signed,
    mailjet,
    mandrill_post,
    sendgrid,
)
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.errors import ValidationFailed
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.canonical import verify_bearer
from leadscore.providers.registry import REGISTRY

LENA = "lena.fischer@example.com"


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("email_webhook")


def lead(app: Container, email: str) -> Any:
    return app.store.get_lead(lead_id_for(email))


def ignored_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [getattr(r, "fields", {}) for r in caplog.records
            if r.getMessage() in ("webhook items ignored", "webhook payload ignored")]


def test_a_verified_request_with_nothing_to_score_is_acknowledged_and_logged_once(
        client: Any, app_container: Container, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leadscore")
    # GIVEN SendGrid's account event and a type SendGrid may add one day, correctly signed
    body = json.dumps([json.loads(fixture("sendgrid", "sendgrid_account_status_change.json"))[0],
                       {"email": LENA, "event": "machine_learning_insight",
                        "timestamp": 1795338000, "sg_event_id": "new-1"}]).encode()
    answer = client.open(method="POST", **sendgrid(body))
    # THEN it is a 200 "ignored", naming both types, and nothing is written
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored"
    assert answer.get_json()["ignored"] == {"account_status_change": 1,
                                            "machine_learning_insight": 1}
    assert app_container.store.list_leads() == []
    # AND one log line names the provider and the types, and no address
    lines = ignored_lines(caplog)
    assert len(lines) == 1 and lines[0]["provider"] == "sendgrid"
    assert lines[0]["types"] == {"account_status_change": 1, "machine_learning_insight": 1}
    assert "@" not in json.dumps(lines)


def test_an_unreadable_item_is_ignored_and_the_rest_of_the_batch_applied(
        client: Any, app_container: Container) -> None:
    # GIVEN a signed batch: a good open, one with an address that is not one, one whose
    # timestamp is the wrong JSON type, and one that is not an object at all
    body = json.dumps([
        {"email": LENA, "event": "open", "timestamp": 1795341600, "sg_event_id": "ok-1"},
        {"email": "not-an-address", "event": "open", "timestamp": 1795341600},
        {"email": LENA, "event": "click", "timestamp": {"at": 1}},
        "open"]).encode()
    answer = client.open(method="POST", **sendgrid(body))
    # THEN the good event counts and each bad one is named as ignored
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1
    assert answer.get_json()["ignored"] == {"open (invalid)": 1, "click (invalid)": 1,
                                            "(none) (invalid)": 1}
    assert lead(app_container, LENA).counters == {"email_opened": 1}


def test_a_verified_but_invalid_mailchimp_event_is_acknowledged(
        client: Any, app_container: Container) -> None:
    # GIVEN Mailchimp events with the right ?key= but no usable address or time
    for body in (b"type=unsubscribe&fired_at=2026-11-21+15%3A40%3A00&data%5Bemail%5D=nobody",
                 b"type=subscribe&fired_at=yesterday&data%5Bemail%5D=lena.fischer%40example.com",
                 b"type=upemail&fired_at=2026-11-21+11%3A00%3A00&data%5Bnew_email%5D=x"):
        answer = client.post(f"/mailchimp?key={SECRETS['mailchimp']}", data=body,
                             content_type="application/x-www-form-urlencoded")
        # THEN each is a 200 "ignored" (Mailchimp would retry, then disable the webhook)
        assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app_container.store.list_leads() == []


def test_unauthenticated_and_unparseable_requests_are_still_refused(
        client: Any, app_container: Container) -> None:
    raw = fixture("sendgrid", "sendgrid_open.json")
    assert client.post("/sendgrid", data=raw, content_type="application/json").status_code == 401
    assert client.open(method="POST", **sendgrid(b"[{")).status_code == 400
    assert client.post("/mailchimp?key=guess", data=b"type=campaign").status_code == 401
    assert app_container.store.list_leads() == []


# --- Mailgun: a captured signature cannot carry another event ------------------------------
def test_a_replayed_mailgun_signature_with_any_change_is_refused(
        client: Any, app_container: Container) -> None:
    # GIVEN a genuine Mailgun open, delivered, then redelivered byte for byte
    genuine = mailgun_signed(fixture("mailgun", "mailgun_opened.json"), token="r" * 50)
    assert client.open(method="POST", **mailgun_post(genuine)).get_json()["applied"] == 1
    again = client.open(method="POST", **mailgun_post(genuine))
    assert again.status_code == 200 and again.get_json()["duplicates"] == 1
    # WHEN an attacker replays its signature (timestamp, token) with the same event id but
    # another recipient, or turns the open into an unsubscribe
    for change in ({"recipient": "victim@example.org"}, {"event": "unsubscribed"}):
        forged = json.loads(genuine)
        forged["event-data"].update(change)
        answer = client.open(method="POST", **mailgun_post(json.dumps(forged).encode()))
        # THEN it is refused as a replay and writes nothing
        assert answer.status_code == 401 and "replay" in answer.get_json()["message"]
    assert lead(app_container, "victim@example.org") is None
    assert lead(app_container, LENA).email_status == "active"
    assert lead(app_container, LENA).counters == {"email_opened": 1}


def test_a_mailgun_token_is_kept_through_the_purge_for_as_long_as_it_can_be_replayed(
        client: Any, app_container: Container) -> None:
    from leadscore.providers.mailgun import TOLERANCE_S

    # GIVEN a genuine Mailgun open, signed now
    genuine = mailgun_signed(fixture("mailgun", "mailgun_opened.json"), token="k" * 50)
    assert client.open(method="POST", **mailgun_post(genuine)).get_json()["applied"] == 1
    # WHEN the daily purge runs at the last moment its signature could still be accepted
    window_end = NOW + timedelta(seconds=2 * TOLERANCE_S)
    app_container.store.purge_used_tokens(window_end)
    # THEN a replay of its signature with another recipient is still refused
    forged = json.loads(genuine)
    forged["event-data"]["recipient"] = "victim@example.org"
    answer = client.open(method="POST", **mailgun_post(json.dumps(forged).encode()))
    assert answer.status_code == 401 and "replay" in answer.get_json()["message"]
    # and once no signature with it can be accepted any more, the purge forgets it
    assert app_container.store.purge_used_tokens(window_end + timedelta(hours=2)) == 1


def test_a_mailgun_redelivery_reformatted_is_still_the_same_event(
        client: Any, app_container: Container) -> None:
    genuine = mailgun_signed(fixture("mailgun", "mailgun_clicked.json"), token="s" * 50)
    client.open(method="POST", **mailgun_post(genuine))
    pretty = json.dumps(json.loads(genuine), indent=2).encode()  # same event, other bytes
    answer = client.open(method="POST", **mailgun_post(pretty))
    assert answer.status_code == 200 and answer.get_json()["duplicates"] == 1


# --- Mandrill ------------------------------------------------------------------------------
def test_mandrill_url_check_head_and_the_empty_test_batch_are_answered_200(
        client: Any, app_container: Container) -> None:
    assert client.open("/mandrill", method="HEAD").status_code == 200
    # the fallback POST: an empty batch signed with the public key "test-webhook"
    empty = fixture("mandrill", "mandrill_test_webhook_empty.txt").strip()
    answer = client.open(method="POST", **mandrill_post(empty, key="test-webhook"))
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app_container.store.list_leads() == []


@pytest.mark.parametrize("forge", ["wrong-key", "test-webhook-key", "tampered", "missing"])
def test_mandrill_forgeries_are_refused(client: Any, app_container: Container,
                                        forge: str) -> None:
    raw = fixture("mandrill", "mandrill_open.txt").strip()
    request = mandrill_post(raw, key={"wrong-key": "guess",
                                      "test-webhook-key": "test-webhook"}.get(
        forge, SECRETS["mandrill"]))
    if forge == "tampered":
        request["data"] = raw.replace(b"lena.fischer", b"some.one")
    elif forge == "missing":
        request["headers"] = {}
    assert client.open(method="POST", **request).status_code == 401
    assert app_container.store.list_leads() == []


# --- Mailjet -------------------------------------------------------------------------------
@pytest.mark.parametrize("credentials", [None, "mailjet:wrong", "old:old-not"])
def test_mailjet_without_the_right_basic_auth_writes_nothing(
        client: Any, app_container: Container, credentials: str | None) -> None:
    request = mailjet(fixture("mailjet", "mailjet_open.json"))
    request["headers"] = {"Authorization": basic_auth(credentials)} if credentials else {}
    assert client.open(method="POST", **request).status_code == 401
    assert app_container.store.list_leads() == []


def test_mailjet_answers_exactly_200_even_for_what_it_does_not_score(client: Any) -> None:
    # Mailjet retries anything but 200 OK for 24 hours
    for name in ("mailjet_blocked_preblocked.json", "mailjet_sent.json"):
        assert deliver(client, "mailjet", fixture("mailjet", name)).status_code == 200


def test_mandrill_signed_for_another_url_is_refused(client: Any, app_container: Container,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a request Mandrill signed for the URL as entered, and a server configured with
    # a different one (http instead of https): the URL is part of what is signed
    raw = fixture("mandrill", "mandrill_open.txt").strip()
    request = mandrill_post(raw)
    other = app_container.settings.model_copy(update={
        "mandrill_webhook_url": "http://hooks.example.com/email_webhook/mandrill?from=mandrill"})
    monkeypatch.setattr(app_container, "settings", other)
    answer = client.open(method="POST", **request)
    assert answer.status_code == 401 and "exactly as entered" in answer.get_json()["message"]
    assert app_container.store.list_leads() == []


class _Strict(WebhookProvider):
    """A throw-away provider whose parser refuses a field, as older parsers still do."""

    settings = ("api_token",)

    def __init__(self, function: str) -> None:
        self.name, self.function, self.path = f"strict-{function}", function, "/strict"

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify_bearer(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        raise ValidationFailed("bad", details=[{"field": "0.email", "problem": "not an address"}])


@pytest.mark.parametrize(("function", "status"), [("email_webhook", 200),
                                                  ("purchase_webhook", 200)])
def test_a_parser_refusing_a_verified_email_payload_is_turned_into_an_acknowledgement(
        app_container: Container, caplog: pytest.LogCaptureFixture, function: str,
        status: int) -> None:
    caplog.set_level(logging.INFO, logger="leadscore")
    provider = _Strict(function)
    REGISTRY.add(provider)
    try:
        answer = client_for(function).post("/strict", data=b"{}", content_type="application/json",
                                           headers={"Authorization": "Bearer current-token-123"})
        unsigned = client_for(function).post("/strict", data=b"{}",
                                             content_type="application/json")
    finally:
        REGISTRY.remove(function, "/strict")
    # THEN an email provider's or purchase platform's verified payload is acknowledged and
    # logged with its fields (issue 21: a 4xx is retried for days); unsigned stays 401
    assert answer.status_code == status and unsigned.status_code == 401
    assert answer.get_json()["status"] == "ignored"
    assert ignored_lines(caplog) == [{"provider": f"strict-{function}",
                                      "function": function, "types": {"invalid": 1},
                                      "fields": ["0.email"]}]


def test_a_replayed_legacy_mailgun_signature_with_another_recipient_is_refused(
        client: Any, app_container: Container) -> None:
    genuine = mailgun_signed(fixture("mailgun", "mailgun_legacy_opened.txt"), token="q" * 50)
    assert client.open(method="POST", **mailgun_post(genuine)).get_json()["applied"] == 1
    assert client.open(method="POST", **mailgun_post(genuine)).get_json()["duplicates"] == 1
    forged = genuine.replace(b"recipient=lena.fischer", b"recipient=victim")
    answer = client.open(method="POST", **mailgun_post(forged))
    assert answer.status_code == 401 and "replay" in answer.get_json()["message"]
    assert lead(app_container, "victim@example.com") is None
