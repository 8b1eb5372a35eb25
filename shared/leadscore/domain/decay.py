"""Half-life arithmetic behind the blind-increment score (DESIGN.md, house rule 8).

A point p earned at t is worth p * 2**(-(now - t) / H) at `now`. Storing
A = sum(p_i * 2**((t_i - T0) / H)) lets any writer add an event with one increment, in any
order; the value at `now` is A * 2**(-(now - T0) / H). H is at least 7 days, so the factor
stays below 2**600 for a century after T0: far inside float range.
"""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = 86400.0


def days_since_epoch(t: datetime) -> float:
    return (t - T0).total_seconds() / DAY


def growth(t: datetime, half_life_days: float) -> float:
    """Weight of a point earned at t, relative to T0."""
    return float(2.0 ** (days_since_epoch(t) / half_life_days))


def fade(now: datetime, half_life_days: float) -> float:
    """Factor that turns an accumulator into its value at now."""
    return float(2.0 ** (-days_since_epoch(now) / half_life_days))


def faded(points: float, at: datetime, now: datetime, half_life_days: float) -> float:
    return points * float(2.0 ** (-((now - at).total_seconds() / DAY) / half_life_days))


def acc_key(half_life_days: float) -> str:
    return f"h{half_life_days:g}"


def half_life_of(key: str) -> float:
    return float(key[1:])
