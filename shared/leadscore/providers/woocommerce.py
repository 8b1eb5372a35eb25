# ruff: noqa: E501  (the meaning table below is a Markdown table, one row per line)
"""WooCommerce: what each order topic and status means.

Signature: `X-WC-Webhook-Signature`, base64 HMAC-SHA256 of the raw body. Bodies are PHP's
JSON (`\\/`, `\\u00e9`): we verify the bytes as received, never a re-encoding. When a webhook
is saved WooCommerce sends an unsigned form-encoded ping (`webhook_id=N`), answered 200.
Dates ending in `_gmt` have no offset and are UTC. The body of order.created/updated is the
whole REST v3 order, refunds so far included. Sources: the WooCommerce REST API docs
(orders, webhooks) and `class-wc-webhook.php` (see tests/events/purchases/woocommerce/).

| topic / status | canonical | amount | buyer | time |
|---|---|---|---|---|
| order.created / order.updated, `processing` or `completed` (with or without `date_paid_gmt`) | purchase_made (one per order id) | `total` / `currency` | `billing.email` | `date_paid_gmt`, else `date_completed_gmt`, else `date_created_gmt` |
| any status but `trash` with `date_paid_gmt` set or refunds listed, or `refunded` | purchase_made, as above | | | |
| each of `refunds[]` of such an order | purchase_refunded (refund id = `refunds[].id`) | abs(`refunds[].total`) | as above | `date_modified_gmt` |
| `pending`, `on-hold`, `failed`, `cancelled` never paid | ignored | | | |
| `trash`, order.deleted (`{"id": N}`), order.restored, other topics | ignored | | | |
| a paid order whose `billing.email` is empty | ignored, logged | | | |
| the ping `webhook_id=N` | answered 200 | | | |

WooCommerce does not retry and disables a webhook after 5 failed deliveries, so anything
signed and well-formed is answered 2xx; only a forged signature or broken JSON is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore import logs
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, Reply, WebhookProvider
from leadscore.providers.purchase_report import PurchaseReport, money
from leadscore.providers.wire import WireSchema, load_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

PAID_STATUSES = {"processing", "completed", "refunded"}
PING = re.compile(rb"^webhook_id=\d+$")


class _Billing(WireSchema):
    email = fields.String(load_default=None, allow_none=True)


class _Refund(WireSchema):
    id = fields.Integer(required=True)
    total = fields.String(required=True)


class OrderSchema(WireSchema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    currency = fields.String(required=True)
    total = fields.String(required=True)
    date_paid_gmt = fields.NaiveDateTime(load_default=None, allow_none=True)
    date_completed_gmt = fields.NaiveDateTime(load_default=None, allow_none=True)
    date_created_gmt = fields.NaiveDateTime(required=True)
    date_modified_gmt = fields.NaiveDateTime(load_default=None, allow_none=True)
    billing = fields.Nested(_Billing, load_default=None, allow_none=True)
    refunds = fields.List(fields.Nested(_Refund), load_default=list)


def is_ping(raw: bytes, headers: dict[str, str]) -> bool:
    return "x-wc-webhook-signature" not in headers and bool(PING.match(raw.strip()))


def verify(raw: bytes, headers: dict[str, str], active: list[str], now: datetime) -> None:
    signing.verify_base64_hmac(raw, headers.get("x-wc-webhook-signature"), active,
                               "LEADSCORE_WOOCOMMERCE_SECRET", "X-WC-Webhook-Signature")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def is_paid(order: dict[str, Any]) -> bool:
    """WooCommerce's paid statuses, or any sign that money came in (a completed order may
    have `date_paid_gmt: null`, as in the REST documentation's own example)."""
    if order["status"] == "trash":
        return False
    return (order["status"] in PAID_STATUSES or order["date_paid_gmt"] is not None
            or bool(order["refunds"]))


def parse(raw: bytes, headers: dict[str, str]) -> list[PurchaseReport]:
    topic = headers.get("x-wc-webhook-topic", "")
    if topic not in {"order.created", "order.updated"}:
        logs.info("webhook acknowledged, nothing to record", provider="woocommerce",
                  type=topic)
        return []
    order: Any = load_json(schema_for(OrderSchema), raw)
    if not is_paid(order):
        logs.info("webhook acknowledged, order not paid", provider="woocommerce", type=topic,
                  status=order["status"])
        return []
    email = ((order["billing"] or {}).get("email") or "").strip() or None
    paid_at = (_utc(order["date_paid_gmt"]) or _utc(order["date_completed_gmt"])
               or _utc(order["date_created_gmt"]))
    assert paid_at is not None  # date_created_gmt is required
    amount, code = money(order["total"], order["currency"], "total")
    reports = [PurchaseReport("woocommerce", "paid", str(order["id"]), amount, code, paid_at,
                              email, event_type=topic)]
    for refund in order["refunds"]:
        # refunds are listed as negative totals; the order total excludes nothing
        value, code = money(abs(Decimal(refund["total"])), order["currency"], "refunds.total")
        reports.append(PurchaseReport(
            "woocommerce", "refund", str(order["id"]), value, code,
            _utc(order["date_modified_gmt"]) or paid_at, email,
            refund_id=str(refund["id"]), event_type=topic))
    return reports


class WooCommerce(WebhookProvider):
    name, function, path = "woocommerce", "purchase_webhook", "/woocommerce"
    settings = ("woocommerce_secret",)

    def handshake(self, request: Inbound) -> Reply | None:
        if is_ping(request.raw, dict(request.headers)):
            return Reply(200, {"status": "ok", "message": "webhook registered"})
        return None

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(purchases=parse(request.raw, dict(request.headers)))


PROVIDER = WooCommerce()
