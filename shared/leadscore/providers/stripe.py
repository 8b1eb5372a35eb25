"""Stripe: checkout sessions, paid invoices and refunded charges.

Signature: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, HMAC-SHA256 of `{t}.{raw body}`
with the endpoint's signing secret (`whsec_...`), 300 s tolerance. Amounts arrive in minor
units; currencies in lower case. Orders are keyed by payment intent where there is one, so
a refund of a charge finds the checkout or invoice that paid it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.purchase_report import PurchaseReport, minor_units
from leadscore.providers.wire import WireSchema, load_json

if TYPE_CHECKING:
    from leadscore.config import Settings

TOLERANCE_S = 300
HANDLED = {"checkout.session.completed", "checkout.session.async_payment_succeeded",
           "invoice.paid", "charge.refunded"}


class _Data(WireSchema):
    object = fields.Dict(required=True)


class EventSchema(WireSchema):
    id = fields.String(required=True)
    type = fields.String(required=True)
    created = fields.Integer(required=True)
    data = fields.Nested(_Data, required=True)


def verify(raw: bytes, headers: dict[str, str], active: list[str], now: datetime) -> None:
    signing.verify_timestamped(raw, headers.get("stripe-signature"), active, now, TOLERANCE_S,
                               "LEADSCORE_STRIPE_SECRET", "Stripe-Signature")


def _email(obj: dict[str, Any], *paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value: Any = obj
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    return None


def parse(raw: bytes) -> list[PurchaseReport]:
    event = load_json(EventSchema(), raw)
    kind, obj = event["type"], event["data"]["object"]
    if kind not in HANDLED:
        return []
    at = datetime.fromtimestamp(event["created"], UTC)
    if kind.startswith("checkout.session"):
        if obj.get("payment_status") != "paid":
            return []  # delayed payment methods report again with async_payment_succeeded
        amount, code = minor_units(obj.get("amount_total"), obj.get("currency"),
                                   "data.object.amount_total")
        order = obj.get("payment_intent") or obj.get("id")
        email = _email(obj, ("customer_details", "email"), ("customer_email",))
        return [PurchaseReport("stripe", "paid", str(order), amount, code, at, email)]
    if kind == "invoice.paid":
        amount, code = minor_units(obj.get("amount_paid"), obj.get("currency"),
                                   "data.object.amount_paid")
        if amount == 0:
            return []  # trials and fully discounted invoices are not purchases
        order = obj.get("payment_intent") or obj.get("id")
        return [PurchaseReport("stripe", "paid", str(order), amount, code, at,
                               _email(obj, ("customer_email",)))]
    # charge.refunded: amount_refunded is cumulative for the charge
    amount, code = minor_units(obj.get("amount_refunded"), obj.get("currency"),
                               "data.object.amount_refunded")
    order = obj.get("payment_intent") or obj.get("invoice") or obj.get("id")
    email = _email(obj, ("billing_details", "email"), ("receipt_email",))
    return [PurchaseReport("stripe", "refund", str(order), amount, code, at, email,
                           refund_id=str(obj.get("id")))]


class Stripe(WebhookProvider):
    name, function, path = "stripe", "purchase_webhook", "/stripe"
    settings = ("stripe_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(purchases=parse(request.raw))


PROVIDER = Stripe()
