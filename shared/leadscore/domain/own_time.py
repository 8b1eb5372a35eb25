"""The points a history entry shows: what its event was worth when it was applied.

Most events are worth their rule's points. Two need the lead: a capped event over its cap
counts for its share of the window (the sixth open of a 5-per-week cap shows 5/6 of a
point, not 1), and a refund takes back the refunded share of its order's points (faded to
the refund's time), so it shows that negative amount, not 0. Only the transactional path
reads the lead; an entry written blind (Firestore, no read) shows the rule's points and
says the cap may scale it. `lead show` says what every rule is worth now (`explain.py`).
"""

from __future__ import annotations

from datetime import datetime

from leadscore.domain import decay
from leadscore.domain.accumulators import cap_scale
from leadscore.domain.effects import LeadDelta
from leadscore.domain.rules import Rules
from leadscore.domain.state import HistoryItem, LeadState, Order


def order_points(order: Order | None, rules: Rules, at: datetime) -> float:
    """An order's points at `at`: its rules' points times its unrefunded share, faded."""
    if order is None or not order.counts or order.amount_minor is None or order.paid_at is None:
        return 0.0
    points = rules.purchase.per_purchase + sum(
        b.points for b in rules.purchase.value_bands if order.amount_minor >= b.min_minor)
    return decay.faded(points * order.net_minor / order.amount_minor, order.paid_at, at,
                       rules.purchase_half_life())


def at_own_time(before: LeadState, after: LeadState, delta: LeadDelta,
                items: list[HistoryItem], rules: Rules) -> list[HistoryItem]:
    """`items` with the points the event was worth on the lead it was applied to."""
    if delta.caps:
        count_key = next(iter(delta.caps))
        max_events = int(count_key.split("|", 1)[0])
        scale = cap_scale(after, count_key, max_events)
        if scale < 1:
            count = after.cap_counts.get(count_key, 0)
            capped_rule = count_key.split("|", 4)[4]
            items = [i.model_copy(update={
                "points": i.points * scale,
                "reason": f"{i.reason}; {count} in its window, so each counts "
                          f"{max_events}/{count} of its points"})
                     if i.rule == capped_rule else i for i in items]
    if delta.order is not None and not delta.order.paid:
        key, at = delta.order.key, delta.at
        taken = order_points(after.orders.get(key), rules, at) - order_points(
            before.orders.get(key), rules, at)
        items = [i.model_copy(update={"points": round(taken, 4)}) for i in items]
    return items
