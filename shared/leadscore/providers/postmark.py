"""Postmark webhooks: one JSON record per request, `RecordType` says which.

Postmark does not sign webhooks; it sends HTTP basic auth from the credentials in the
webhook URL (`https://user:password@.../email_webhook/postmark`), checked against
`LEADSCORE_POSTMARK_BASIC_AUTH` (`user:password`, several comma-separated). The recipient
is `Recipient` on opens, clicks, deliveries and subscription changes, `Email` on bounces and
spam complaints.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.events import Event
from leadscore.errors import Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.email_events import canonical
from leadscore.providers.wire import WireSchema, load_json

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "postmark"
HARD_BOUNCES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "SpamNotification",
                "Blocked", "DMARCPolicy"}


class RecordSchema(WireSchema):
    RecordType = fields.String(required=True)
    MessageID = fields.String(load_default="")
    ID = fields.Raw(load_default=None)
    Recipient = fields.String(load_default=None)
    Email = fields.String(load_default=None)
    Type = fields.String(load_default=None)
    ReceivedAt = fields.AwareDateTime(load_default=None)
    DeliveredAt = fields.AwareDateTime(load_default=None)
    BouncedAt = fields.AwareDateTime(load_default=None)
    ChangedAt = fields.AwareDateTime(load_default=None)
    OriginalLink = fields.String(load_default=None)
    SuppressSending = fields.Boolean(load_default=None)
    SuppressionReason = fields.String(load_default=None, allow_none=True)


def verify(authorization: str | None, credentials: list[str]) -> None:
    signing.require_configured(credentials, "LEADSCORE_POSTMARK_BASIC_AUTH")
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("missing basic auth: put user:password in the webhook URL")
    try:
        presented = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("basic auth is not base64") from None
    matched = False
    for pair in credentials:
        matched |= hmac.compare_digest(presented, pair.encode())
    if not matched:
        raise Unauthorized("wrong basic auth credentials")



def parse(raw: bytes) -> list[Event]:
    r: dict[str, Any] = load_json(RecordSchema(), raw)
    kind, msg = r["RecordType"], r["MessageID"]
    if kind == "Open" and r["ReceivedAt"]:
        return [canonical("Recipient", "email_opened", r["Recipient"], SOURCE,
                          f"open:{msg}:{r['ReceivedAt'].isoformat()}", r["ReceivedAt"])]
    if kind == "Click" and r["ReceivedAt"]:
        return [canonical("Recipient", "email_clicked", r["Recipient"], SOURCE,
                          f"click:{msg}:{r['ReceivedAt'].isoformat()}:{r['OriginalLink']}",
                          r["ReceivedAt"], url=r["OriginalLink"])]
    if kind == "Delivery" and r["DeliveredAt"]:
        return [canonical("Recipient", "email_delivered", r["Recipient"], SOURCE,
                          f"delivery:{msg}:{r['Recipient']}", r["DeliveredAt"])]
    if kind == "Bounce" and r["BouncedAt"]:
        return [canonical("Email", "email_bounced", r["Email"], SOURCE, f"bounce:{r['ID']}",
                          r["BouncedAt"], hard=r["Type"] in HARD_BOUNCES)]
    if kind == "SpamComplaint" and r["BouncedAt"]:
        return [canonical("Email", "email_complained", r["Email"], SOURCE,
                          f"complaint:{r['ID']}", r["BouncedAt"])]
    if kind == "SubscriptionChange" and r["ChangedAt"]:
        key = f"subscription:{r['Recipient']}:{r['ChangedAt'].isoformat()}:{r['SuppressSending']}"
        if not r["SuppressSending"]:
            mapped = "email_resubscribed"
        elif r["SuppressionReason"] == "SpamComplaint":
            mapped = "email_complained"
        elif r["SuppressionReason"] == "HardBounce":
            return []  # the Bounce record already said so
        else:
            mapped = "email_unsubscribed"
        return [canonical("Recipient", mapped, r["Recipient"], SOURCE, key, r["ChangedAt"])]
    return []  # other record types, or a record without its time: accepted, ignored


class Postmark(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/postmark"
    settings = ("postmark_basic_auth",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(events=parse(request.raw))


PROVIDER = Postmark()
