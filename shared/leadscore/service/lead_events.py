"""Every lead with its stored canonical events, a page of leads at a time (back-tests and
suggested weights read every lead's whole history), and when each lead won.

A store with the `EventScan` capability (SQLite) hands a page of leads and their events
over in two queries, as the JSON its history keeps; each lead's events are then validated
in one call. Other stores are read through `iter_leads` and `history`. Either way only one
page is held at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import TypeAdapter

from leadscore.domain.events import (
    EVENT_ADAPTER,
    Event,
    OutcomeRecorded,
    PurchaseMade,
    PurchaseRefunded,
)
from leadscore.store.port import EventScan, LeadStore

PAGE = 200
_EVENT_LIST: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


@dataclass(frozen=True)
class LeadEvents:
    lead_id: str
    email: str
    events: list[Event]  # every stored canonical event, in history order


def lead_pages(store: LeadStore, page: int = PAGE) -> Iterator[list[LeadEvents]]:
    """Every lead with its stored events, `page` leads at a time, in lead id order."""
    after: str | None = None
    if isinstance(store, EventScan):
        while scanned := store.scan_events(after_id=after, limit=page):
            after = scanned[-1].lead_id
            yield [LeadEvents(s.lead_id, s.email,
                              _EVENT_LIST.validate_json("[" + ",".join(s.events) + "]"))
                   for s in scanned]
        return
    while leads := store.iter_leads(after_id=after, limit=page):
        after = leads[-1].lead_id
        yield [LeadEvents(lead.lead_id, lead.email,
                          [EVENT_ADAPTER.validate_python(e.event)
                           for e in store.history(lead.lead_id) if e.event])
               for lead in leads]


@dataclass
class _Order:
    amount_minor: int = 0
    paid_at: datetime | None = None
    refunds: dict[str, int] = field(default_factory=dict)


def conversion_times(events: Sequence[Event], purchases_are_wins: bool) -> list[datetime]:
    """When the lead won: each `deal_won` outcome and, if asked, the first paid report of
    each order that is not fully refunded by now (refunds known today count)."""
    wins = []
    orders: dict[str, _Order] = {}
    for event in events:
        if isinstance(event, OutcomeRecorded):
            if event.outcome == "deal_won":
                wins.append(event.occurred_at)
        elif purchases_are_wins and isinstance(event, PurchaseMade | PurchaseRefunded):
            order = orders.setdefault(f"{event.source}:{event.order_id}", _Order())
            if isinstance(event, PurchaseMade):
                order.amount_minor = max(order.amount_minor, event.amount_minor)
                if order.paid_at is None or event.occurred_at < order.paid_at:
                    order.paid_at = event.occurred_at
            else:  # a refund id's amount only grows
                order.refunds[event.refund_id] = max(order.refunds.get(event.refund_id, 0),
                                                     event.amount_minor)
    wins += [o.paid_at for o in orders.values()
             if o.paid_at is not None and o.amount_minor - sum(o.refunds.values()) > 0]
    return wins
