"""SendGrid Event Webhook: a JSON array of events, several types mixed in one request.

Signed Event Webhook: ECDSA P-256 / SHA-256 over the timestamp header followed by the raw
body; the signature (base64 DER) is in `X-Twilio-Email-Event-Webhook-Signature`, the
timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`. `LEADSCORE_SENDGRID_PUBLIC_KEY` is
the base64 key the SendGrid console shows (PEM works too); several, comma-separated, rotate.
SendGrid documents no tolerance; ours is 10 minutes. Events are de-duplicated on
`sg_event_id` ("unique for every event"), else `sg_message_id:event:timestamp`.

What each documented event means here (sources: SendGrid's Event Webhook reference
[SG-REF], its delivery-event properties [SG-TWILIO], the Apple machine-open article [SG-MPP];
see tests/events/email/sendgrid/SOURCES.md):

- `processed` -> acknowledged, ignored: accepted by SendGrid, not yet delivered [SG-REF]
- `deferred` -> acknowledged, ignored: temporary; SendGrid retries, the outcome comes later
  [SG-REF]
- `delivered` -> `email_delivered`: accepted by the receiving server [SG-REF]
- `bounce`, `type: bounce` (or no `type`) -> `email_bounced(hard=True)`: "permanently" refused
  [SG-REF]; `bounce_classification` is a reason category, not hardness
- `bounce`, `type: blocked` -> `email_bounced(hard=False)`: "temporarily" refused [SG-REF]
- `dropped` (every `reason`) -> acknowledged, ignored: never sent: an existing suppression or a
  sender problem, not an act of the person [SG-REF]
- `open`, `sg_machine_open` false/absent -> `email_opened(machine_open=False)`: [SG-REF]
- `open`, `sg_machine_open: true` -> `email_opened(machine_open=True)`: Apple Mail Privacy
  Protection prefetch [SG-MPP]
- `click` -> `email_clicked(url)`: [SG-REF]
- `spamreport` -> `email_complained`: [SG-REF]
- `unsubscribe` -> `email_unsubscribed`: "Opt Out of All Emails": a global opt-out [SG-REF]
- `group_unsubscribe` -> `activity("email_group_unsubscribed")`: one unsubscribe group
  (`asm_group_id`) only, not a global opt-out [SG-REF]: recorded in the history, email status
  unchanged
- `group_resubscribe` -> `activity("email_group_resubscribed")`: one group again; it does not
  lift a global unsubscribe [SG-REF]
- `account_status_change` -> acknowledged, ignored: an account compliance event with no
  recipient [SG-TWILIO]
- any other `event` -> acknowledged, ignored: SendGrid adds types without notice

An item without `email`, with an address that is not one (a `dropped` of reason `Invalid`),
or with a field of the wrong JSON type is acknowledged and ignored on its own; the rest of
the batch is applied.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.events import Event
from leadscore.errors import PayloadTooLarge, Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.email_events import Batch, json_items, load_item, unix_time
from leadscore.providers.wire import WireSchema, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
TOLERANCE_S = 600
SOURCE = "sendgrid"
MAX_BATCH = 20_000  # SendGrid batches hold far fewer; this bounds one request's work


class EventSchema(WireSchema):
    email = fields.Raw(load_default=None)  # checked by the canonical model, item by item
    event = fields.String(required=True)
    timestamp = fields.Integer(required=True, strict=False)
    sg_event_id = fields.String(load_default=None, allow_none=True)
    sg_message_id = fields.String(load_default=None, allow_none=True)
    sg_machine_open = fields.Boolean(load_default=False, allow_none=True)
    url = fields.String(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True)


@functools.lru_cache(maxsize=8)  # a few active keys; parsing one took ~30 us a request
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

    keys = signing.require_configured(keys, "LEADSCORE_SENDGRID_PUBLIC_KEY")
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


IGNORED = frozenset({"processed", "deferred", "dropped", "account_status_change"})
SIMPLE = {"delivered": "email_delivered", "spamreport": "email_complained",
          "unsubscribe": "email_unsubscribed"}
GROUP = {"group_unsubscribe": "email_group_unsubscribed",
         "group_resubscribe": "email_group_resubscribed"}


def _one(batch: Batch, i: int, item: dict[str, Any], at: datetime) -> None:
    kind, key = item["event"], _key(item)
    add = functools.partial(batch.add, str(i), kind, email=item["email"], key=key, at=at)
    if kind in SIMPLE:
        add(SIMPLE[kind])
    elif kind == "open":
        add("email_opened", machine_open=bool(item["sg_machine_open"]))
    elif kind == "click":
        add("email_clicked", url=item["url"])
    elif kind == "bounce":  # "blocked" is SendGrid's temporary refusal: a soft bounce
        add("email_bounced", hard=item["type"] != "blocked")
    elif kind in GROUP:
        add("activity", activity=GROUP[kind])
    else:  # processed, deferred, dropped, account events and types added later
        batch.ignore(kind)


def parse_batch(raw: bytes) -> ParseResult:
    """Every item on its own: what we do not score, or cannot read, is only acknowledged."""
    items = json_items(raw)
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"{len(items)} events in one batch; the limit is {MAX_BATCH}")
    batch, schema = Batch(SOURCE), schema_for(EventSchema)
    for i, raw_item in enumerate(items):
        item = load_item(schema, raw_item)
        at = unix_time(item["timestamp"]) if item is not None else None
        if item is None or at is None:
            batch.ignore(raw_item.get("event") if isinstance(raw_item, dict) else None,
                         "invalid")
            continue
        _one(batch, i, item, at)  # the time read once, not checked and then read again
    return batch.result()


def parse(raw: bytes) -> list[Event]:
    """The canonical events of one request (what `parse_batch` scores)."""
    return parse_batch(raw).events


class SendGrid(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/sendgrid"
    settings = ("sendgrid_public_key",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse_batch(request.raw)


PROVIDER = SendGrid()
