"""Applying events to a lead: their deltas of facts, their history entries, then the view.

The view at a moment is `view.py`'s (`materialise`, the decay job's `refreshed`), its parts
`breakdown.py`'s and fit `fit.py`'s; they are re-exported here for the callers that score.
"""

from __future__ import annotations

from datetime import datetime

from leadscore.domain import orders as order_records
from leadscore.domain.accumulators import pruned
from leadscore.domain.breakdown import Breakdown, breakdown
from leadscore.domain.effects import LeadDelta, effect_of
from leadscore.domain.events import Event
from leadscore.domain.fit import (
    fit_changes_between,
    fit_items,
    fit_matched,
    profile_fields,
)
from leadscore.domain.identity import ledger_key
from leadscore.domain.limits import admits
from leadscore.domain.own_time import at_own_time
from leadscore.domain.rules import Rules
from leadscore.domain.state import (
    EmailStatus,
    HistoryEntry,
    HistoryItem,
    LeadState,
    Order,
    working_copy,
)
from leadscore.domain.view import REVIEW_EVERY, ViewChange, materialise, refreshed

__all__ = ["REVIEW_EVERY", "Breakdown", "ViewChange", "apply_delta", "apply_events",
           "breakdown", "fit_items", "history_entry", "materialise", "new_lead",
           "profile_fields", "pruned", "refreshed"]

STATUS_PRIORITY: dict[EmailStatus, int] = {
    "active": 0, "unsubscribed": 1, "bounced": 2, "complained": 3,
}


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def _earlier(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def apply_delta(state: LeadState, delta: LeadDelta) -> LeadState:
    """Pure: the lead after one delta. Commutes with every other delta."""
    return _apply_delta_in_place(working_copy(state), delta)


def _apply_delta_in_place(s: LeadState, delta: LeadDelta) -> LeadState:
    """`apply_delta` on a lead this caller owns (one deep copy per lead, not per event)."""
    for key, amount in delta.acc.items():
        s.eng_acc[key] = s.eng_acc.get(key, 0.0) + amount
    for key, count in delta.caps.items():
        s.cap_counts[key] = s.cap_counts.get(key, 0) + count
    for key, weight in delta.cap_weights.items():
        s.cap_weights[key] = s.cap_weights.get(key, 0.0) + weight
    for key, count in delta.counters.items():
        s.counters[key] = s.counters.get(key, 0) + count
    for name, t in delta.latest.items():
        setattr(s, name, _later(getattr(s, name), t))
    for name, t in delta.earliest.items():
        setattr(s, name, _earlier(getattr(s, name), t))
    for name, value in delta.profile.items():
        if not admits(s.profile, name):  # bounded document (limits.py): no new field
            continue
        seen = s.profile_at.get(name)
        if seen is None or delta.at > seen or (delta.at == seen and
                                                str(value) > str(s.profile.get(name))):
            s.profile[name], s.profile_at[name] = value, delta.at
    if delta.email_status is not None:
        seen = s.email_status_at
        if seen is None or delta.at > seen or (
                delta.at == seen and
                STATUS_PRIORITY[delta.email_status] > STATUS_PRIORITY[s.email_status]):
            s.email_status, s.email_status_at = delta.email_status, delta.at
    return s  # an order change needs its record: `apply_events` applies it (domain.orders)


def new_lead(lead_id: str, email: str, now: datetime) -> LeadState:
    return LeadState(lead_id=lead_id, email=email, created_at=now)


def history_entry(event: Event, items: list[HistoryItem], rules: Rules,
                  now: datetime) -> HistoryEntry:
    delta = sum(i.points for i in items)
    return HistoryEntry(
        entry_id=ledger_key(event.source, event.idempotency_key),
        kind=event.type,
        at=event.occurred_at,
        recorded_at=now,
        delta=delta,
        reason="; ".join(f"{i.reason} ({i.points:+g})" for i in items),
        rules_version=rules.version,
        event_id=event.idempotency_key,
        source=event.source,
        items=items,
        event=event.model_dump(mode="json", exclude=_unset_new_fields(event)),
    )


def _unset_new_fields(event: Event) -> set[str]:
    """Fields added for behaviour rules, left out of the stored event when unset, so
    history stays as it was for events that do not carry them."""
    given = event.__dict__  # the event's fields (a missing attribute costs a slow lookup)
    out = {"campaign"} if given.get("campaign", 0) is None else set()
    if event.type in ("form_submitted", "activity") and given.get("url", 0) is None:
        out.add("url")
    return out


def apply_events(state: LeadState | None, lead_id: str, email: str, events: list[Event],
                 rules: Rules, now: datetime, orders: dict[str, Order] | None = None,
                 *, explain: bool = True) -> tuple[LeadState, list[HistoryEntry]]:
    """Pure: the lead after new (already de-duplicated) events, and their history entries.

    `orders` holds the records of the orders these events touch (read with the lead) and
    receives their new state, plus any orders a legacy lead kept in its document. With
    `explain=False` no history entries are made (a back-test rebuilds every lead only for
    its score: the explanations were a third of its cost); the lead is the same."""
    records = orders if orders is not None else {}
    # one copy per lead, then the deltas apply in place (a copy per event was the hot spot)
    lead = working_copy(order_records.migrated(state, records, rules)) if state \
        else new_lead(lead_id, email, now)
    entries = []
    for event in events:
        delta, items = effect_of(event, rules)
        explained = explain and bool(delta.profile)
        before = fit_matched(lead, rules) if explained else None
        lead = _apply_delta_in_place(lead, delta)
        if delta.order is not None:
            key = delta.order.key
            old = records[key].model_copy(deep=True) if key in records else None
            lead = order_records.apply_order(lead, records, delta.order, delta.at, rules)
            items = at_own_time(old, records.get(key), delta, items, rules)
        if before is not None:
            items = items + fit_changes_between(before, fit_matched(lead, rules))
        if explain:
            entries.append(history_entry(event, items, rules, now))
    lead.updated_at = now
    return materialise(lead, rules, now), entries
