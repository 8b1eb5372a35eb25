"""What a shop or payment platform told us about an order, before we know the lead.

Platforms do not always name the buyer on a refund (Shopify's refund webhook carries only
the order id), so a report may lack the email; the purchases use case finds the lead from
the order. Reports become canonical PurchaseMade / PurchaseRefunded events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from leadscore.domain.money import MoneyError, currency_code, to_minor
from leadscore.errors import ValidationFailed


@dataclass(frozen=True)
class PurchaseReport:
    platform: str
    kind: Literal["paid", "refund"]
    order_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    email: str | None
    refund_id: str | None = None

    @property
    def order_key(self) -> str:
        return f"{self.platform}:{self.order_id}"

    @property
    def idempotency_key(self) -> str:
        """One ledger entry per order paid, and per refund state (amounts only grow)."""
        if self.kind == "paid":
            return f"order:{self.order_id}:paid"
        return f"refund:{self.refund_id}:{self.amount_minor}"


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
        raise ValidationFailed(f"{where}: amount {amount!r} is not a whole number of minor units",
                               details=[{"field": where, "problem": "not a non-negative integer"}])
    return amount, code
