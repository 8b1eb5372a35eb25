"""SendGrid Event Webhook: a JSON array of events.

Signed Event Webhook: ECDSA P-256 / SHA-256 over the timestamp header followed by the raw
body; the signature (base64 DER) is in `X-Twilio-Email-Event-Webhook-Signature`, the
timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`. `LEADSCORE_SENDGRID_PUBLIC_KEY` is
the base64 key the SendGrid console shows (PEM works too); several, comma-separated, rotate.
A timestamp more than 10 minutes from our clock is stale. Events are de-duplicated on
`sg_event_id`; `sg_machine_open` marks privacy prefetch opens.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.events import Event
from leadscore.errors import PayloadTooLarge, Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.email_events import canonical, from_unix
from leadscore.providers.wire import WireSchema, load_json

if TYPE_CHECKING:
    from leadscore.config import Settings

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
TOLERANCE_S = 600
SOURCE = "sendgrid"
MAX_BATCH = 20_000  # SendGrid batches hold far fewer; this bounds one request's work


class EventSchema(WireSchema):
    email = fields.String(required=True)
    event = fields.String(required=True)
    timestamp = fields.Integer(required=True)
    sg_event_id = fields.String(load_default=None)
    sg_message_id = fields.String(load_default=None)
    sg_machine_open = fields.Boolean(load_default=False)
    url = fields.String(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True)


def _public_key(text: str) -> Any:
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    if "BEGIN PUBLIC KEY" in text:
        return load_pem_public_key(text.encode())
    return load_der_public_key(base64.b64decode(text))


def verify(raw: bytes, headers: dict[str, str], keys: list[str], now: datetime) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signing.require_configured(keys, "LEADSCORE_SENDGRID_PUBLIC_KEY")
    signature, stamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
    if not signature or not stamp:
        raise Unauthorized("missing X-Twilio-Email-Event-Webhook-Signature or -Timestamp")
    seconds = signing.unix_stamp(stamp)
    if seconds is None or abs(now.timestamp() - seconds) > TOLERANCE_S:
        raise Unauthorized(f"webhook timestamp is outside the {TOLERANCE_S} s tolerance")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the signature is not base64") from None
    for key in keys:
        try:
            _public_key(key).verify(der, stamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
            return
        except (InvalidSignature, ValueError):
            continue
    raise Unauthorized("the signature does not match the body")


def _key(item: dict[str, Any]) -> str:
    return item["sg_event_id"] or f"{item['sg_message_id']}:{item['event']}:{item['timestamp']}"


def parse(raw: bytes) -> list[Event]:
    items: list[dict[str, Any]] = load_json(EventSchema(), raw, many=True)
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"{len(items)} events in one batch; the limit is {MAX_BATCH}")
    events: list[Event] = []
    for i, item in enumerate(items):
        at, kind, extra = from_unix(item["timestamp"]), item["event"], {}
        if kind == "delivered":
            mapped = "email_delivered"
        elif kind == "open":
            mapped, extra = "email_opened", {"machine_open": item["sg_machine_open"]}
        elif kind == "click":
            mapped, extra = "email_clicked", {"url": item["url"]}
        elif kind == "bounce":  # "blocked" is SendGrid's soft bounce
            mapped, extra = "email_bounced", {"hard": item["type"] != "blocked"}
        elif kind == "spamreport":
            mapped = "email_complained"
        elif kind in ("unsubscribe", "group_unsubscribe"):
            mapped = "email_unsubscribed"
        elif kind == "group_resubscribe":
            mapped = "email_resubscribed"
        else:
            continue  # processed, deferred, dropped and new types: accepted, ignored
        events.append(canonical(str(i), mapped, item["email"], SOURCE, _key(item), at, **extra))
    return events


class SendGrid(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/sendgrid"
    settings = ("sendgrid_public_key",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(events=parse(request.raw))


PROVIDER = SendGrid()
