"""Reading a lead's stored accumulators at a moment, and pruning the ones worth nothing.

Engagement lives in epoch buckets keyed by half-life and epoch (`eng_acc`), capped events in
weights per cap window and epoch (`cap_weights`, next to `cap_counts`); `decay.py` explains
the keys and why they stay finite.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from leadscore.domain import behaviour, decay
from leadscore.domain.state import LeadState


def engagement_by_half_life(state: LeadState, now: datetime) -> dict[str, float]:
    """Uncapped engagement at `now`, summed per half-life (`h45`)."""
    acc: dict[str, float] = {}
    for key, amount in state.eng_acc.items():
        label = decay.label(key)
        acc[label] = acc.get(label, 0.0) + decay.value_at(key, amount, now)
    return acc


def capped_value(state: LeadState, now: datetime) -> float:
    """Capped events' points at `now`: over the cap, a window's points are scaled down to
    max_events events' worth. Weight keys are the window's count key plus `|epoch` (or the
    bare count key, T0-relative, for events stored by the previous release)."""
    return sum(capped_by_half_life(state, now).values())


def capped_by_half_life(state: LeadState, now: datetime) -> dict[float, float]:
    """Capped events' points at `now`, summed per half-life in days."""
    # the value at `now` is linear in the stored amount, so scale and sum the amounts per
    # epoch bucket first and fade each bucket once (a year of weekly windows shares 1-2)
    by_epoch: dict[tuple[str | None, float], float] = {}
    counts = state.cap_counts
    for key, amount in state.cap_weights.items():  # hundreds for a lead of a few years
        count_key, max_events, slot = _cap_slot(key)
        scale = min(1.0, max_events / max(1, counts.get(count_key, 1)))
        by_epoch[slot] = by_epoch.get(slot, 0.0) + amount * scale
    out: dict[float, float] = {}
    for (epoch, half_life), amount in by_epoch.items():
        value = decay.value_at(epoch, amount, now) if epoch else amount * decay.fade(
            now, half_life)
        out[half_life] = out.get(half_life, 0.0) + value
    return out


def engagement_by_category(state: LeadState, now: datetime) -> dict[str, float]:
    """Engagement at `now` (uncapped and capped events) per category ("" for keys written
    without one), for rules with point `limits`."""
    out: dict[str, float] = {}
    for key, amount in state.eng_acc.items():
        category = decay.category_of(key)
        out[category] = out.get(category, 0.0) + decay.value_at(key, amount, now)
    for key, amount in state.cap_weights.items():
        category = decay.category_of(key)
        out[category] = out.get(category, 0.0) + cap_weight_value(state, key, amount, now)
    return out


def cap_scale(state: LeadState, count_key: str, max_events: int) -> float:
    """The share of its points each event of a cap window counts for now (1 under the cap)."""
    return min(1.0, max_events / max(1, state.cap_counts.get(count_key, 1)))


def cap_weight_value(state: LeadState, key: str, amount: float, now: datetime) -> float:
    """One cap weight's points at `now`, scaled by its window's count on the lead."""
    count_key, max_events, value = _cap_value(key, amount, now)
    return value * cap_scale(state, count_key, max_events)


@lru_cache(maxsize=65536)
def _cap_parts(key: str) -> tuple[str, int, str | None, float]:
    """(count key, max events, epoch key or None for the old format, old half-life)."""
    parts = key.split("|")
    if len(parts) > 5:
        return "|".join(parts[:5]), int(parts[0]), parts[5], float(parts[2])
    return key, int(parts[0]), None, float(parts[2])


@lru_cache(maxsize=65536)
def _cap_slot(key: str) -> tuple[str, int, tuple[str | None, float]]:
    """(count key, max events, (epoch key, old half-life)): `_cap_parts` as the sum per
    epoch bucket reads it, the bucket's key built once per weight key, not per reading."""
    count_key, max_events, epoch, half_life = _cap_parts(key)
    return count_key, max_events, (epoch, half_life)


def _cap_value(key: str, amount: float, now: datetime) -> tuple[str, int, float]:
    count_key, max_events, epoch, half_life = _cap_parts(key)
    value = decay.value_at(epoch, amount, now) if epoch else amount * decay.fade(now, half_life)
    return count_key, max_events, value


def pruned(state: LeadState, now: datetime) -> LeadState:
    """The lead without the buckets worth less than decay.PRUNE_BELOW points at `now`, so
    documents stay bounded however long a lead lives (see decay.py). A cap window's count
    goes too once it has no weights left and ended 64 half-lives ago: any event still to
    come for it is then worth under 2**-64 of its points."""
    acc = {k: a for k, a in state.eng_acc.items()
           if abs(decay.value_at(k, a, now)) >= decay.PRUNE_BELOW}
    weights = {k: a for k, a in state.cap_weights.items()
               if abs(_cap_value(k, a, now)[2]) >= decay.PRUNE_BELOW}
    weighed = {_cap_parts(k)[0] for k in weights}
    counts = {}
    for key, count in state.cap_counts.items():
        _, window, hl, bucket, _ = key.split("|", 4)
        ended = decay.T0 + timedelta(days=(int(bucket) + 1) * float(window) + 64 * float(hl))
        if key in weighed or ended > now:
            counts[key] = count
    counters = {k: n for k, n in state.counters.items()
                if not k.startswith(behaviour.FREQ) or not behaviour.expired(k, now)}
    if (len(acc), len(weights), len(counts), len(counters)) == (
            len(state.eng_acc), len(state.cap_weights), len(state.cap_counts),
            len(state.counters)):
        return state
    return state.model_copy(update={"eng_acc": acc, "cap_weights": weights,
                                    "cap_counts": counts, "counters": counters})
