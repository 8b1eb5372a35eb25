"""The points a history entry shows: what its event was worth when it was applied.

Most events are worth their rule's points. A refund needs the lead: it takes back the
refunded share of its order's points (faded to the refund's time), so it shows that
negative amount, not 0. A capped event shows its rule's points and says the cap may scale
it: its share depends on how many events of its window are known, which changes with
arrival order, and history entries must not (the same events give the same history in any
order). `lead show` says what every rule, capped ones included, is worth now
(`explain.py`), scaled by the window's count.
"""

from __future__ import annotations

from datetime import datetime

from leadscore.domain import decay
from leadscore.domain.effects import LeadDelta
from leadscore.domain.rules import Rules
from leadscore.domain.state import HistoryItem, Order


def order_points(order: Order | None, rules: Rules, at: datetime) -> float:
    """An order's points at `at`: its rules' points times its unrefunded share, faded."""
    if order is None or not order.counts or order.amount_minor is None or order.paid_at is None:
        return 0.0
    points = rules.purchase.order_points(order.amount_minor, order.currency)
    return decay.faded(points * order.net_minor / order.amount_minor, order.paid_at, at,
                       rules.purchase_half_life())


def at_own_time(before: Order | None, after: Order | None, delta: LeadDelta,
                items: list[HistoryItem], rules: Rules) -> list[HistoryItem]:
    """`items` with the points the event was worth on the lead it was applied to: for a
    refund, its order's record before and after it (orders live in their own records)."""
    if delta.order is not None and not delta.order.paid:
        at = delta.at
        taken = order_points(after, rules, at) - order_points(before, rules, at)
        items = [i.model_copy(update={"points": round(taken, 4)}) for i in items]
    return items
