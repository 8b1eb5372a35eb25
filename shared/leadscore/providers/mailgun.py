"""Mailgun webhooks: one JSON event per request, signed inside the body.

`signature.signature` is hex HMAC-SHA256 of `timestamp + token` with the webhook signing
key (`LEADSCORE_MAILGUN_SIGNING_KEY`); a timestamp more than 15 minutes from our clock is
stale, and a token seen with another event is a replay. `failed` with `severity: permanent`
is a hard bounce.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.events import Event
from leadscore.errors import Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, TokenClaim, WebhookProvider
from leadscore.providers.email_events import canonical, from_unix
from leadscore.providers.wire import WireSchema, load_json, parse_json

if TYPE_CHECKING:
    from leadscore.config import Settings

TOLERANCE_S = 900
SOURCE = "mailgun"


class _Signature(WireSchema):
    timestamp = fields.String(required=True)
    token = fields.String(required=True)
    signature = fields.String(required=True)


class _EventData(WireSchema):
    id = fields.String(required=True)
    event = fields.String(required=True)
    timestamp = fields.Float(required=True)
    recipient = fields.String(required=True)
    severity = fields.String(load_default=None)
    url = fields.String(load_default=None)


class WebhookSchema(WireSchema):
    signature = fields.Nested(_Signature, required=True)
    event_data = fields.Nested(_EventData, required=True, data_key="event-data")


def verify(raw: bytes, keys: list[str], now: datetime) -> str:
    """Check the signature inside the body; return the token for the replay check."""
    signing.require_configured(keys, "LEADSCORE_MAILGUN_SIGNING_KEY")
    body = parse_json(raw)
    sig = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(sig, dict) or not all(
            isinstance(sig.get(k), str) for k in ("timestamp", "token", "signature")):
        raise Unauthorized("missing signature object (timestamp, token, signature)")
    stamp, token = sig["timestamp"], sig["token"]
    seconds = signing.unix_stamp(stamp)
    if seconds is None or abs(now.timestamp() - seconds) > TOLERANCE_S:
        raise Unauthorized(f"signature timestamp is outside the {TOLERANCE_S} s tolerance")
    try:
        presented = bytes.fromhex(sig["signature"])
    except ValueError:
        raise Unauthorized("signature is not hex") from None
    message = (stamp + token).encode()
    if not signing.any_matches([presented], [signing.hmac_sha256(k, message) for k in keys]):
        raise Unauthorized("signature does not match")
    return str(token)


def parse(raw: bytes) -> list[Event]:
    data: dict[str, Any] = load_json(WebhookSchema(), raw)["event_data"]
    at, kind, extra = from_unix(data["timestamp"]), data["event"], {}
    if kind == "delivered":
        mapped = "email_delivered"
    elif kind == "opened":
        mapped = "email_opened"
    elif kind == "clicked":
        mapped, extra = "email_clicked", {"url": data["url"]}
    elif kind == "failed":
        mapped, extra = "email_bounced", {"hard": data["severity"] == "permanent"}
    elif kind == "complained":
        mapped = "email_complained"
    elif kind == "unsubscribed":
        mapped = "email_unsubscribed"
    else:
        return []  # accepted, stored, rejected and new types: accepted, ignored
    return [canonical("event-data", mapped, data["recipient"], SOURCE, data["id"], at, **extra)]


def event_id(raw: bytes) -> str:
    body = parse_json(raw)
    data = body.get("event-data") if isinstance(body, dict) else None
    return str(data.get("id")) if isinstance(data, dict) else ""


class Mailgun(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/mailgun"
    settings = ("mailgun_signing_key",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        events = parse(request.raw)
        # the token was checked by verify; a token seen with another event is a replay
        token = str(parse_json(request.raw)["signature"]["token"])
        return ParseResult(events=events,
                           claims=[TokenClaim(f"mailgun:{token}", event_id(request.raw))])


PROVIDER = Mailgun()
