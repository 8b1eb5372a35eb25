"""Fit: the profile fields fit rules read, the rules that match, and what a change started
or stopped matching (for the history of a profile change)."""

from __future__ import annotations

from leadscore.domain.conditions import FitRule
from leadscore.domain.limits import ProfileValue
from leadscore.domain.rules import Rules
from leadscore.domain.state import HistoryItem, LeadState


def profile_fields(state: LeadState) -> dict[str, ProfileValue]:
    """The fields fit rules read: the profile plus the address's domain."""
    fields: dict[str, ProfileValue] = dict(state.profile)
    fields["email_domain"] = state.email.rsplit("@", 1)[-1]
    return fields


def fit_items(state: LeadState, rules: Rules) -> list[HistoryItem]:
    fields, matched = fit_matched(state, rules)
    return [HistoryItem(rule=f"fit.{r.id}", points=r.points, reason=r.explain(fields))
            for r in matched]


def fit_points(state: LeadState, rules: Rules) -> float:
    """The sum of `fit_items`' points, in the same order, without writing each reason (the
    score needs only the points; the explanations were most of the cost)."""
    return sum(r.points for r in fit_matched(state, rules)[1])


Matched = tuple[dict[str, ProfileValue], list[FitRule]]


def fit_matched(state: LeadState, rules: Rules) -> Matched:
    """The fields fit rules read and the rules they match, not yet explained."""
    fields = profile_fields(state)
    return fields, [r for r, test in rules.fit_tests() if test(fields)]


def fit_changes_between(before: Matched, after: Matched) -> list[HistoryItem]:
    """Fit rules a profile change started or stopped matching, as explained points, from two
    `fit_matched` answers: only the rules whose match changed are explained (a form names a
    profile: every rule was explained twice)."""
    (old_fields, old), (new_fields, new) = before, after
    old_ids, new_ids = {r.id for r in old}, {r.id for r in new}
    started = [HistoryItem(rule=f"fit.{r.id}", points=r.points,
                           reason=f"fit: {r.explain(new_fields)}")
               for r in new if r.id not in old_ids]
    stopped = [HistoryItem(rule=f"fit.{r.id}", points=-r.points,
                           reason=f"fit no longer: {r.explain(old_fields)}")
               for r in old if r.id not in new_ids]
    return started + stopped
