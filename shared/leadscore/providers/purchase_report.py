"""What a shop or payment platform told us about an order, before we know the lead.

Platforms do not always name the buyer on a refund (Shopify's refund webhook carries only
the order id), so a report may lack the email; the purchases use case finds the lead from
the order. Reports become canonical PurchaseMade / PurchaseRefunded events.

One payment may be named by several ids (Stripe: invoice, payment intent, charge). A report
carries the id the platform module chose as the order's key (`order_id`), the other ids it
names (`aliases`: other id -> the id it stands for, recorded in the store's alias index),
and `lookups`: ids to resolve through that index first (a refund naming only a payment
intent finds the invoice that payment paid). A `link` report carries aliases and nothing
else (Stripe's `invoice_payment.paid`, `charge.succeeded`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from leadscore.domain.money import MoneyError, currency_code, to_minor
from leadscore.errors import ValidationFailed

MAX_KEY = 256  # an event's idempotency key (domain/events.py)


@dataclass(frozen=True)
class PurchaseReport:
    platform: str
    kind: Literal["paid", "refund", "link"]
    order_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    email: str | None
    refund_id: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # other id -> the id it stands for
    lookups: tuple[str, ...] = ()  # ids to resolve through the alias index before order_id
    buyer_ref: str | None = None  # the platform's customer id, to find a nameless buyer
    must_match: bool = False  # a refund whose order is unknown: retry later (503), not drop
    event_type: str = ""  # for log lines

    @property
    def order_key(self) -> str:
        return f"{self.platform}:{self.order_id}"

    def key(self, platform_id: str) -> str:
        return f"{self.platform}:{platform_id}"

    def with_order(self, order_id: str, email: str | None) -> PurchaseReport:
        """The same report placed on a resolved order and buyer."""
        from dataclasses import replace

        return replace(self, order_id=order_id, email=email)

    @property
    def idempotency_key(self) -> str:
        """One ledger entry per order paid, and per refund state of an order (amounts only
        grow). A refund id is the platform's, not unique across orders (a shop's "R-1" on
        every order): the order is part of the key. Keys written before it was (`refund:
        {refund_id}:{amount}`) stay in the ledger; a redelivery of such a refund misses its
        new key, but its order holds that refund at that amount already, so the write
        takes it for a duplicate (`domain/orders.changes_nothing`)."""
        if self.kind == "paid":
            return f"order:{self.order_id}:paid"
        key = f"refund:{self.order_id}:{self.refund_id}:{self.amount_minor}"
        if len(key) > MAX_KEY:  # ids of 128 characters each: the event's key holds 256
            key = "refund:#" + hashlib.sha256(key.encode()).hexdigest()
        return key


def money(amount: object, currency: object, where: str) -> tuple[int, str]:
    """Decimal amount and currency from a payload, or a 422 naming the field."""
    try:
        code = currency_code(currency)
        return to_minor(amount, code), code
    except MoneyError as exc:
        raise ValidationFailed(f"{where}: {exc}",
                               details=[{"field": where, "problem": str(exc)}]) from None


def minor_units(amount: object, currency: object, where: str) -> tuple[int, str]:
    """An integer amount already in minor units (Stripe), or a 422."""
    try:
        code = currency_code(currency)
    except MoneyError as exc:
        raise ValidationFailed(f"{where}: {exc}",
                               details=[{"field": where, "problem": str(exc)}]) from None
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValidationFailed(f"{where}: amount is not a whole number of minor units",
                               details=[{"field": where, "problem": "not a non-negative integer"}])
    return amount, code
