"""The scoring path's cheaper forms give exactly what the plain forms give (issue 20): the
review schedule's stepping, a profile change's fit explanations, the purchase bands of a
lead that never bought."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from leadscore.domain.fit import fit_changes_between, fit_items, fit_matched
from leadscore.domain.review import (
    MAX_STEPS,
    MIN_STEP_DAYS,
    ROUNDING,
    first_crossing,
    levels,
)
from leadscore.domain.rules import default_rules, rules_from_data
from leadscore.domain.state import HistoryItem, LeadState, PurchaseTotals

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def plain_sum(values: Iterable[float]) -> float:
    """Left to right, as `sum` of floats did before Python 3.12 (it compensates since): the
    reference must not depend on the interpreter the suite runs on."""
    total = 0.0
    for v in values:
        total += v
    return total


def stepping_over_pairs(terms: Sequence[tuple[float, float]], marks: Sequence[float],
                        now: datetime, until_days: float, steady: float) -> datetime | None:
    """The review's stepping as first written: lists of (value, half-life) pairs per step."""
    terms = [(a, h) for a, h in terms if a != 0.0]
    if not terms or not marks:
        return None
    ln2 = math.log(2)
    x = 0.0
    for _ in range(MAX_STEPS):
        faded = [(a * 2.0 ** (-x / h), h) for a, h in terms]
        value = steady + plain_sum(v for v, _ in faded)
        left = plain_sum(abs(v) for v, _ in faded)
        if left < ROUNDING / 2:
            return None
        distance = min((abs(value - m) for m in marks if abs(m - steady) <= left + ROUNDING),
                       default=None)
        if distance is None:
            return None
        distance -= ROUNDING
        if distance <= 0:
            return now + timedelta(days=max(x, MIN_STEP_DAYS))
        rate = plain_sum(abs(v) * ln2 / h for v, h in faded)
        x += max(distance / rate, MIN_STEP_DAYS)
        if x > until_days:
            return None
    return now + timedelta(days=max(x, MIN_STEP_DAYS))


@pytest.mark.parametrize("seed", range(4))
def test_the_review_steps_to_the_same_moment_as_stepping_over_pairs(seed: int) -> None:
    # GIVEN thousands of mixes of fading terms (either sign, several half-lives), levels
    # of the default rules at various fits, steady points and horizons
    rnd, rules = random.Random(seed), default_rules()
    found = 0
    for _ in range(2500):
        terms = [(rnd.choice([0.0, rnd.uniform(-40, 90), rnd.randint(-30, 60)]),
                  rnd.choice([1 / 24, 7.0, 45.0, 180.0, 365.0]))
                 for _ in range(rnd.randint(0, 6))]
        marks = levels(rules, rnd.choice([0.0, 5.0, 15.0, 30.0, -50.0]))
        until = rnd.choice([0.5, 7.0, 30.0, 36500.0])
        steady = rnd.choice([0.0, 15.0, -10.0, 35.0])
        # WHEN the next review is searched for both ways
        expected = stepping_over_pairs(terms, marks, NOW, until, steady)
        # THEN it is the same moment, to the microsecond, or None both ways
        assert first_crossing(terms, marks, NOW, until, steady) == expected
        found += expected is not None
    assert found > 100  # crossings were found, not only "never"


def fit_changes(before: dict[str, HistoryItem],
                after: dict[str, HistoryItem]) -> list[HistoryItem]:
    """The change between two sets of explained fit items, as first written (every rule
    explained on both sides): the reference for `fit_changes_between`."""
    started = [HistoryItem(rule=k, points=i.points, reason=f"fit: {i.reason}")
               for k, i in after.items() if k not in before]
    stopped = [HistoryItem(rule=k, points=-i.points, reason=f"fit no longer: {i.reason}")
               for k, i in before.items() if k not in after]
    return started + stopped


def lead(profile: dict[str, str | int], email: str = "ana@acme.example") -> LeadState:
    return LeadState(lead_id="l_fit", email=email, profile=profile)


PROFILES: list[dict[str, str | int]] = [
    {}, {"job_title": "Head of Marketing", "company_size": "51-200", "industry": "SaaS"},
    {"job_title": "student", "company_size": 2000, "seniority": "vp", "country": "Spain"},
    {"job_title": "CEO", "company_size": 5, "company_revenue": 20_000_000},
    {"seniority": "manager", "industry": "retail", "years_experience": 12},
]


def test_fit_changes_explained_from_matches_are_the_changes_of_the_explained_items() -> None:
    # GIVEN every pair of profiles, at a company address and a free-mail one
    rules, changed = default_rules(), 0
    for email in ("ana@acme.example", "ana@gmail.com", "ana@hubspot.com"):
        for old in PROFILES:
            for new in PROFILES:
                before, after = lead(old, email), lead(new, email)
                # WHEN the change is explained from the matches alone
                got = fit_changes_between(fit_matched(before, rules), fit_matched(after, rules))
                # THEN it is the change between every rule's explained item, in order
                assert got == fit_changes({i.rule: i for i in fit_items(before, rules)},
                                          {i.rule: i for i in fit_items(after, rules)})
                changed += bool(got)
    assert changed > 40  # the comparison saw items, not only empty lists


def test_a_lead_that_never_bought_is_in_the_bands_it_would_be_in_when_judged() -> None:
    # GIVEN purchase bands of every measure, some a lead with no orders is in (0 orders)
    data = default_rules().model_dump(mode="json", exclude_unset=True)
    data["purchase"]["bands"] += [
        {"id": "none-yet", "count": {"max": 0}, "points": 2},
        {"id": "few", "count": {"min": 0, "max": 2}, "points": 1},
        {"id": "recent", "days_since_last": {"max": 30}, "points": 5},
        {"id": "small-basket", "average_basket": {"max": 10}, "points": -1}]
    purchase = rules_from_data(data).purchase
    # WHEN a lead with no totals is judged (the remembered answer) and one whose only
    # currency has no order that counts (judged band by band)
    remembered = purchase.band_points({}, None, NOW)
    judged = purchase.band_points({"EUR": PurchaseTotals(count=0)}, None, NOW)
    # THEN both are in the same bands
    assert remembered == judged == {"none-yet": 2.0, "few": 1.0}
    # AND the answer is a copy: changing it changes no later answer
    remembered["none-yet"] = 99.0
    assert purchase.band_points({}, None, NOW) == judged


def test_rules_copied_with_changes_are_the_rules_validated_with_those_changes() -> None:
    # GIVEN the default rules, whose validators prepare parts (band measures, fit tests,
    # the content hash) kept beside the fields
    rules = default_rules()
    bands = [{"id": "zero", "count": {"max": 0}, "points": 7}]
    data = rules.model_dump(mode="json", exclude_unset=True)
    data["purchase"]["bands"] = bands
    validated = rules_from_data(data)
    # WHEN the purchase rules, and the rules, are copied with new bands
    purchase = rules.purchase.model_copy(update={"bands": bands})
    copied = rules.model_copy(update={"purchase": purchase})
    # THEN each copy judges and hashes as the rules validated with those bands do
    assert purchase.band_points({}, None, NOW) == {"zero": 7.0}
    assert copied.purchase.band_points({}, None, NOW) == (
        validated.purchase.band_points({}, None, NOW))
    assert copied.content_hash == validated.content_hash != rules.content_hash
    # AND a copy without changes is the same rules
    assert rules.model_copy().content_hash == rules.content_hash
