"""Rebuilding a lead from its history under the rules in force: one rules version at a time.

A lead remembers the content hash of the rules it was scored under (`rules_hash`). Before
anything else touches a lead stored under other rules (an event, the decay job's refresh,
`rescore`), the service rebuilds its facts from its stored events under the current rules
(every fact comes from an event and every event is in the history, so this is exact), in
the same transaction; scores are never mixed from two rule sets.
"""

from __future__ import annotations

from datetime import datetime

from leadscore.domain.rules import Rules
from leadscore.domain.scoring import ViewChange, apply_events, materialise
from leadscore.domain.state import HistoryEntry, HistoryItem, LeadState, Order


def stale_rules(lead: LeadState | None, rules: Rules) -> bool:
    """True when the lead was scored under other rules than `rules`: it must be rebuilt
    from its history before anything else touches it. Leads stored before rules hashes
    (no `rules_hash`) are compared by `version`."""
    if lead is None:
        return False
    if lead.rules_hash:
        return lead.rules_hash != rules.content_hash
    return bool(lead.rules_version) and lead.rules_version != rules.version


def replayed(lead: LeadState, history: list[HistoryEntry], rules: Rules,
             now: datetime, orders: dict[str, Order] | None = None) -> LeadState:
    """The lead's facts rebuilt from its stored events under `rules`, materialised at `now`
    continuing from its stored stage (hysteresis), not from a fresh lead's. `orders`
    receives every order record, rebuilt too (orders live beside the lead)."""
    from leadscore.domain.events import EVENT_ADAPTER

    events = [EVENT_ADAPTER.validate_python(e.event) for e in history if e.event]
    facts, _ = apply_events(None, lead.lead_id, lead.email, events, rules, now, orders)
    facts.stage, facts.stage_since, facts.scored_at = lead.stage, lead.stage_since, lead.scored_at
    facts.score_marks, facts.score = lead.score_marks, lead.score  # the 7-day baseline goes on
    fresh = materialise(facts, rules, now)
    fresh.created_at = lead.created_at
    fresh.restarted_after = lead.restarted_after  # its consent mark (service/erasure.py)
    fresh.rescored_for = rules.version
    return fresh


def rebuilt(lead: LeadState, history: list[HistoryEntry], rules: Rules,
            now: datetime, orders: dict[str, Order] | None = None,
            ) -> tuple[LeadState, ViewChange, HistoryEntry] | None:
    """The lead recomputed from its stored events under `rules`, or None if unchanged.

    Every fact comes from an event, and every event is kept in the history, so replaying
    them under new rules is exact."""
    fresh = replayed(lead, history, rules, now, orders)
    if fresh.model_dump(exclude={"updated_at", "scored_at"}) == lead.model_dump(
            exclude={"updated_at", "scored_at"}):
        return None
    change = ViewChange(lead_id=lead.lead_id, score_before=lead.score, score_after=fresh.score,
                        stage_before=lead.stage, stage_after=fresh.stage,
                        non_opener_before=lead.non_opener, non_opener_after=fresh.non_opener)
    delta = round(fresh.score - lead.score, 4)
    reason = f"rescored under rules {rules.version} (was {lead.rules_version or '-'})"
    if lead.rules_version == rules.version and lead.rules_hash != rules.content_hash:
        reason += " (same version, edited rules)"
    if fresh.stage != lead.stage:
        reason += f"; stage {lead.stage} -> {fresh.stage}"
    entry_id = f"rescore-{rules.version}-{rules.content_hash[:8]}-{now.isoformat()}"
    entry = HistoryEntry(entry_id=entry_id,
                         kind="rescore", at=now, recorded_at=now, delta=delta, reason=reason,
                         rules_version=rules.version,
                         items=[HistoryItem(rule="rescore", points=delta, reason=reason)])
    return fresh, change, entry
