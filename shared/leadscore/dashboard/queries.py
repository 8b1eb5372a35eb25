"""What the dashboard shows, gathered with a bounded number of reads at any size.

Per overview page view (README, "Reads per page view"): the statistics documents (one
SQLite query; Firestore: 33 documents), which hold the histogram, the total, stages,
grades, email health, the non-openers and both open sums, kept by the write path
(`domain/lead_stats.py`, the adapters' `lead_stats`), so their cost does not grow with the
leads; 4 handover counts; the snapshot list (at most 30 small documents, plus one snapshot
write a day); the hot leads (HOT_LEADS per stage read, HOT_HISTORY history entries for each
shown), the top movers (TOP_MOVERS each way) and the latest saved back-test (one document).

While the statistics are incomplete (a store written by an older release, before
`leadscore dashboard recount` finished) or the histogram's keys are of older thresholds
(before `leadscore rescore`), those numbers come from aggregation queries instead, as
before: one count per histogram bucket, 19 for stages and grades, 3 for email health, the
non-openers, 2 sums of open counters. Nothing reads every lead or every history."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadscore.dashboard import snapshot
from leadscore.domain import lead_stats as counting
from leadscore.domain.lead_stats import bucket_edges
from leadscore.domain.rules import Rules
from leadscore.domain.state import STAGES, LeadState
from leadscore.integrations.cards import top_reasons
from leadscore.integrations.ports import Reason
from leadscore.store.port import DashboardStats, LeadCount, LeadStore

HOT_LEADS = 6
HOT_HISTORY = 15
TOP_MOVERS = 5
EMAIL_STATUSES = ("active", "unsubscribed", "bounced", "complained")
NEVER = datetime.min.replace(tzinfo=UTC)  # leads stored before `stage_since` sort last


@dataclass
class Bucket:
    low: float | None  # None: open below
    high: float | None  # None: open above
    count: int

    @property
    def short(self) -> str:
        """The axis label: the bucket's lower edge."""
        return f"<{self.high:g}" if self.low is None else f"{self.low:g}"

    @property
    def label(self) -> str:
        if self.low is None:
            return f"< {self.high:g}"
        if self.high is None:
            return f">= {self.low:g}"
        return f"{self.low:g} to {self.high:g}"


@dataclass
class HotLead:
    lead: LeadState
    reasons: list[Reason]


@dataclass
class Overview:
    total: int
    mql: float
    sql: float
    buckets: list[Bucket]
    stages: dict[str, int]
    grades: dict[str, int]
    over_time: dict[str, dict[str, int]]
    hot: list[HotLead]
    email: dict[str, int]
    non_openers: int
    handovers: dict[str, int]
    opens: dict[str, int]  # "human" and "machine" opens, all time
    movers_up: list[LeadState]
    movers_down: list[LeadState]
    calibration_available: bool
    calibration: dict[str, Any] | None  # the latest saved back-test (`leadscore calibrate`)
    notes: list[str] = field(default_factory=list)

    @property
    def machine_share(self) -> float | None:
        """Machine opens (privacy prefetch: Apple Mail Privacy Protection, proxies,
        scanners, as the ESP flags them) as a share of every open; None without opens."""
        every = self.opens["human"] + self.opens["machine"]
        return self.opens["machine"] / every if every else None


__all__ = ["bucket_edges"]  # moved to domain/lead_stats.py; still importable from here


def histogram(store: DashboardStats, mql: float, sql: float,
              counts: dict[str, int] | None = None) -> list[Bucket]:
    """The score histogram: from the statistics `counts` when every stored score is counted
    under these thresholds' buckets, else one aggregation query per bucket."""
    bounds = counting.bucket_bounds(bucket_edges(mql, sql))
    keys = {counting.bucket_key(low, high) for low, high in bounds}
    if counts is not None and all(k in keys for k in counts if k.startswith("score:")):
        return [Bucket(low, high, counts.get(counting.bucket_key(low, high), 0))
                for low, high in bounds]
    return [Bucket(low, high, store.count_matching(LeadCount(min_score=low, below_score=high)))
            for low, high in bounds]


def statistics(store: LeadStore, stats: DashboardStats) -> dict[str, int] | None:
    """The statistics documents, or None while they are incomplete. Unmarked statistics
    whose `total` equals the leads' count hold every lead (each counted lead adds 1 to it):
    a store this release wrote from the start. They are marked complete then, after one
    count (Firestore: one read per 1,000 leads, once)."""
    counts = stats.lead_stats()
    if counts is None:
        sums = stats.lead_stats(complete_only=False) or {}
        if not sums.get(counting.UNCOUNTED) and sums.get("total", 0) == store.count_leads():
            stats.mark_stats_complete()
            counts = sums
    return counts


def hot_leads(store: LeadStore, rules: Rules, now: datetime) -> list[HotLead]:
    """The newest SQLs and MQLs: the leads that entered their stage last (`stage_since`),
    each with the top three reasons from its recent history."""
    stats = _stats(store)
    leads = stats.newest_in_stage("sql", HOT_LEADS) + stats.newest_in_stage("mql", HOT_LEADS)
    leads.sort(key=lambda x: (x.stage_since or NEVER, x.lead_id), reverse=True)
    return [HotLead(x, top_reasons(store.history(x.lead_id, limit=HOT_HISTORY), now, rules))
            for x in leads[:HOT_LEADS]]


def overview(store: LeadStore, rules: Rules, now: datetime) -> Overview:
    stats = _stats(store)
    kept = statistics(store, stats)
    buckets = histogram(stats, rules.stages.mql, rules.stages.sql, kept)
    total = sum(b.count for b in buckets)  # every lead is in one bucket: no count of all
    over_time = snapshot.ensure_today(stats, now, total, kept)
    counts = snapshot.current_counts(stats, total, kept)
    if kept is not None:
        email = {s: kept.get(f"email:{s}", 0) for s in EMAIL_STATUSES}
        non_openers = kept.get("non_opener", 0)
        opens = {"human": kept.get("opens:human", 0), "machine": kept.get("opens:machine", 0)}
    else:
        email = {s: stats.count_matching(LeadCount(email_status=s))
                 for s in EMAIL_STATUSES[1:]}
        email = {EMAIL_STATUSES[0]: total - sum(email.values()), **email}
        non_openers = stats.count_matching(LeadCount(non_opener=True))
        opens = {"human": stats.sum_counter("email_opened"),
                 "machine": stats.sum_counter("email_opened_machine")}
    closed, given_up = stats.count_handovers(True), stats.count_handovers(True, given_up=True)
    return Overview(
        total=total,
        mql=rules.stages.mql, sql=rules.stages.sql,
        buckets=buckets,
        stages={s: counts[f"stage:{s}"] for s in STAGES},
        grades={g: counts[f"grade:{g}"] for g in snapshot.GRADES},
        over_time=over_time,
        hot=hot_leads(store, rules, now),
        email=email,
        non_openers=non_openers,
        handovers={"sent": closed - given_up, "given up": given_up,
                    "failed": stats.count_handovers(False, attempted=True),
                    "pending": stats.count_handovers(False, attempted=False)},
        opens=opens,
        movers_up=stats.top_movers(True, TOP_MOVERS),
        movers_down=stats.top_movers(False, TOP_MOVERS),
        calibration_available=importlib.util.find_spec(
            "leadscore.service.calibration") is not None,
        calibration=stats.latest_calibration(),
        notes=[] if kept is not None else [
            "Counted by aggregation queries: the statistics documents are not complete "
            "yet (run `leadscore dashboard recount`)."])


def _stats(store: LeadStore) -> DashboardStats:
    if not isinstance(store, DashboardStats):
        raise TypeError(f"{type(store).__name__} has no dashboard aggregations")
    return store
