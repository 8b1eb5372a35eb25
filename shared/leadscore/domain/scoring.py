"""Applying deltas to a lead and materialising its score, stage and grade at a moment."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from leadscore.domain import orders as order_records
from leadscore.domain.accumulators import capped_value, engagement_by_half_life, pruned
from leadscore.domain.effects import LeadDelta, effect_of
from leadscore.domain.events import Event, ProfileValue
from leadscore.domain.identity import ledger_key
from leadscore.domain.limits import admits
from leadscore.domain.rules import Rules
from leadscore.domain.state import EmailStatus, HistoryEntry, HistoryItem, LeadState, Order

REVIEW_EVERY = timedelta(days=1)
STATUS_PRIORITY: dict[EmailStatus, int] = {
    "active": 0, "unsubscribed": 1, "bounced": 2, "complained": 3,
}


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def _earlier(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def apply_delta(state: LeadState, delta: LeadDelta) -> LeadState:
    """Pure: the lead after one delta. Commutes with every other delta."""
    return _apply_delta_in_place(state.model_copy(deep=True), delta)


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


def profile_fields(state: LeadState) -> dict[str, ProfileValue]:
    """The fields fit rules read: the profile plus the address's domain."""
    fields: dict[str, ProfileValue] = dict(state.profile)
    fields["email_domain"] = state.email.rsplit("@", 1)[-1]
    return fields


def fit_items(state: LeadState, rules: Rules) -> list[HistoryItem]:
    fields = profile_fields(state)
    return [HistoryItem(rule=f"fit.{r.id}", points=r.points, reason=r.explain(fields))
            for r, test in rules.fit_tests() if test(fields)]


def fit_changes(before: dict[str, HistoryItem],
                after: dict[str, HistoryItem]) -> list[HistoryItem]:
    """Fit rules a profile change started or stopped matching, as explained points."""
    started = [HistoryItem(rule=k, points=i.points, reason=f"fit: {i.reason}")
               for k, i in after.items() if k not in before]
    stopped = [HistoryItem(rule=k, points=-i.points, reason=f"fit no longer: {i.reason}")
               for k, i in before.items() if k not in after]
    return started + stopped


class Breakdown(BaseModel):
    fit: float
    engagement_by_half_life: dict[str, float]
    capped: float
    purchases: float

    @property
    def engagement(self) -> float:
        return sum(self.engagement_by_half_life.values()) + self.capped + self.purchases


def breakdown(state: LeadState, rules: Rules, now: datetime) -> Breakdown:
    acc = engagement_by_half_life(state, now)
    capped = capped_value(state, now)
    purchase = order_records.purchase_points(state, rules, now)
    fit = sum(i.points for i in fit_items(state, rules))
    return Breakdown(fit=fit, engagement_by_half_life=acc, capped=capped, purchases=purchase)


def _band(value: float, bands: dict[str, float], worst: str) -> str:
    for label, floor in sorted(bands.items(), key=lambda kv: -kv[1]):
        if value >= floor:
            return label
    return worst


def non_opener_since(state: LeadState, after_days: float) -> datetime | None:
    """When the lead became (or will become) a non-opener: `after_days` after its first
    email or its last human open, whichever is later; None if it was never sent mail."""
    if state.first_sent_at is None:
        return None
    start = state.first_sent_at
    if state.last_open_at is not None and state.last_open_at > start:
        start = state.last_open_at
    return start + timedelta(days=after_days)


def materialise(state: LeadState, rules: Rules, now: datetime) -> LeadState:
    """Pure: the lead with its view fields computed exactly at `now`."""
    parts = breakdown(state, rules, now)
    s = state.model_copy()
    s.fit_score = round(parts.fit, 4)
    s.engagement_score = round(parts.engagement, 4)
    s.score = round(parts.fit + parts.engagement, 4)
    # bands read the rounded values shown, so 10 points of engagement is never 9.999999
    s.grade = _band(s.fit_score, rules.grades.fit, "D") + _band(
        s.engagement_score, rules.grades.engagement, "4")
    if order_records.is_customer(state):
        s.stage = "customer"
    elif rules.stages.gate("sql").admits(s.score, s.grade) and rules.stages.gate(
            "mql").admits(s.score, s.grade):  # an SQL meets the MQL's requirements too
        s.stage = "sql"
    elif rules.stages.gate("mql").admits(s.score, s.grade):
        s.stage = "mql"
    else:
        s.stage = "lead"
    since = non_opener_since(state, rules.non_opener_after_days)
    s.non_opener = since is not None and since <= now
    s.non_opener_since = since if s.non_opener else None
    s.rules_version = rules.version
    s.scored_at = now
    reviews = []
    if abs(parts.engagement) >= 0.5:
        reviews.append(now + REVIEW_EVERY)
    if since is not None and since > now:
        reviews.append(since)
    s.next_review_at = min(reviews) if reviews else None
    return s


class ViewChange(BaseModel):
    """What re-materialising one lead at `now` changed (the decay job's unit of work)."""

    lead_id: str
    score_before: float
    score_after: float
    stage_before: str
    stage_after: str
    non_opener_before: bool
    non_opener_after: bool


def refreshed(lead: LeadState, rules: Rules,
              now: datetime) -> tuple[LeadState, ViewChange, HistoryEntry] | None:
    """The lead re-materialised at `now` with its history entry, or None if nothing changed."""
    fresh = materialise(pruned(lead, now), rules, now)
    if fresh.view() == lead.view():
        return None
    change = ViewChange(lead_id=lead.lead_id, score_before=lead.score, score_after=fresh.score,
                        stage_before=lead.stage, stage_after=fresh.stage,
                        non_opener_before=lead.non_opener, non_opener_after=fresh.non_opener)
    faded = round(fresh.score - lead.score, 4)
    notes = [f"engagement faded by {-faded:g} since {lead.scored_at or 'creation'}"
             if faded < 0 else f"score {faded:+g} since {lead.scored_at or 'creation'}"]
    if fresh.stage != lead.stage:
        notes.append(f"stage {lead.stage} -> {fresh.stage}")
    if fresh.non_opener != lead.non_opener:
        notes.append("flagged non-opener" if fresh.non_opener else "non-opener flag cleared")
    if fresh.rules_version != lead.rules_version:
        notes.append(f"rules {lead.rules_version or '-'} -> {fresh.rules_version}")
    entry = HistoryEntry(entry_id=f"decay-{now.isoformat()}", kind="decay", at=now,
                         recorded_at=now, delta=faded, reason="; ".join(notes),
                         rules_version=rules.version,
                         items=[HistoryItem(rule="decay", points=faded, reason=notes[0])])
    return fresh, change, entry


def rebuilt(lead: LeadState, history: list[HistoryEntry], rules: Rules,
            now: datetime, orders: dict[str, Order] | None = None,
            ) -> tuple[LeadState, ViewChange, HistoryEntry] | None:
    """The lead recomputed from its stored events under `rules`, or None if unchanged.

    Every fact comes from an event, and every event is kept in the history, so replaying
    them under new rules is exact. `orders` receives every order record, rebuilt too."""
    from leadscore.domain.events import EVENT_ADAPTER

    events = [EVENT_ADAPTER.validate_python(e.event) for e in history if e.event]
    fresh, _ = apply_events(None, lead.lead_id, lead.email, events, rules, now, orders)
    fresh.created_at = lead.created_at
    fresh.rescored_for = rules.version
    if fresh.model_dump(exclude={"updated_at", "scored_at"}) == lead.model_dump(
            exclude={"updated_at", "scored_at"}):
        return None
    change = ViewChange(lead_id=lead.lead_id, score_before=lead.score, score_after=fresh.score,
                        stage_before=lead.stage, stage_after=fresh.stage,
                        non_opener_before=lead.non_opener, non_opener_after=fresh.non_opener)
    delta = round(fresh.score - lead.score, 4)
    reason = f"rescored under rules {rules.version} (was {lead.rules_version or '-'})"
    if fresh.stage != lead.stage:
        reason += f"; stage {lead.stage} -> {fresh.stage}"
    entry = HistoryEntry(entry_id=f"rescore-{rules.version}-{now.isoformat()}", kind="rescore",
                         at=now, recorded_at=now, delta=delta, reason=reason,
                         rules_version=rules.version,
                         items=[HistoryItem(rule="rescore", points=delta, reason=reason)])
    return fresh, change, entry


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
        event=event.model_dump(mode="json"),
    )


def apply_events(state: LeadState | None, lead_id: str, email: str, events: list[Event],
                 rules: Rules, now: datetime, orders: dict[str, Order] | None = None,
                 ) -> tuple[LeadState, list[HistoryEntry]]:
    """Pure: the lead after new (already de-duplicated) events, and their history entries.

    `orders` holds the records of the orders these events touch (read with the lead) and
    receives their new state, plus any orders a legacy lead kept in its document."""
    records = orders if orders is not None else {}
    # one copy per lead, then the deltas apply in place (a copy per event was the hot spot)
    lead = order_records.migrated(state, records, rules).model_copy(deep=True) if state \
        else new_lead(lead_id, email, now)
    entries = []
    for event in events:
        delta, items = effect_of(event, rules)
        before = {i.rule: i for i in fit_items(lead, rules)} if delta.profile else {}
        lead = _apply_delta_in_place(lead, delta)
        if delta.order is not None:
            lead = order_records.apply_order(lead, records, delta.order, delta.at, rules)
        if delta.profile:
            items = items + fit_changes(before, {i.rule: i for i in fit_items(lead, rules)})
        entries.append(history_entry(event, items, rules, now))
    lead = order_records.pruned(lead, now)
    lead.updated_at = now
    return materialise(lead, rules, now), entries
