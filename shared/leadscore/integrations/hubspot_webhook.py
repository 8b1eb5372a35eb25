"""HubSpot webhooks: signature v3 and deal changes turned into sales outcomes.

Signature v3 (HubSpot's "Validating requests"): X-HubSpot-Signature-v3 is the base64
HMAC-SHA256, keyed with the app's client secret, of
method + URI + raw body + X-HubSpot-Request-Timestamp (milliseconds), where the URI is the
full URL HubSpot called with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B decoded.
Requests whose timestamp is more than 5 minutes away from now are refused (stale, or a
clock far off). Within those 5 minutes a byte-identical replay carries a valid signature,
so `verify_v3` takes `claim`, a one-use check of the signature (the store's
`claim_token`): a signature seen before is a replay. HubSpot's own retries are new
requests with a new timestamp, so they are never taken for replays.

Deal events (a JSON array, several per request) become outcome dicts:
deal.creation -> opportunity_created; deal.propertyChange of `dealstage` to a won stage ->
deal_won, to a lost stage -> deal_lost (closedwon/closedlost in the default pipeline; other
pipelines use their own stage ids, passed in). An `amount` change in the same request is
attached to the deal's outcome. Everything else is acknowledged and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
TOLERANCE = timedelta(minutes=5)
DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
           "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
WON_STAGES = ("closedwon",)
LOST_STAGES = ("closedlost",)


class SignatureInvalid(Exception):
    """Missing, forged, stale or replayed: the entry point answers 401."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def canonical_uri(uri: str) -> str:
    for encoded, char in DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + canonical_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_v3(method: str, uri: str, body: bytes, headers: Mapping[str, str],
              secrets: Sequence[str], now: datetime,
              claim: Callable[[str], bool] | None = None) -> None:
    """Raise SignatureInvalid unless one of `secrets` signed this request within 5 minutes
    of `now` and (with `claim`) its signature was never used before."""
    signature, stamp = _header(headers, SIGNATURE_HEADER), _header(headers, TIMESTAMP_HEADER)
    if not signature or not stamp or not stamp.isdigit():
        raise SignatureInvalid("missing signature or timestamp")
    try:
        sent = datetime.fromtimestamp(int(stamp) / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        raise SignatureInvalid("bad timestamp") from None
    if abs(now - sent) > TOLERANCE:
        raise SignatureInvalid("timestamp outside the 5-minute tolerance (stale or future)")
    expected = [signature_v3(s, method, uri, body, stamp) for s in secrets if s]
    if not any(hmac.compare_digest(e.encode(), signature.encode()) for e in expected):
        raise SignatureInvalid("signature mismatch")
    if claim is not None and not claim(signature):
        raise SignatureInvalid("replayed request")


class _DealEvent(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.Integer(data_key="eventId", required=True)
    portal_id = fields.Integer(data_key="portalId", load_default=None)
    occurred_at = fields.Integer(data_key="occurredAt", required=True)
    subscription_type = fields.String(data_key="subscriptionType", required=True)
    object_type_id = fields.String(data_key="objectTypeId", load_default=None)
    object_id = fields.Integer(data_key="objectId", required=True)
    property_name = fields.String(data_key="propertyName", load_default=None, allow_none=True)
    property_value = fields.String(data_key="propertyValue", load_default=None,
                                   allow_none=True)


class PayloadInvalid(Exception):
    def __init__(self, problems: Any) -> None:
        super().__init__("invalid HubSpot webhook payload")
        self.problems = problems


def _kind(event: dict[str, Any]) -> str | None:
    """deal.creation / deal.propertyChange, also in the generic object.* form (0-3 = deal)."""
    kind = str(event["subscription_type"])
    if kind.startswith("object.") and event.get("object_type_id") == "0-3":
        return "deal." + kind.removeprefix("object.")
    return kind if kind.startswith("deal.") else None


def deal_outcomes(payload: Any, won_stages: Iterable[str] = WON_STAGES,
                  lost_stages: Iterable[str] = LOST_STAGES) -> list[dict[str, Any]]:
    events = payload if isinstance(payload, list) else [payload]
    try:
        loaded: list[dict[str, Any]] = _DealEvent(many=True).load(events)
    except ValidationError as exc:
        raise PayloadInvalid(exc.messages) from None
    won, lost = set(won_stages), set(lost_stages)
    amounts: dict[int, float] = {}
    for event in loaded:
        if _kind(event) == "deal.propertyChange" and event["property_name"] == "amount":
            try:
                amounts[event["object_id"]] = float(event["property_value"] or "")
            except ValueError:
                pass
    outcomes = []
    for event in loaded:
        kind, value = _kind(event), event["property_value"]
        if kind == "deal.creation":
            outcome = "opportunity_created"
        elif kind == "deal.propertyChange" and event["property_name"] == "dealstage":
            outcome = "deal_won" if value in won else "deal_lost" if value in lost else ""
        else:
            outcome = ""
        if not outcome:
            continue
        deal = event["object_id"]
        try:  # per event: one occurredAt no date can hold costs only its own outcome
            at: datetime | None = datetime.fromtimestamp(event["occurred_at"] / 1000, UTC)
        except (ValueError, OverflowError, OSError):
            at = None  # the caller acknowledges it as invalid
        outcomes.append({
            "type": outcome, "deal_id": str(deal), "amount": amounts.get(deal),
            "occurred_at": at,
            "idempotency_key": f"hubspot-{event['portal_id']}-{event['event_id']}"})
    return outcomes
