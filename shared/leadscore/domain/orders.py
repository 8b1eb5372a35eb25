"""Orders as records of their own, and the bounded aggregates a lead keeps of them.

A lead used to hold every order in its document; a buyer with thousands of orders would
outgrow Firestore's 1 MiB limit (issue 21). Now each order is a record beside the lead and
the lead keeps, per currency, how many orders count and their paid, refunded and net totals,
plus accumulators of purchase points (house rule 8, in the epoch buckets of `decay.py`, of
one half-life each (`accrue(short=True)`): each counting order adds its points times its
net share to the bucket of its payment time, so the purchase score at any `now` is the
buckets' value at `now`). An order change takes back
exactly what the order's previous state added (kept on the record as `weight`) and adds its
new state, so the aggregates are exact whatever the order of events, as long as the write
reads the touched order records in the same transaction (the unit of work does).

Pure functions; the caller passes the touched order records in a dict it then writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from leadscore.domain import decay
from leadscore.domain.effects import OrderChange
from leadscore.domain.events import PurchaseRefunded
from leadscore.domain.purchase_rules import day_of
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState, Order, PurchaseTotals


def _earlier(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


# A refund reported before any paid report of its order, in another currency than the
# refunds before it: kept under "<currency><FOREIGN><refund id>" until the order's currency
# is known (such an order does not count yet, so these amounts weigh nothing meanwhile).
FOREIGN = "\x1f"


def _settle(order: Order, currency: str) -> None:
    """The first paid report: keep only the refunds in the order's currency, by refund id."""
    kept: dict[str, int] = {}
    for key, amount in order.refunds.items():
        code, sep, refund_id = key.partition(FOREIGN)
        if sep and code == currency:
            kept[refund_id] = max(kept.get(refund_id, 0), amount)
        elif not sep and order.currency == currency:
            kept[key] = max(kept.get(key, 0), amount)
    order.refunds = kept


def changed(order: Order, change: OrderChange, at: datetime) -> Order:
    """The order after one report; commutes with every other report of it.

    A refund counts only in its order's currency: one in another currency (4990 JPY against
    a 49.90 EUR order) changes nothing, whichever arrives first."""
    known = order.reported_at is not None or order.amount_minor is not None  # paid before
    paid_in = order.currency if known else None
    if not change.paid and paid_in is not None and change.currency != paid_in:
        return order  # the service acknowledges such a refund as invalid before it gets here
    order = order.model_copy(deep=True)
    if change.paid:
        if not known and order.refunds:
            _settle(order, change.currency)
        newer = order.reported_at is None or at > order.reported_at or (
            at == order.reported_at and change.amount_minor > (order.amount_minor or 0))
        # the latest report of the order's amount wins: the ledger keeps one paid report per
        # platform order (`order:{id}:paid`), so edits never get here; the rule keeps a
        # replay or a rebuild the same in any order
        if newer:
            order.amount_minor, order.currency = change.amount_minor, change.currency
            order.reported_at = at
        order.paid_at = _earlier(order.paid_at, at)
    else:
        assert change.refund_id is not None
        refund_id = change.refund_id
        if order.currency is not None and change.currency != order.currency:
            refund_id = f"{change.currency}{FOREIGN}{refund_id}"  # order not paid yet
        # a refund id's amount only grows (Stripe reports a charge's cumulative refund)
        order.refunds[refund_id] = max(order.refunds.get(refund_id, 0), change.amount_minor)
        order.currency = order.currency or change.currency
    return order


def changes_nothing(orders: Mapping[str, Order], event: PurchaseRefunded) -> bool:
    """True when the refund's order already holds it at this amount or more, or was paid in
    another currency: applying it would change nothing, so it is a duplicate (a redelivery
    of a refund recorded before refunds were keyed by their order, under its old key)."""
    order = orders.get(f"{event.source}:{event.order_id}")
    if order is None:
        return False
    paid = order.reported_at is not None or order.amount_minor is not None
    if paid and order.currency != event.currency:
        return True
    key = event.refund_id
    if order.currency is not None and order.currency != event.currency:
        key = f"{event.currency}{FOREIGN}{key}"
    return order.refunds.get(key, -1) >= event.amount_minor


def order_points(order: Order, rules: Rules) -> float:
    """An order's points in full (per purchase and value bands in its currency)."""
    return rules.purchase.order_points(order.amount_minor or 0, order.currency)


def weighed(order: Order, rules: Rules) -> Order:
    """The order with the purchase points it adds to the lead's accumulator."""
    if not order.counts or order.amount_minor is None or order.paid_at is None:
        return order.model_copy(update={"weight": 0.0, "weight_key": ""})
    share = order.net_minor / order.amount_minor
    key, amount = decay.accrue(order_points(order, rules) * share,
                               rules.purchase_half_life(), order.paid_at, short=True)
    return order.model_copy(update={"weight": amount, "weight_key": key})


def _count(lead: LeadState, order: Order, sign: int) -> None:
    """Add (sign 1) or take back (sign -1) what one order contributes to the aggregates."""
    if not order.counts or order.currency is None:
        return
    totals = lead.purchase_totals.get(order.currency, PurchaseTotals()).model_copy()
    totals.count += sign
    totals.paid_minor += sign * (order.amount_minor or 0)
    totals.refunded_minor += sign * order.refunded_minor
    totals.net_minor += sign * order.net_minor
    if totals == PurchaseTotals():
        lead.purchase_totals.pop(order.currency, None)
    else:
        lead.purchase_totals[order.currency] = totals
    if order.weight_key:
        left = lead.purchase_acc.get(order.weight_key, 0.0) + sign * order.weight
        # what is left of a bucket its orders were all taken out of is float residue (its
        # weights are within a factor 2, so about 1e-14): drop it, so the bucket is there in
        # every order of events or in none. Below PRUNE_BELOW at its start a bucket is
        # worth less than that ever after, and a refresh would prune it anyway.
        if abs(left) < decay.PRUNE_BELOW:
            lead.purchase_acc.pop(order.weight_key, None)
        else:
            lead.purchase_acc[order.weight_key] = left
    if order.paid_at is not None:
        day = day_of(order.paid_at)
        left = lead.purchase_days.get(day, 0) + sign
        if left:
            lead.purchase_days[day] = left
        else:
            lead.purchase_days.pop(day, None)


def pruned(lead: LeadState, now: datetime) -> LeadState:
    """The lead without purchase buckets worth less than decay.PRUNE_BELOW points at `now`
    (the float residue of an order added then taken back, or orders faded to nothing), so
    the same events give the same buckets in any order."""
    keep = {k: a for k, a in lead.purchase_acc.items()
            if abs(decay.value_at(k, a, now)) >= decay.PRUNE_BELOW}
    if len(keep) == len(lead.purchase_acc):
        return lead
    return lead.model_copy(update={"purchase_acc": keep})


def migrated(lead: LeadState, orders: dict[str, Order], rules: Rules) -> LeadState:
    """A lead whose orders still live in its document, with them moved into `orders`."""
    if not lead.orders:
        return lead
    s = lead.model_copy(deep=True)
    for key, legacy in lead.orders.items():
        if key not in orders:
            orders[key] = weighed(legacy, rules)
            _count(s, orders[key], 1)
    s.orders = {}
    return s


def apply_order(lead: LeadState, orders: dict[str, Order], change: OrderChange, at: datetime,
                rules: Rules) -> LeadState:
    """Pure: the lead after one order report; `orders` (the touched records) is updated."""
    s = migrated(lead, orders, rules)
    if s is lead:
        s = lead.model_copy(deep=True)
    before = orders.get(change.key)
    after = weighed(changed(before or Order(), change, at), rules)
    if before is not None:
        _count(s, before, -1)
    _count(s, after, 1)
    orders[change.key] = after
    return s


def purchase_points(lead: LeadState, rules: Rules, now: datetime) -> float:
    """The lead's purchase points at `now`: its accumulator faded, plus any legacy orders
    still in its document (scored as before)."""
    points = sum(decay.value_at(k, a, now) for k, a in lead.purchase_acc.items())
    hl = rules.purchase_half_life()
    for order in lead.orders.values():
        if order.counts and order.amount_minor is not None and order.paid_at is not None:
            share = order.net_minor / order.amount_minor
            points += decay.faded(order_points(order, rules) * share,
                                  order.paid_at, now, hl)
    return points


def is_customer(lead: LeadState) -> bool:
    """Any order paid and not fully refunded."""
    return any(t.count > 0 for t in lead.purchase_totals.values()) or any(
        o.counts for o in lead.orders.values())


def totals(lead: LeadState) -> dict[str, PurchaseTotals]:
    """Per-currency totals, legacy orders in the document included."""
    out = {c: t.model_copy() for c, t in lead.purchase_totals.items()}
    for order in lead.orders.values():
        if order.counts and order.currency:
            t = out.setdefault(order.currency, PurchaseTotals())
            t.count += 1
            t.paid_minor += order.amount_minor or 0
            t.refunded_minor += order.refunded_minor
            t.net_minor += order.net_minor
    return out


def last_paid_day(lead: LeadState) -> date | None:
    """The UTC day of the latest order that counts (legacy orders in the document too)."""
    days = [d for d, n in lead.purchase_days.items() if n > 0]
    days += [day_of(o.paid_at) for o in lead.orders.values() if o.counts and o.paid_at]
    return date.fromisoformat(max(days)) if days else None


def band_points(lead: LeadState, rules: Rules, now: datetime) -> dict[str, float]:
    """The purchase bands (`purchase.bands`) the lead is in at `now`, by id."""
    if not rules.purchase.bands:
        return {}
    # only legacy orders in the document add to the stored totals (read, never changed)
    return rules.purchase.band_points(totals(lead) if lead.orders else lead.purchase_totals,
                                      last_paid_day(lead), now)


def drops_keys(before: LeadState | None, after: LeadState) -> bool:
    """True when an order change removed keys from the lead's purchase maps (a currency or
    a day with no order left that counts, a bucket emptied): a merge-write (Firestore's
    `set(merge=True)`) keeps map keys it is not given, so such a lead must be written
    whole, or a refunded currency would still count."""
    if before is None:
        return False
    return any(not getattr(before, name).keys() <= getattr(after, name).keys()
               for name in ("purchase_totals", "purchase_days", "purchase_acc"))
