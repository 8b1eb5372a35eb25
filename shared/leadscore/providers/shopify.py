# ruff: noqa: E501  (the meaning table below is a Markdown table, one row per line)
"""Shopify: what each order and refund topic means.

Signature: `X-Shopify-Hmac-Sha256`, base64 HMAC-SHA256 of the raw body with the app's
secret (or the signing key on the admin's webhook page). The topic is in `X-Shopify-Topic`;
the body is the REST Order or Refund. Money is a decimal string; times carry the shop's
offset. Sources: shopify.dev webhook topics and REST Order/Refund resources, the admin's
"Send test notification" samples (see tests/events/purchases/shopify/SOURCES.md).

| topic (case) | canonical | amount | buyer | time |
|---|---|---|---|---|
| orders/create, `financial_status=paid` | purchase_made (same order as orders/paid: counted once) | `total_price` / `currency` | `email`, `contact_email`, `customer.email` | `processed_at`, else `created_at` |
| orders/create, pending / authorized / partially_paid / voided | ignored (orders/paid follows when paid) | | | |
| orders/paid | purchase_made, whatever `financial_status` says by the time a retry lands | as above | as above | as above |
| orders/updated, orders/cancelled | ignored (money only leaves through refunds/create) | | | |
| refunds/create with `transactions[kind=refund, status=success]` | purchase_refunded (refund id = refund `id`) | sum of those `amount`s / their `currency` | the order's lead (no email in the payload) | `processed_at`, else `created_at` |
| refunds/create without such transactions (restock only) | ignored | | | |
| test notifications (`X-Shopify-Test: true`, `test: true`, or test transactions) | ignored, 200 (their refund sample has `currency: null`) | | | |
| any other topic | ignored | | | |

A refund for an order leadscore never recorded is acknowledged as unmatched and logged:
Shopify's refund names no buyer, and retrying would not make the order appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore import logs
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.purchase_report import PurchaseReport, money
from leadscore.providers.wire import WireSchema, load_json, parse_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

class _Customer(WireSchema):
    email = fields.String(load_default=None, allow_none=True)


class OrderSchema(WireSchema):
    id = fields.Integer(required=True)
    email = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)
    customer = fields.Nested(_Customer, load_default=None, allow_none=True)
    total_price = fields.String(required=True)
    currency = fields.String(required=True)
    total_price_set = fields.Raw(load_default=None, allow_none=True)
    financial_status = fields.String(load_default=None, allow_none=True)
    processed_at = fields.AwareDateTime(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class _Transaction(WireSchema):
    amount = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(load_default="success", allow_none=True)
    currency = fields.String(load_default=None, allow_none=True)


class RefundSchema(WireSchema):
    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    processed_at = fields.AwareDateTime(load_default=None, allow_none=True)
    transactions = fields.List(fields.Nested(_Transaction), load_default=list)


def verify(raw: bytes, headers: dict[str, str], active: list[str], now: datetime) -> None:
    signing.verify_base64_hmac(raw, headers.get("x-shopify-hmac-sha256"), active,
                               "LEADSCORE_SHOPIFY_SECRET", "X-Shopify-Hmac-Sha256")


def is_test(raw: bytes, headers: dict[str, str]) -> bool:
    """The admin's "Send test notification": a signed, fixed sample that must get a 2xx."""
    if headers.get("x-shopify-test", "").strip().lower() == "true":
        return True
    body: Any = parse_json(raw)  # bad JSON, nesting too deep included: a 400, never a 500
    if not isinstance(body, dict):
        return False
    transactions = body.get("transactions")
    return body.get("test") is True or (
        isinstance(transactions, list) and bool(transactions)
        and all(isinstance(t, dict) and t.get("test") is True for t in transactions))


def _order(raw: bytes, topic: str) -> list[PurchaseReport]:
    order = load_json(schema_for(OrderSchema), raw)
    if topic == "orders/create" and order["financial_status"] != "paid":
        return []  # created but not paid yet: orders/paid will follow
    if topic == "orders/paid" and order["financial_status"] in {"voided", "expired"}:
        return []
    amount, code = _paid(order)
    customer = order["customer"] or {}
    email = order["email"] or order["contact_email"] or customer.get("email")
    return [PurchaseReport("shopify", "paid", str(order["id"]), amount, code,
                           order["processed_at"] or order["created_at"], email or None,
                           event_type=topic)]


def _paid(order: dict[str, Any]) -> tuple[int, str]:
    """What the buyer paid, in the currency they paid in: `total_price_set`'s presentment
    money when the order has one. `total_price`/`currency` are in the shop's currency, but
    refund transactions come in the presentment currency (Shopify's multi-currency docs),
    so a Shopify Markets order recorded in the shop's currency had every refund refused as
    a refund in another currency (found by an audit)."""
    given = order.get("total_price_set")
    shown = given.get("presentment_money") if isinstance(given, dict) else None
    if isinstance(shown, dict) and isinstance(shown.get("amount"), str) and isinstance(
            shown.get("currency_code"), str):
        return money(shown["amount"], shown["currency_code"],
                     "total_price_set.presentment_money")
    return money(order["total_price"], order["currency"], "total_price")


def _refund(raw: bytes, topic: str) -> list[PurchaseReport]:
    refund = load_json(schema_for(RefundSchema), raw)
    done = [t for t in refund["transactions"]
            if t["kind"] == "refund" and (t["status"] or "success") == "success"]
    if not done:
        return []  # a restock-only refund moves no money
    currencies = {t["currency"] for t in done if t["currency"]}
    if len(currencies) != 1:
        logs.warning("refund without one currency: acknowledged, ignored",
                     provider="shopify", type=topic)
        return []
    total = sum((Decimal(t["amount"]) for t in done), Decimal(0))
    amount, code = money(total, currencies.pop(), "transactions.amount")
    return [PurchaseReport("shopify", "refund", str(refund["order_id"]), amount, code,
                           refund["processed_at"] or refund["created_at"], None,
                           refund_id=str(refund["id"]), event_type=topic)]


def parse(raw: bytes, headers: dict[str, str]) -> list[PurchaseReport]:
    topic = headers.get("x-shopify-topic", "")
    reports: list[PurchaseReport] = []
    if is_test(raw, headers):
        logs.info("test notification acknowledged", provider="shopify", type=topic)
        return []
    if topic in {"orders/create", "orders/paid"}:
        reports = _order(raw, topic)
    elif topic == "refunds/create":
        reports = _refund(raw, topic)
    if not reports:
        logs.info("webhook acknowledged, nothing to record", provider="shopify", type=topic)
    return reports


class Shopify(WebhookProvider):
    name, function, path = "shopify", "purchase_webhook", "/shopify"
    settings = ("shopify_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(purchases=parse(request.raw, dict(request.headers)))


PROVIDER = Shopify()
