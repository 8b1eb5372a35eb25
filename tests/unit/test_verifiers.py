"""Every registered verifier, in the style of stripe-python's tests/test_webhook.py.

Each case signs its own request with the provider's DOCUMENTED scheme (tests/signatures.py,
not our code), then checks: valid, tampered, stale, future, missing header, a wrong secret,
several secrets (the second one valid: rotation), and no secret configured (fails closed).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import NOW
from functional.conftest import SNS  # one signer per process: SES caches certificates by URL
from signatures import SendGridSigner, base64_hmac, mailgun, mandrill, stripe_style, svix

from leadscore.config import Settings
from leadscore.errors import LeadscoreError, Unauthorized
from leadscore.http import status_of
from leadscore.integrations.hubspot_webhook import signature_v3
from leadscore.providers.base import Inbound
from leadscore.providers.registry import REGISTRY

NOW_TS = int(NOW.timestamp())
BODY = b'{"id": "evt_1", "email": "reader@example.org", "note": "caf\\u00e9 \\/ 10%"}'


HUBSPOT_URL = "https://leads.example.com/crm_webhook/hubspot"
MANDRILL_URL = "https://hooks.example.com/email_webhook/mandrill"


class Edges:
    """The outside edges a verifier may call: the SNS certificate is served from memory;
    the settings carry the public URLs HubSpot and Mandrill sign."""

    settings = Settings(hubspot_webhook_url=HUBSPOT_URL, mandrill_webhook_url=MANDRILL_URL)

    def deal_contact_emails(self, deal_id: str) -> list[str]:
        raise AssertionError("a verifier never looks contacts up")

    def fetch_sns_certificate(self, url: str) -> bytes:
        assert url == SNS.CERT_URL
        return SNS.certificate

    def confirm_sns_subscription(self, topic_arn: str, token: str) -> str:
        raise AssertionError("a verifier never confirms subscriptions")


@dataclass(frozen=True)
class Case:
    """How one provider's requests are signed, and how a forger would get them wrong.

    `credential(i)` gives the i-th distinct (setting value, signing material) pair;
    `sign(material, timestamp)` a request; `strip` removes what carries the signature;
    `tamper` changes what the signature covers (None: the scheme covers no body)."""

    route: tuple[str, str]
    credential: Callable[[int], tuple[str, Any]]
    sign: Callable[[Any, int], Inbound]
    strip: Callable[[Inbound], Inbound]
    tamper: Callable[[Inbound], Inbound] | None
    tolerance_s: int | None = None


def _secret(i: int) -> tuple[str, str]:
    value = f"secret-{i}-9f8e7d"
    return value, value


def _tamper_raw(inbound: Inbound) -> Inbound:
    return replace(inbound, raw=inbound.raw.replace(b"reader", b"forger"))


def _without(*names: str) -> Callable[[Inbound], Inbound]:
    def strip(inbound: Inbound) -> Inbound:
        return replace(inbound, headers={k: v for k, v in inbound.headers.items()
                                         if k not in names})
    return strip


def _header(name: str, value: Callable[[str, int], str]) -> Callable[[Any, int], Inbound]:
    return lambda secret, ts: Inbound(BODY, {name: value(secret, ts),
                                             "content-type": "application/json"})


# --- the providers whose schemes need more than one header ---------------------------------
_SENDGRID_KEYS = [SendGridSigner() for _ in range(3)]


def _sendgrid(signer: SendGridSigner, ts: int) -> Inbound:
    return Inbound(BODY, {k.lower(): v for k, v in signer.headers(BODY, ts).items()})


def _mailgun_body(key: str, ts: int, token: str = "tok-5c1a" * 6) -> bytes:
    return json.dumps({"signature": {"timestamp": str(ts), "token": token,
                                     "signature": mailgun(key, str(ts), token)},
                       "event-data": {"id": "ev-1", "event": "opened"}}).encode()


def _mailgun_tamper(inbound: Inbound) -> Inbound:
    body = json.loads(inbound.raw)
    body["signature"]["token"] = "another-token-" + "0" * 36
    return replace(inbound, raw=json.dumps(body).encode())


def _mailgun_strip(inbound: Inbound) -> Inbound:
    body = json.loads(inbound.raw)
    del body["signature"]
    return replace(inbound, raw=json.dumps(body).encode())


def _topic(i: int) -> tuple[str, str]:
    arn = f"arn:aws:sns:eu-west-1:123456789012:leadscore-ses-{i}"
    return arn, arn


def _ses(topic: str, ts: int) -> Inbound:
    message = {"Type": "Notification", "MessageId": "msg-1", "TopicArn": topic,
               "Message": json.dumps({"eventType": "Open", "mail": {"destination": [
                   "reader@example.org"]}}),
               "Timestamp": datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")}
    return Inbound(json.dumps(SNS.sign(message)).encode(), {"content-type": "text/plain"})


def _ses_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Inbound], Inbound]:
    def edit(inbound: Inbound) -> Inbound:
        message = json.loads(inbound.raw)
        change(message)
        return replace(inbound, raw=json.dumps(message).encode())
    return edit


def _basic(pair: str, ts: int) -> Inbound:
    return Inbound(BODY, {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()})


MANDRILL_FORM = b"mandrill_events=%5B%7B%22event%22%3A%22open%22%2C%22msg%22%3A%7B%22email%22%3A%22reader%40example.org%22%7D%7D%5D"  # noqa: E501


def _mandrill(key: str, ts: int) -> Inbound:
    value = '[{"event":"open","msg":{"email":"reader@example.org"}}]'
    return Inbound(MANDRILL_FORM, {"x-mandrill-signature": mandrill(
        key, MANDRILL_URL, {"mandrill_events": value})})


def _userpass(i: int) -> tuple[str, str]:
    return f"hook-user-{i}:pass-{i}-77", f"hook-user-{i}:pass-{i}-77"


def _hubspot(secret: str, ts: int) -> Inbound:
    """HubSpot's v3: base64 HMAC-SHA256 of method + URI + body + timestamp in milliseconds."""
    stamp = str(ts * 1000)
    return Inbound(BODY, {"x-hubspot-signature-v3": signature_v3(secret, "POST", HUBSPOT_URL,
                                                                 BODY, stamp),
                          "x-hubspot-request-timestamp": stamp})


def _whsec(i: int) -> tuple[str, str]:
    value = "whsec_" + base64.b64encode(f"resend-signing-key-{i}-32-bytes!!".encode()).decode()
    return value, value


def _resend(secret: str, ts: int) -> Inbound:
    return Inbound(BODY, {**svix(BODY, secret, "msg_2W2D3qXLS5fOaPja1GDg7rF2CwB", ts),
                          "content-type": "application/json"})


CASES: dict[str, Case] = {
    "sendgrid": Case(("email_webhook", "/sendgrid"),
                     lambda i: (_SENDGRID_KEYS[i].public_key, _SENDGRID_KEYS[i]), _sendgrid,
                     _without("x-twilio-email-event-webhook-signature"), _tamper_raw, 600),
    "mailgun": Case(("email_webhook", "/mailgun"), _secret,
                    lambda key, ts: Inbound(_mailgun_body(key, ts),
                                            {"content-type": "application/json"}),
                    _mailgun_strip,
                    _mailgun_tamper, 900),
    "mailchimp": Case(("email_webhook", "/mailchimp"), _secret,
                      lambda key, ts: Inbound(b"type=subscribe", {}, {"key": key}),
                      lambda inbound: replace(inbound, query={}), None),
    "postmark": Case(("email_webhook", "/postmark"), _userpass, _basic,
                     _without("authorization"), None),
    "mandrill": Case(("email_webhook", "/mandrill"), _secret, _mandrill,
                     _without("x-mandrill-signature"), _tamper_raw),
    "mailjet": Case(("email_webhook", "/mailjet"), _userpass, _basic,
                    _without("authorization"), None),
    "brevo": Case(("email_webhook", "/brevo"), _secret,
                  _header("authorization", lambda token, ts: f"Bearer {token}"),
                  _without("authorization"), None),
    "sparkpost": Case(("email_webhook", "/sparkpost"), _userpass, _basic,
                      _without("authorization"), None),
    "resend": Case(("email_webhook", "/resend"), _whsec, _resend, _without("svix-signature"),
                   _tamper_raw, 300),
    "ses-eventbridge": Case(("email_webhook", "/ses-eventbridge"), _secret,
                            _header("x-leadscore-key", lambda secret, ts: secret),
                            _without("x-leadscore-key"), None),
    "ses": Case(("email_webhook", "/ses"), _topic, _ses,
                _ses_edit(lambda m: m.pop("Signature")),
                _ses_edit(lambda m: m.update(Message=m["Message"].replace("Open", "Click"))),
                3600),
    "stripe": Case(("purchase_webhook", "/stripe"), _secret,
                   _header("stripe-signature", lambda s, ts: stripe_style(BODY, s, ts)),
                   _without("stripe-signature"), _tamper_raw, 300),
    "generic": Case(("purchase_webhook", "/generic"), _secret,
                    _header("leadscore-signature", lambda s, ts: stripe_style(BODY, s, ts)),
                    _without("leadscore-signature"), _tamper_raw, 300),
    "shopify": Case(("purchase_webhook", "/shopify"), _secret,
                    _header("x-shopify-hmac-sha256", lambda s, ts: base64_hmac(BODY, s)),
                    _without("x-shopify-hmac-sha256"), _tamper_raw),
    "woocommerce": Case(("purchase_webhook", "/woocommerce"), _secret,
                        _header("x-wc-webhook-signature", lambda s, ts: base64_hmac(BODY, s)),
                        _without("x-wc-webhook-signature"), _tamper_raw),
    "typeform": Case(("form_submission", "/typeform"), _secret,
                     _header("typeform-signature",
                             lambda s, ts: "sha256=" + base64_hmac(BODY, s)),
                     _without("typeform-signature"), _tamper_raw),
    "hubspot": Case(("crm_webhook", "/hubspot"), _secret, _hubspot,
                    _without("x-hubspot-signature-v3"), _tamper_raw, 300),
    "tally": Case(("form_submission", "/tally"), _secret,
                  _header("tally-signature", lambda s, ts: base64_hmac(BODY, s)),
                  _without("tally-signature"), _tamper_raw),
}
NAMES = sorted(CASES)


def verify(name: str, inbound: Inbound, secrets: list[str], now: datetime = NOW) -> None:
    provider = REGISTRY.lookup(*CASES[name].route)
    assert provider is not None and provider.name == name
    provider.verify(inbound, secrets, now, Edges())


def refused(name: str, inbound: Inbound, secrets: list[str], now: datetime = NOW) -> str:
    """Verification fails with a 401 (never a 5xx a sender would retry); the message."""
    with pytest.raises(LeadscoreError) as caught:
        verify(name, inbound, secrets, now)
    assert isinstance(caught.value, Unauthorized) and status_of(caught.value) == 401
    return caught.value.message


def test_every_registered_provider_has_a_verifier_case() -> None:
    assert {(p.function, p.path) for p in REGISTRY} == {c.route for c in CASES.values()}


@pytest.mark.parametrize("name", NAMES)
def test_a_correctly_signed_request_is_accepted(name: str) -> None:
    # GIVEN a request signed as the provider documents it
    setting, material = CASES[name].credential(0)
    # THEN it verifies
    verify(name, CASES[name].sign(material, NOW_TS), [setting])


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].tamper])
def test_a_tampered_request_is_refused(name: str) -> None:
    case = CASES[name]
    setting, material = case.credential(0)
    assert case.tamper is not None
    refused(name, case.tamper(case.sign(material, NOW_TS)), [setting])


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].tolerance_s])
@pytest.mark.parametrize("direction", [-1, 1], ids=["stale", "future"])
def test_a_timestamp_outside_the_tolerance_is_refused(name: str, direction: int) -> None:
    case = CASES[name]
    assert case.tolerance_s is not None
    setting, material = case.credential(0)
    # GIVEN a request signed just outside the tolerance (in the past, or in the future)
    outside = NOW_TS + direction * (case.tolerance_s + 1)
    assert "tolerance" in refused(name, case.sign(material, outside), [setting])
    # AND one signed just inside it still verifies
    verify(name, case.sign(material, NOW_TS + direction * (case.tolerance_s - 1)), [setting])


@pytest.mark.parametrize("name", NAMES)
def test_a_request_without_its_signature_is_refused(name: str) -> None:
    case = CASES[name]
    setting, material = case.credential(0)
    refused(name, case.strip(case.sign(material, NOW_TS)), [setting])


@pytest.mark.parametrize("name", NAMES)
def test_a_request_signed_with_another_secret_is_refused(name: str) -> None:
    case = CASES[name]
    setting, _ = case.credential(0)
    _, other = case.credential(2)
    refused(name, case.sign(other, NOW_TS), [setting])


@pytest.mark.parametrize("name", NAMES)
def test_while_secrets_rotate_both_are_accepted(name: str) -> None:
    # GIVEN an old and a new secret both active
    case = CASES[name]
    (old, old_material), (new, new_material) = case.credential(0), case.credential(1)
    # THEN requests signed with either verify, the second secret included
    verify(name, case.sign(new_material, NOW_TS), [old, new])
    verify(name, case.sign(old_material, NOW_TS), [old, new])


@pytest.mark.parametrize("name", NAMES)
def test_without_a_configured_secret_everything_is_refused(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a provider nobody configured, and a request that would otherwise verify
    case = CASES[name]
    _, material = case.credential(0)
    # WHEN it is checked, and the same request against a configured, other secret
    with caplog.at_level(logging.WARNING):
        unconfigured = refused(name, case.sign(material, NOW_TS), [])
    configured = refused(name, case.sign(material, NOW_TS), [case.credential(2)[0]])
    # THEN it fails closed with the very answer a wrong secret gets (an audit listed a
    # company's tools from "not configured: set LEADSCORE_..." answers), and the log, not
    # the stranger, is told which setting to set
    assert unconfigured == configured and "not configured" not in unconfigured
    hints = [getattr(r, "fields", {}).get("setting", "") for r in caplog.records
             if "not configured" in r.getMessage()]
    assert hints and all(h.startswith("LEADSCORE_") for h in hints)
