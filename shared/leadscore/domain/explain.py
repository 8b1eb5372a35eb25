"""What each rule contributes to a lead's score *now*, adding up to the score exactly.

A history entry says what an event was worth when it happened; this says what it is worth
at `now`: every stored event is valued again under the rules in force, with the same
arithmetic the score uses (its epoch buckets faded to `now`, a cap window's points scaled
by the window's count on the lead), and grouped by rule: a behaviour rule's points for an
event (a click on /pricing, a visit with a UTM source) are its own line, not the event's.
Fit rules count in full, orders by their faded, refunded share, purchase bands
(`purchase.<id>`) in full while they hold.
Whatever the history shown does not explain (events older than the page read, or buckets
pruned below 1e-9 points) is one last line, so the lines always add up to the score.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.domain import decay
from leadscore.domain import orders as order_records
from leadscore.domain.accumulators import cap_weight_value
from leadscore.domain.effects import effect_of, event_key, matching_behaviour
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import breakdown, fit_items
from leadscore.domain.state import HistoryEntry, LeadState

UNEXPLAINED_BELOW = 1e-6


def _add(by_rule: dict[str, dict[str, Any]], rule: str, reason: str, points: float) -> None:
    line = by_rule.setdefault(rule, {"rule": rule, "points": 0.0, "events": 0,
                                     "reason": reason})
    line["points"] += points
    line["events"] += 1


def contributions(lead: LeadState, history: list[HistoryEntry], rules: Rules,
                  now: datetime) -> list[dict[str, Any]]:
    """One line per rule: {rule, points (now), events, reason}; the points add up to the
    exact (unrounded) score at `now`."""
    parts = breakdown(lead, rules, now)
    lines: list[dict[str, Any]] = [
        {"rule": i.rule, "points": i.points, "events": 0, "reason": i.reason}
        for i in fit_items(lead, rules)]
    by_rule: dict[str, dict[str, Any]] = {}
    for entry in history:
        if not entry.event:
            continue
        event = EVENT_ADAPTER.validate_python(entry.event)
        delta, _ = effect_of(event, rules)
        value = sum(decay.value_at(k, a, now) for k, a in delta.acc.items()) + sum(
            cap_weight_value(lead, k, a, now) for k, a in delta.cap_weights.items())
        if not delta.acc and not delta.cap_weights:
            continue
        key = event_key(event)
        shared = False
        for rule in matching_behaviour(event, key, rules):
            if rule.frequency:  # its awards are the window lines below
                continue
            shared = True
            ak, amount = decay.accrue(rule.points, rules.half_life_for(rule),
                                      event.occurred_at, rules.category_for(key, rule))
            share = decay.value_at(ak, amount, now)  # the same term the event's sum holds
            _add(by_rule, f"behaviour.{rule.id}", rule.reason or f"behaviour rule {rule.id}",
                 share)
            value -= share
        if not shared or abs(value) >= UNEXPLAINED_BELOW:  # else the rounding left over
            _add(by_rule, key, (rules.engagement[key].reason or key)
                 if key in rules.engagement else key, value)
    lines += sorted(by_rule.values(), key=lambda line: -abs(line["points"]))
    for rule_id, points in parts.behaviour.items():
        lines.append({"rule": f"behaviour.{rule_id}", "points": points, "events": 0,
                      "reason": "frequency reached in a window (points once per window)"})
    for category, points in parts.limited.items():
        lines.append({"rule": f"limit.{category}", "points": points, "events": 0,
                      "reason": f"{category} engagement over its limit of "
                                f"{rules.limits[category]:g} points"})
    if parts.purchases:
        lines.append({"rule": "purchase", "points": parts.purchases,
                      "events": sum(t.count for t in order_records.totals(lead).values()),
                      "reason": "orders, faded, less refunds"})
    bands = {b.id: b for b in rules.purchase.bands}
    for band_id, points in parts.purchase_bands.items():
        band = bands[band_id]
        lines.append({"rule": f"purchase.{band_id}", "points": points, "events": 0,
                      "reason": band.reason or f"purchase band on {band.measure}"})
    total = parts.fit + parts.engagement
    rest = total - sum(line["points"] for line in lines)
    if abs(rest) >= UNEXPLAINED_BELOW:
        lines.append({"rule": "older", "points": rest, "events": 0,
                      "reason": "events before the history shown, or faded to nothing"})
    return lines
