"""The daily snapshot: stage and grade counts of one day, so the page can show stage counts
over time without reading old leads. The decay job calls `take`; a page view takes today's
when it is missing. The counts are the statistics documents' (`lead_stats`) when they are
complete, else aggregation queries."""

from __future__ import annotations

from datetime import datetime

from leadscore.domain.state import STAGES
from leadscore.store.port import DashboardStats, LeadCount

GRADE_LETTERS = "ABCD"
GRADE_DIGITS = "1234"
GRADES = [f + e for f in GRADE_LETTERS for e in GRADE_DIGITS]


def day_of(now: datetime) -> str:
    return now.date().isoformat()


def current_counts(store: DashboardStats, total: int,
                   kept: dict[str, int] | None = None) -> dict[str, int]:
    """`stage:<s>` and `grade:<g>` counts now: from the statistics documents `kept` (the
    same keys) when they are complete, else 3 + 16 aggregation queries. The largest
    stage, `lead`, is what the others leave of `total` (Firestore bills a count by the
    entries it counts)."""
    if kept is not None:
        return {key: kept.get(key, 0) for key in [*(f"stage:{s}" for s in STAGES),
                                                  *(f"grade:{g}" for g in GRADES)]}
    counts = {f"stage:{s}": store.count_matching(LeadCount(stage=s)) for s in STAGES[1:]}
    counts[f"stage:{STAGES[0]}"] = total - sum(counts.values())
    counts.update({f"grade:{g}": store.count_matching(LeadCount(grade=g)) for g in GRADES})
    return counts


def take(store: DashboardStats, now: datetime, total: int,
         kept: dict[str, int] | None = None) -> dict[str, int]:
    """Write (or replace) today's snapshot and return its counts; `total` is
    `store.count_leads()`, `kept` the statistics documents if complete (read here when not
    given: the decay job's daily tick)."""
    counts = current_counts(store, total, kept if kept is not None else store.lead_stats())
    store.put_snapshot(day_of(now), counts)
    return counts


def ensure_today(store: DashboardStats, now: datetime, total: int,
                 kept: dict[str, int] | None = None,
                 days: int = 30) -> dict[str, dict[str, int]]:
    """The last `days` snapshots, today's taken first if missing."""
    history = store.snapshots(limit=days)
    if day_of(now) not in history:
        history[day_of(now)] = take(store, now, total, kept)
        history = dict(sorted(history.items())[-days:])
    return history
