"""A lead's score at a moment, part by part: fit, engagement per half-life, capped events,
purchases (faded orders and the purchase bands it is in), frequency awards and what the
category limits take off. The parts add up to the score; `view.py` materialises it and
`explain.py` shows it rule by rule."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from leadscore.domain import orders as order_records
from leadscore.domain.accumulators import (
    capped_by_half_life,
    engagement_by_category,
    engagement_by_half_life,
)
from leadscore.domain.behaviour import BehaviourRule, awards
from leadscore.domain.fit import fit_points
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState


# A plain dataclass (issue 20: class building at cold start), built only by `breakdown`
# below; its sums are made floats there, as the pydantic model it was made them (an empty
# `sum` is the int 0, and the leads API prints these numbers).
@dataclass(kw_only=True)
class Breakdown:
    fit: float
    engagement_by_half_life: dict[str, float]
    capped: float
    purchases: float  # orders' points, faded, less refunds
    # every fading part summed per half-life in days: what `review` projects forward
    terms: dict[float, float] = field(default_factory=dict)
    # frequency rules' awards now, by rule id
    behaviour: dict[str, float] = field(default_factory=dict)
    # what category limits take off now (<= 0), by category
    limited: dict[str, float] = field(default_factory=dict)
    # purchase bands the lead is in now, by id
    purchase_bands: dict[str, float] = field(default_factory=dict)

    @property
    def engagement(self) -> float:
        return sum(self.engagement_by_half_life.values()) + self.capped + self.purchases + sum(
            self.behaviour.values()) + sum(self.limited.values()) + self.steady

    @property
    def steady(self) -> float:
        """The points that do not fade (purchase bands): held until the lead leaves a band."""
        return sum(self.purchase_bands.values())


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
    by_id = rules.behaviour_by_id() if rules.behaviour else {}
    won_now = awards(state.counters, by_id, now) if by_id else {}  # once, for both uses
    for rule_id, won in won_now.items():
        behaviour[rule_id] = sum(points for points, _ in won)
        for points, half_life in won:
            terms[half_life] = terms.get(half_life, 0.0) + points
    fit = fit_points(state, rules)
    limited = _over_limits(state, rules, now, by_id, won_now) if rules.limits else {}
    return Breakdown(fit=float(fit), engagement_by_half_life=acc, capped=float(capped),
                     purchases=float(purchase), terms=terms, behaviour=behaviour, limited=limited,
                     purchase_bands=order_records.band_points(state, rules, now))


def _over_limits(state: LeadState, rules: Rules, now: datetime,
                 by_id: Mapping[str, BehaviourRule],
                 won_now: Mapping[str, list[tuple[float, float]]]) -> dict[str, float]:
    """Per limited category, the (negative) points over its limit at `now`, given the
    frequency rules' awards at `now` (`behaviour.awards`)."""
    by_category = engagement_by_category(state, now)
    for rule_id, won in won_now.items():
        rule = by_id[rule_id]
        category = rules.category_for(rule.events[0], rule) or ""
        by_category[category] = by_category.get(category, 0.0) + sum(p for p, _ in won)
    return {c: limit - by_category[c] for c, limit in rules.limits.items()
            if by_category.get(c, 0.0) > limit}
