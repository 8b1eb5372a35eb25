"""The generic purchase format: for any shop we have no module for.

POST JSON to `/purchase_webhook/generic`:
    {"id": "evt-1", "type": "purchase" | "refund", "order_id": "A-1001",
     "email": "buyer@example.com", "amount": "49.90", "currency": "EUR",
     "occurred_at": "2026-11-20T10:00:00Z", "refund_id": "R-1" (refunds only)}
signed with `Leadscore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">`
using `LEADSCORE_PURCHASE_SECRET`; 300 s tolerance (Stripe's scheme, on purpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from marshmallow import ValidationError, fields, validate, validates_schema

from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.purchase_report import PurchaseReport, money
from leadscore.providers.wire import WireSchema, load_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

TOLERANCE_S = 300
HEADER = "Leadscore-Signature"


class PurchaseSchema(WireSchema):
    id = fields.String(required=True, validate=validate.Length(1, 128))
    type = fields.String(required=True, validate=validate.OneOf(["purchase", "refund"]))
    order_id = fields.String(required=True, validate=validate.Length(1, 128))
    email = fields.Email(required=True)
    amount = fields.Raw(required=True)
    currency = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    refund_id = fields.String(load_default=None, validate=validate.Length(1, 128))

    @validates_schema
    def _refund_id(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") == "refund" and not data.get("refund_id"):
            raise ValidationError("required for refunds", "refund_id")


def verify(raw: bytes, headers: dict[str, str], active: list[str], now: datetime) -> None:
    signing.verify_timestamped(raw, headers.get(HEADER.lower()), active, now, TOLERANCE_S,
                               "LEADSCORE_PURCHASE_SECRET", HEADER)


def parse(raw: bytes) -> list[PurchaseReport]:
    data: Any = load_json(schema_for(PurchaseSchema), raw)
    amount, code = money(data["amount"], data["currency"], "amount")
    kind: Literal["paid", "refund"] = "paid" if data["type"] == "purchase" else "refund"
    return [PurchaseReport("generic", kind, data["order_id"], amount, code, data["occurred_at"],
                           data["email"], refund_id=data["refund_id"])]


class GenericPurchase(WebhookProvider):
    name, function, path = "generic", "purchase_webhook", "/generic"
    settings = ("purchase_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(purchases=parse(request.raw))


PROVIDER = GenericPurchase()
