"""Half-life arithmetic behind the blind-increment score (DESIGN.md, house rule 8).

A point p earned at t is worth p * 2**(-(now - t) / H) at `now`. Storing
A = sum(p_i * 2**((t_i - T0) / H)) lets any writer add an event with one increment, in any
order; the value at `now` is A * 2**(-(now - T0) / H).

With one fixed T0 the factor 2**((t - T0) / H) leaves float range (about 2**1024) once
t - T0 exceeds ~1000 half-lives: a 7-day half-life overflowed in 2044, and a 1-hour one
would within six weeks. So the accumulator is split into *epoch buckets*: an event at t
with half-life H goes to epoch k = floor((t - 1970-01-01) / (256 H)), whose base is
T_k = 1970-01-01 + k * 256 H, and adds p * 2**((t - T_k) / H), a factor in [1, 2**256).
The bucket's key names H (in whole seconds) and k, e.g. `s3888000e89` (45 days, epoch 89)
or `s3600n3` (one hour, epoch -3), so every bucket is still one field a writer can blindly
`Increment` (Firestore's blind path increments `eng_acc.<key>`; keys carry no dots), the
value at `now` is exact without the rules file (sum over k of A_k * 2**(-(now - T_k)/H)),
and it is finite for any date and any half-life from one hour to ten years. We chose epoch
buckets over log-domain sums because a log-sum-exp cannot be added by a blind increment.

Why 256: the factor stays below 2**256 (~1e77), far from overflow however many points pile
up, while a lead gains a new bucket only every 256 half-lives (10.7 days at one hour, 31
years at 45 days). Buckets whose value has fallen below PRUNE_BELOW points can be dropped
by a transactional refresh (`prune`), which keeps documents bounded; a late event for a
dropped bucket simply starts it again, and what was dropped is below the score's rounding.

Half-lives are whole seconds (1 hour to 10 years), so every writer agrees on the key.
Keys of the previous release (`h45`, with T0 = 2025-01-01) are still read, and so are its
cap weights (the cap count key alone, T0-relative); new cap weights are keyed by the cap's
count key plus `|` and the epoch key, so old and new events of one window share one cap.
An event later than `now` is valued at the start of its bucket at most (values of events
from the future are not meaningful, but stay finite).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

T0 = datetime(2025, 1, 1, tzinfo=UTC)  # the previous release's fixed epoch (`h45` keys)
UNIX = datetime(1970, 1, 1, tzinfo=UTC)
DAY = 86400.0
EPOCH_HALF_LIVES = 256
MIN_HALF_LIFE_DAYS = 1 / 24
MAX_HALF_LIFE_DAYS = 3650.0
PRUNE_BELOW = 1e-9  # points: far below the 4 decimals a score is rounded to
_MICRO = timedelta(microseconds=1)


def _half_life(days: float) -> float:
    if not MIN_HALF_LIFE_DAYS <= days <= MAX_HALF_LIFE_DAYS:
        raise ValueError("a half-life must be from 1 hour (0.0417 days) to 3650 days")
    return days


HalfLife = Annotated[float, AfterValidator(_half_life)]  # a rules file's `half_life_days`
# `s`: epochs of 256 half-lives; `p`: of one (purchases); `_<category>`: limits
_EPOCH_KEY = re.compile(r"^([sp])(\d+)([en])(\d+)(?:_[a-z0-9]+)?$")
SHORT_EPOCH = "p"


def days_since_epoch(t: datetime) -> float:
    return (t - T0).total_seconds() / DAY


def _pow2(exponent: float) -> float:
    """2**exponent, 0.0 far below float range and never an OverflowError above it."""
    return math.ldexp(1.0, 1023) if exponent > 1023 else float(2.0 ** exponent)


def growth(t: datetime, half_life_days: float) -> float:
    """Weight of a point earned at t relative to the old fixed T0 (previous release)."""
    return _pow2(days_since_epoch(t) / half_life_days)


def fade(now: datetime, half_life_days: float) -> float:
    """Factor that turns an old fixed-T0 accumulator into its value at now."""
    return _pow2(-days_since_epoch(now) / half_life_days)


def faded(points: float, at: datetime, now: datetime, half_life_days: float) -> float:
    """Points earned at `at`, worth at `now` (an event after `now` counts in full)."""
    elapsed = max(0.0, (now - at).total_seconds() / DAY)
    return points * _pow2(-elapsed / half_life_days)


def half_life_seconds(half_life_days: float) -> int:
    return max(1, round(half_life_days * DAY))


def _micros(t: datetime) -> int:
    return (t - UNIX) // _MICRO


def epoch_key(half_life_days: float, t: datetime, short: bool = False) -> str:
    """The accumulator bucket an event at t with this half-life is added to; `short`:
    epochs of one half-life (see `accrue`)."""
    return _epoch(half_life_days, t, short)[0]


def _epoch(half_life_days: float, t: datetime, short: bool) -> tuple[str, float]:
    """(`epoch_key`, `weight` of that key at t), computed from the same parts at once."""
    seconds = half_life_seconds(half_life_days)
    prefix, span = (SHORT_EPOCH, 1) if short else ("s", EPOCH_HALF_LIVES)
    micros = _micros(t)
    k = micros // (seconds * 1_000_000 * span)
    key = f"{prefix}{seconds}e{k}" if k >= 0 else f"{prefix}{seconds}n{-k}"
    base = k * seconds * 1_000_000 * span  # as `weight` reads it back from the key
    return key, _pow2((micros - base) / (seconds * 1_000_000))


@lru_cache(maxsize=65536)
def _parse_epoch(key: str) -> tuple[int, int, int] | None:
    """(half-life seconds, epoch index, half-lives per epoch) of an epoch key, None for an
    old `h<days>` key."""
    found = _EPOCH_KEY.match(key)
    if not found:
        return None
    k = int(found[4])
    span = 1 if found[1] == SHORT_EPOCH else EPOCH_HALF_LIVES
    return int(found[2]), (k if found[3] == "e" else -k), span


def accrue(points: float, half_life_days: float, t: datetime,
           category: str | None = None, short: bool = False) -> tuple[str, float]:
    """(bucket key, amount to add) for points earned at t: the blind increment. With a
    category (rules with point `limits`) the key ends in `_<category>`, so each category's
    engagement can be read, and limited, on its own.

    `short` (purchases): epochs of one half-life, so a bucket's weights stay within a
    factor of 2. Purchase points are also *taken back* (a refund, an order reported again
    with an earlier time): in a 256-half-life epoch, taking back a weight near 2**243
    would wipe out the float bits of the small weights added beside it, so the bucket
    would depend on the order of events; within a factor of 2 it cannot. A lead gets one
    such bucket per half-life with purchases, pruned once faded."""
    key, one_point = _epoch(half_life_days, t, short)  # not the key parsed back
    amount = points * one_point
    return (f"{key}_{category}" if category else key), amount


def category_of(key: str) -> str:
    """The category an epoch key (or a cap weight key ending in one) was written for."""
    tail = key.rsplit("|", 1)[-1]
    return tail.split("_", 1)[1] if "_" in tail else ""


def value_at(key: str, amount: float, now: datetime) -> float:
    """The bucket's points at `now`: exact, finite, and 0.0 once far in the past."""
    parsed = _parse_epoch(key)
    if parsed is None:  # previous release: fixed T0 (finite for its supported dates)
        return amount * fade(now, half_life_of(key))
    seconds, k, span = parsed
    base = k * seconds * 1_000_000 * span
    exponent = -(_micros(now) - base) / (seconds * 1_000_000)
    return amount * _pow2(min(exponent, 0.0))


def acc_key(half_life_days: float) -> str:
    """The previous release's key (`h45`): read, no longer written."""
    return f"h{half_life_days:g}"


def half_life_of(key: str) -> float:
    """Half-life in days of an accumulator key of either format."""
    parsed = _parse_epoch(key)
    return parsed[0] / DAY if parsed else float(key[1:])


def label(key: str) -> str:
    """The half-life a bucket belongs to, for reports: `h45`, `h0.0416667`."""
    return f"h{half_life_of(key):g}"
