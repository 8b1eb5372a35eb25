"""Materialising a lead's view (score, stage, grade, non-opener flag) exactly at a moment,
and the decay job's refresh of it."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from leadscore.domain import lead_stats
from leadscore.domain import movement as moved
from leadscore.domain import orders as order_records
from leadscore.domain.accumulators import pruned
from leadscore.domain.breakdown import breakdown
from leadscore.domain.review import next_review
from leadscore.domain.rules import Rules
from leadscore.domain.stages import stage_at, stay_ends
from leadscore.domain.state import HistoryEntry, HistoryItem, LeadState

REVIEW_EVERY = timedelta(days=1)


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
    engagement, steady = parts.engagement, parts.steady  # sums: read once, not per use
    fit_score = round(parts.fit, 4)
    engagement_score = round(engagement, 4)
    score = round(parts.fit + engagement, 4)
    # bands read the rounded values shown, so 10 points of engagement is never 9.999999
    grade = _band(fit_score, rules.grades.fit, "D") + _band(
        engagement_score, rules.grades.engagement, "4")
    stored = state.stage if state.scored_at is not None else "lead"
    stage = stage_at(rules, score, fit_score, engagement_score,
                     customer=order_records.is_customer(state),
                     stored=stored, since=state.stage_since, now=now)
    stage_since = now if stage != stored or state.stage_since is None else state.stage_since
    since = non_opener_since(state, rules.non_opener_after_days)
    non_opener = since is not None and since <= now
    score_marks = moved.marked(state.score_marks, score, now,
                               stored=(state.scored_at, state.score))
    # daily while the score still moves visibly; and whenever the stage, grade or flag can
    # change by itself (a crossing, the non-opener date, the end of a minimum stay, a day
    # a recency band of purchases starts or stops holding)
    fading = engagement - steady
    recency = rules.purchase.band_changes(order_records.last_paid_day(state), now) if (
        rules.purchase.bands) else []
    review_at = next_review(
        [(v, h) for h, v in parts.terms.items()], rules,
        fit_score, now, [since, stay_ends(rules, stage, stage_since),
                         now + REVIEW_EVERY if abs(fading) >= 0.5 or parts.limited
                         else None, moved.leaves_window(score_marks, now), *recency],
        steady=steady)
    # one copy with every view field, not a copy and then an attribute set per field
    fresh = state.model_copy(update={
        "fit_score": fit_score, "engagement_score": engagement_score, "score": score,
        "grade": grade, "stage": stage, "stage_since": stage_since, "non_opener": non_opener,
        "non_opener_since": since if non_opener else None, "rules_version": rules.version,
        "rules_hash": rules.content_hash, "score_marks": score_marks,
        "movement": moved.movement(score_marks, score, now), "scored_at": now,
        "next_review_at": review_at})
    fresh.counted = lead_stats.counted_under(fresh, rules.stages.mql, rules.stages.sql)
    return fresh


@dataclass(kw_only=True)  # not a pydantic model: built only below and in rebuild (issue 20)
class ViewChange:
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
