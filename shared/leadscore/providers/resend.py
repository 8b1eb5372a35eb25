# ruff: noqa: E501  (the meaning table in the docstring has long rows; code lines stay short)
"""Resend webhooks, delivered and signed by Svix: one JSON event per request.

Signature (docs.svix.com/receiving/verifying-payloads/how-manual, resend.com/docs/dashboard/
webhooks/verify-webhooks-requests): `svix-signature` holds one or more space-separated
`v1,<base64>` values, each base64(HMAC-SHA256(key, "{svix-id}.{svix-timestamp}.{raw body}"))
where the key is the base64-decoded part of the endpoint's `whsec_...` signing secret
(`LEADSCORE_RESEND_SECRET`, several comma-separated). `svix-timestamp` must be within five
minutes of our clock. `svix-id` is the same on every retry and replay of a message, so it
keys the events (with the address).

What each documented event means here (sources: resend.com/docs/webhooks/*, django-anymail's
tests/test_resend_webhooks.py):

| type | canonical event |
|---|---|
| email.delivered | email_delivered, the first of `data.to` (see below) |
| email.opened | email_opened (no machine-open flag is documented) |
| email.clicked | email_clicked, url = `data.click.link`, time `data.click.timestamp` |
| email.bounced, `bounce.type` Permanent | email_bounced hard |
| email.bounced, Permanent with subType Suppressed | acknowledged, ignored (your own suppression list; nothing was sent) |
| email.bounced, Transient or Undetermined; no type (older payloads: hard only when the message says so) | email_bounced soft |
| email.complained | email_complained |
| contact.updated with `unsubscribed: true` | email_unsubscribed, once per contact (every later update repeats the flag) |
| contact.updated with `unsubscribed: false` | acknowledged, ignored (any edit sends it; not a resubscription) |
| email.sent, email.scheduled, email.delivery_delayed, email.failed, email.suppressed, email.received, contact.created, contact.deleted, domain.*, others | acknowledged, ignored |

Times are the event's top-level `created_at` (`data.created_at` is when the email was made).

One recipient per event: Resend sends an event for each recipient of a message (cc and bcc
too) without saying which one it is about (django-anymail's Resend webhook notes the same),
so an email event is the first `data.to` address's. A message with more than one address
(in `to`, `cc` or `bcc`) cannot say whose bounce or complaint it is: those are acknowledged
and ignored rather than suppress a person who got the email. Blind copies the payload does
not list cannot be told apart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.errors import Unauthorized, ValidationFailed
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.email_events import canonical, iso_time
from leadscore.providers.signing import any_matches, require_configured
from leadscore.providers.wire import parse_json

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "resend"
TOLERANCE_S = 300
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
SIMPLE: dict[str, str] = {"email.delivered": "email_delivered", "email.opened": "email_opened",
                          "email.complained": "email_complained"}


DOCUMENTED = {"email.sent", "email.scheduled", "email.delivered", "email.delivery_delayed",
              "email.complained", "email.bounced", "email.opened", "email.clicked",
              "email.failed", "email.suppressed", "email.received", "contact.created",
              "contact.updated", "contact.deleted", "domain.created", "domain.updated",
              "domain.deleted"}


def signing_key(secret: str) -> bytes | None:
    """The HMAC key of a `whsec_...` secret, or None if it is not one (it can never match)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def presented_signatures(header: str) -> list[bytes]:
    found = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(request: Inbound, secrets: list[str], now: datetime) -> None:
    secrets = require_configured(secrets, "LEADSCORE_RESEND_SECRET")
    msg_id = request.headers.get("svix-id", "")
    stamp = request.headers.get("svix-timestamp", "")
    header = request.headers.get("svix-signature", "")
    if not msg_id or not stamp or not header:
        raise Unauthorized("missing svix-id, svix-timestamp or svix-signature header")
    if not TIMESTAMP.match(stamp):
        raise Unauthorized("svix-timestamp is not a Unix time")
    if abs(now.timestamp() - int(stamp)) > TOLERANCE_S:
        raise Unauthorized(f"svix-timestamp is outside the {TOLERANCE_S} s tolerance")
    message = f"{msg_id}.{stamp}.".encode() + request.raw
    keys = [key for key in (signing_key(s) for s in secrets) if key is not None]
    expected = [hmac.new(key, message, hashlib.sha256).digest() for key in keys]
    if not any_matches(presented_signatures(header), expected):
        raise Unauthorized("svix-signature does not match the body")



def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bounce(bounce: dict[str, Any]) -> dict[str, Any] | None:
    """`{"hard": ...}` for a bounce that says something about the address, else None."""
    kind, sub = bounce.get("type"), bounce.get("subType")
    if kind == "Permanent":
        return None if sub == "Suppressed" else {"hard": True}
    if kind in ("Transient", "Undetermined"):
        return {"hard": False}
    text = str(bounce.get("message") or "").lower()
    if "suppress" in text:
        return None
    return {"hard": "hard bounce" in text or "permanent" in text}


STATUS_CHANGES = frozenset({"email.bounced", "email.complained"})


def _addresses(data: dict[str, Any]) -> tuple[list[Any], int]:
    """The address an email event is about (the first `to`, see above), and how many
    addresses the message had."""
    fields = [data.get(name) for name in ("to", "cc", "bcc")]
    listed = [value if isinstance(value, list) else [value] if isinstance(value, str) else []
              for value in fields]
    return listed[0][:1], sum(len(values) for values in listed)


def meaning(kind: str, data: dict[str, Any], created: datetime | None
            ) -> tuple[str, list[Any], datetime | None, dict[str, Any]] | None:
    """(canonical kind, addresses, time, extra) for a scored event, else None."""
    recipients, addresses = _addresses(data)
    if kind in STATUS_CHANGES and addresses > 1:
        return None  # whose bounce or complaint it is, the event does not say
    if kind in SIMPLE:
        return SIMPLE[kind], recipients, created, {}
    if kind == "email.clicked":
        click = _object(data.get("click"))
        link = click.get("link")
        return ("email_clicked", recipients, iso_time(click.get("timestamp")) or created,
                {"url": link if isinstance(link, str) else None})
    if kind == "email.bounced":
        extra = _bounce(_object(data.get("bounce")))
        return None if extra is None else ("email_bounced", recipients, created, extra)
    if kind == "contact.updated" and data.get("unsubscribed") is True:
        return "email_unsubscribed", [data.get("email")], created, {}
    return None


def parse(request: Inbound) -> ParseResult:
    body = parse_json(request.raw)
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ValidationFailed("not a Resend event", details=[
            {"field": "type", "problem": "required"}])
    data = _object(body.get("data"))
    found = meaning(body["type"], data, iso_time(body.get("created_at")))
    kind, recipients, at, extra = found or ("", [], None, {})
    if at is None:
        return ParseResult(ignored=[body["type"] if body["type"] in DOCUMENTED else "unknown"])
    msg_id = request.headers.get("svix-id", "")
    events = []
    for i, email in enumerate(recipients):
        if not isinstance(email, str):
            continue
        key = (f"unsubscribed:{data.get('id')}:{email.lower()}" if kind == "email_unsubscribed"
               else f"{msg_id}:{email.lower()}")
        events.append(canonical(f"data.to.{i}", kind, email, SOURCE, key, at, **extra))
    return ParseResult(events=events)


class Resend(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/resend"
    settings = ("resend_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request, list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse(request)


PROVIDER = Resend()
