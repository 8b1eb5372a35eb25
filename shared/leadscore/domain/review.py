"""When a lead's stored view must next be refreshed, so that it never goes stale.

With no new event, a lead's engagement at `now + x` is E(x) = sum_j a_j * 2**(-x / h_j):
one term per accumulator bucket, capped window and order (each its value now and its
half-life), plus the points of purchase bands, which do not fade (they change only at a
moment: a recency band's first or last day). Fit is constant. Its stage, grade or
non-opener flag can change by itself only when E crosses a *level*: an engagement band
floor, a stage threshold minus fit, those less the hysteresis margin; or at a fixed
moment: the non-opener date, the end of a minimum stay, a recency band's edge.

E may mix signs (an unsubscribe's penalty fades slower than a click's points), so it need
not be monotonic and no closed form gives the first crossing. We step instead, safely:
E moves at most R(x) = sum_j |a_j| ln2 / h_j * 2**(-x / h_j) per day and R only falls, so
from x with the nearest level at distance d, no level is reached before x + d / R(x). We
advance by that until a level is within ROUNDING (then it is due: review there), or the
terms left (sum |a_j| 2**(-x/h_j)) are too small to ever reach one. The answer is never
later than the first real change, so a job that refreshes every lead whose
`next_review_at` has passed leaves every stored stage, grade and flag equal to the ones
computed at its `now`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from leadscore.domain.rules import Rules
from leadscore.domain.stages import engagement_floor

ROUNDING = 1e-4  # values are compared rounded to 4 decimals: count a level this close as met
MIN_STEP_DAYS = 1 / 1440  # one minute: never schedule a review sooner than this after now
MAX_STEPS = 200
HORIZON_DAYS = 36500.0


def levels(rules: Rules, fit: float) -> list[float]:
    """The engagement values at which the stage or the grade changes, for this fit."""
    margin = rules.stages.hysteresis.margin
    out = [floor for floor in rules.grades.engagement.values()]
    for name in ("mql", "sql"):
        gate = rules.stages.gate(name)
        out += [gate.score - fit, gate.score - fit - margin]
        eng = engagement_floor(rules.grades, gate.engagement_at_least)
        if eng is not None:
            out += [eng, eng - margin]
    return out


def first_crossing(terms: Sequence[tuple[float, float]], marks: Sequence[float],
                   now: datetime, until_days: float = HORIZON_DAYS,
                   steady: float = 0.0) -> datetime | None:
    """The earliest moment E (terms: (value now, half-life days), plus `steady` points that
    do not fade) may reach a mark, or None if it cannot within `until_days`. Never later
    than the true first crossing (see the module docstring)."""
    kept = [(a, h) for a, h in terms if a != 0.0]
    if not kept or not marks:
        return None
    reach = [(abs(m - steady), m) for m in marks]  # each mark's distance from `steady`
    ln2 = math.log(2)
    x = 0.0
    for _ in range(MAX_STEPS):
        # one pass per step, adding the terms left to right (Python 3.12's `sum` of floats
        # compensates rounding, so it may differ from this by an ulp; either is a lower
        # bound within ROUNDING): three lists and generators per step were half of
        # materialising a lead
        total: float = 0
        left: float = 0
        rate: float = 0
        for a, h in kept:
            v = a * 2.0 ** (-x / h)
            total += v
            left += abs(v)
            rate += abs(v) * ln2 / h
        value = steady + total
        # E stays within steady +- left from here on, moving towards `steady`
        if left < ROUNDING / 2:  # nothing left that rounding would show
            return None
        bound = left + ROUNDING
        distance = None
        for gap, m in reach:  # the nearest mark E can still reach
            if gap <= bound:
                d = abs(value - m)
                if distance is None or d < distance:
                    distance = d
        if distance is None:
            return None
        distance -= ROUNDING
        if distance <= 0:
            return now + timedelta(days=max(x, MIN_STEP_DAYS))
        x += max(distance / rate, MIN_STEP_DAYS)
        if x > until_days:
            return None
    return now + timedelta(days=max(x, MIN_STEP_DAYS))


def next_review(terms: Sequence[tuple[float, float]], rules: Rules, fit: float,
                now: datetime, moments: Iterable[datetime | None],
                steady: float = 0.0) -> datetime | None:
    """The earliest of the first crossing and the future `moments` (None: never). The
    crossing is only searched for up to the earliest moment (a review then searches on).
    `steady`: engagement points that do not fade (purchase bands, until a moment)."""
    found = [t for t in moments if t is not None and t > now]
    until = (min(found) - now).total_seconds() / 86400 if found else HORIZON_DAYS
    crossing = first_crossing(terms, levels(rules, fit), now, until, steady)
    if crossing is not None:
        found.append(crossing)
    return min(found) if found else None
