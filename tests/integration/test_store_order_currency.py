"""A refund counts only in its order's currency, on every adapter (memory, SQLite,
Firestore); `order_record` reads one order of a lead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import event
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.writes import apply_events

ANA = "ana@example.com"
ANA_ID = lead_id_for(ANA)


def paid(key: str, order: str, amount: int, at: Any, currency: str) -> Any:
    return event("purchase_made", ANA, key, at, source="shop", order_id=order,
                 amount_minor=amount, currency=currency)


def refund(key: str, order: str, refund_id: str, amount: int, at: Any, currency: str) -> Any:
    return event("purchase_refunded", ANA, key, at, source="shop", order_id=order,
                 refund_id=refund_id, amount_minor=amount, currency=currency)


def test_a_refund_in_another_currency_changes_nothing_in_either_order_of_arrival(
        store: Any, rules: Rules) -> None:
    p = paid("p", "B-1", 4990, NOW - timedelta(days=1), "EUR")
    jpy = refund("r-jpy", "B-1", "R-9", 4990, NOW - timedelta(hours=2), "JPY")
    eur = refund("r-eur", "B-1", "R-1", 990, NOW - timedelta(hours=1), "EUR")
    for i, sequence in enumerate([[p, jpy, eur], [jpy, eur, p], [eur, jpy, p]]):
        lead_id = lead_id_for(f"ana+{i}@example.com")
        # GIVEN a 49.90 EUR order, a 4990 JPY "refund" of it and a 9.90 EUR refund
        # WHEN they arrive in this order (before: the JPY refund refunded the order in full)
        for e in sequence:
            moved = e.model_copy(update={"email": f"ana+{i}@example.com"})
            apply_events(store, lead_id, moved.email, [moved], rules, NOW)
        # THEN only the EUR refund counts
        order = store.order_record(lead_id, "shop:B-1")
        assert order is not None, sequence
        assert (order.amount_minor, order.currency, order.refunds) == (
            4990, "EUR", {"R-1": 990}), i
        lead = store.get_lead(lead_id)
        assert lead.purchase_totals["EUR"].net_minor == 4000, i
    assert store.order_record(ANA_ID, "shop:B-1") is None  # another lead's order
