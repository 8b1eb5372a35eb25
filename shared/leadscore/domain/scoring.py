"""Applying deltas to a lead and materialising its score, stage and grade at a moment."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from leadscore.domain import movement as moved
from leadscore.domain import orders as order_records
from leadscore.domain.accumulators import (
    capped_by_half_life,
    engagement_by_category,
    engagement_by_half_life,
    pruned,
)
from leadscore.domain.behaviour import awards
from leadscore.domain.effects import LeadDelta, effect_of
from leadscore.domain.events import Event, ProfileValue
from leadscore.domain.identity import ledger_key
from leadscore.domain.limits import admits
from leadscore.domain.own_time import at_own_time
from leadscore.domain.review import next_review
from leadscore.domain.rules import Rules
from leadscore.domain.stages import stage_at, stay_ends
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
    # every fading part summed per half-life in days: what `review` projects forward
    terms: dict[float, float] = {}
    behaviour: dict[str, float] = {}  # frequency rules' awards now, by rule id
    limited: dict[str, float] = {}  # what category limits take off now (<= 0), by category

    @property
    def engagement(self) -> float:
        return sum(self.engagement_by_half_life.values()) + self.capped + self.purchases + sum(
            self.behaviour.values()) + sum(self.limited.values())


def breakdown(state: LeadState, rules: Rules, now: datetime) -> Breakdown:
    acc = engagement_by_half_life(state, now)
    terms = capped_by_half_life(state, now)
    capped = sum(terms.values())
    for label_, value in acc.items():
        terms[float(label_[1:])] = terms.get(float(label_[1:]), 0.0) + value
    hl_p = rules.purchase_half_life()
    purchase = order_records.purchase_points(state, rules, now)
    if purchase:
        terms[hl_p] = terms.get(hl_p, 0.0) + purchase
    behaviour: dict[str, float] = {}
    if rules.behaviour:
        for rule_id, won in awards(state.counters, rules.behaviour_by_id(), now).items():
            behaviour[rule_id] = sum(points for points, _ in won)
            for points, half_life in won:
                terms[half_life] = terms.get(half_life, 0.0) + points
    fit = sum(i.points for i in fit_items(state, rules))
    limited = _over_limits(state, rules, now) if rules.limits else {}
    return Breakdown(fit=fit, engagement_by_half_life=acc, capped=capped, purchases=purchase,
                     terms=terms, behaviour=behaviour, limited=limited)


def _over_limits(state: LeadState, rules: Rules, now: datetime) -> dict[str, float]:
    """Per limited category, the (negative) points over its limit at `now`."""
    by_category = engagement_by_category(state, now)
    by_id = rules.behaviour_by_id()
    for rule_id, won in awards(state.counters, by_id, now).items():
        rule = by_id[rule_id]
        category = rules.category_for(rule.events[0], rule) or ""
        by_category[category] = by_category.get(category, 0.0) + sum(p for p, _ in won)
    return {c: limit - by_category[c] for c, limit in rules.limits.items()
            if by_category.get(c, 0.0) > limit}


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
    stored = state.stage if state.scored_at is not None else "lead"
    s.stage = stage_at(rules, s.score, s.fit_score, s.engagement_score,
                       customer=order_records.is_customer(state),
                       stored=stored, since=state.stage_since, now=now)
    if s.stage != stored or s.stage_since is None:
        s.stage_since = now
    since = non_opener_since(state, rules.non_opener_after_days)
    s.non_opener = since is not None and since <= now
    s.non_opener_since = since if s.non_opener else None
    s.rules_version = rules.version
    s.rules_hash = rules.content_hash
    s.score_marks = moved.marked(state.score_marks, s.score, now,
                                 stored=(state.scored_at, state.score))
    s.movement = moved.movement(s.score_marks, s.score, now)
    s.scored_at = now
    # daily while the score still moves visibly; and whenever the stage, grade or flag can
    # change by itself (a crossing, the non-opener date, the end of a minimum stay)
    s.next_review_at = next_review(
        [(v, h) for h, v in parts.terms.items()], rules,
        s.fit_score, now, [since, stay_ends(rules, s.stage, s.stage_since),
                           now + REVIEW_EVERY if abs(parts.engagement) >= 0.5 or parts.limited
                           else None, moved.leaves_window(s.score_marks, now)])
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
    # faded buckets go only here, at one `now`, so applying events stays order-independent
    fresh = materialise(order_records.pruned(pruned(lead, now), now), rules, now)
    if fresh.view() == lead.view():
        return None
    change = ViewChange(lead_id=lead.lead_id, score_before=lead.score, score_after=fresh.score,
                        stage_before=lead.stage, stage_after=fresh.stage,
                        non_opener_before=lead.non_opener, non_opener_after=fresh.non_opener)
    faded = round(fresh.score - lead.score, 4)
    notes = [f"engagement faded by {-faded:g} since {lead.scored_at or 'creation'}"
             if faded < 0 else f"score {faded:+g} since {lead.scored_at or 'creation'}"]
    if faded == 0 and fresh.movement != lead.movement:  # a day left the 7-day window
        notes.append(f"7-day movement {lead.movement:+g} -> {fresh.movement:+g}")
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
    out = {"campaign"} if getattr(event, "campaign", 0) is None else set()
    if event.type in ("form_submitted", "activity") and getattr(event, "url", 0) is None:
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
    lead = order_records.migrated(state, records, rules).model_copy(deep=True) if state \
        else new_lead(lead_id, email, now)
    entries = []
    for event in events:
        delta, items = effect_of(event, rules)
        explained = explain and bool(delta.profile)
        before = {i.rule: i for i in fit_items(lead, rules)} if explained else {}
        lead = _apply_delta_in_place(lead, delta)
        if delta.order is not None:
            key = delta.order.key
            old = records[key].model_copy(deep=True) if key in records else None
            lead = order_records.apply_order(lead, records, delta.order, delta.at, rules)
            items = at_own_time(old, records.get(key), delta, items, rules)
        if explained:
            items = items + fit_changes(before, {i.rule: i for i in fit_items(lead, rules)})
        if explain:
            entries.append(history_entry(event, items, rules, now))
    lead.updated_at = now
    return materialise(lead, rules, now), entries
