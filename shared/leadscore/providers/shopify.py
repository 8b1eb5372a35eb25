"""Shopify: paid orders and refunds.

Signature: `X-Shopify-Hmac-Sha256`, base64 HMAC-SHA256 of the raw body with the app's
secret. The topic is in `X-Shopify-Topic`. `total_price` is a decimal string. Refund
payloads carry no email, only the order id: the purchases use case finds the lead from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from marshmallow import fields

from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.purchase_report import PurchaseReport, money
from leadscore.providers.wire import WireSchema, load_json

if TYPE_CHECKING:
    from leadscore.config import Settings

PAID_TOPICS = {"orders/paid", "orders/create"}


class _Customer(WireSchema):
    email = fields.String(load_default=None, allow_none=True)


class OrderSchema(WireSchema):
    id = fields.Integer(required=True)
    email = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)
    customer = fields.Nested(_Customer, load_default=None, allow_none=True)
    total_price = fields.String(required=True)
    currency = fields.String(required=True)
    financial_status = fields.String(load_default=None, allow_none=True)
    processed_at = fields.AwareDateTime(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class _Transaction(WireSchema):
    amount = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(load_default="success")
    currency = fields.String(required=True)


class RefundSchema(WireSchema):
    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    transactions = fields.List(fields.Nested(_Transaction), load_default=list)


def verify(raw: bytes, headers: dict[str, str], active: list[str], now: datetime) -> None:
    signing.verify_base64_hmac(raw, headers.get("x-shopify-hmac-sha256"), active,
                               "LEADSCORE_SHOPIFY_SECRET", "X-Shopify-Hmac-Sha256")


def parse(raw: bytes, headers: dict[str, str]) -> list[PurchaseReport]:
    topic = headers.get("x-shopify-topic", "")
    if topic in PAID_TOPICS:
        order = load_json(OrderSchema(), raw)
        if order["financial_status"] != "paid":
            return []  # created but not paid yet: orders/paid will follow
        amount, code = money(order["total_price"], order["currency"], "total_price")
        customer = order["customer"] or {}
        email = order["email"] or order["contact_email"] or customer.get("email")
        return [PurchaseReport("shopify", "paid", str(order["id"]), amount, code,
                               order["processed_at"] or order["created_at"], email)]
    if topic == "refunds/create":
        refund = load_json(RefundSchema(), raw)
        done = [t for t in refund["transactions"]
                if t["kind"] == "refund" and t["status"] == "success"]
        if not done:
            return []  # a restock-only refund moves no money
        total = sum((Decimal(t["amount"]) for t in done), Decimal(0))
        amount, code = money(total, done[0]["currency"], "transactions.amount")
        return [PurchaseReport("shopify", "refund", str(refund["order_id"]), amount, code,
                               refund["created_at"], None, refund_id=str(refund["id"]))]
    return []


class Shopify(WebhookProvider):
    name, function, path = "shopify", "purchase_webhook", "/shopify"
    settings = ("shopify_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(purchases=parse(request.raw, dict(request.headers)))


PROVIDER = Shopify()
