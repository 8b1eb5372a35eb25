"""What the dashboard shows, gathered with a bounded number of queries at any size.

Per overview page view (README, "Reads per page view"): one count per histogram bucket
(their sum is the total), 19 counts for stages and grades (the same as the daily
snapshot's), 3 email-health counts, the non-openers, 3 handover counts, 2 sums of open
counters (human and machine opens), the snapshot list (at most 30 small documents, plus one
snapshot write a day), the hot leads (HOT_LEADS per stage read, HOT_HISTORY history entries
for each shown), the top movers (TOP_MOVERS each way) and the latest saved back-test (one
document). Counts and sums are aggregation queries: no lead document is read. Nothing
reads every lead or every history."""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadscore.dashboard import snapshot
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


def bucket_edges(mql: float, sql: float) -> list[float]:
    """About a dozen buckets, with both thresholds on an edge, negatives included."""
    step = max(1.0, round(sql / 8, 1)) if sql > 0 else 10.0
    edges = {round(step * i, 6) for i in range(-2, 13)}
    return sorted(edges | {mql, sql})


def histogram(store: DashboardStats, mql: float, sql: float) -> list[Bucket]:
    edges = bucket_edges(mql, sql)
    bounds: list[tuple[float | None, float | None]] = [(None, edges[0])]
    bounds += list(itertools.pairwise(edges))
    bounds.append((edges[-1], None))
    return [Bucket(low, high, store.count_matching(LeadCount(min_score=low, below_score=high)))
            for low, high in bounds]


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
    buckets = histogram(stats, rules.stages.mql, rules.stages.sql)
    total = sum(b.count for b in buckets)  # every lead is in one bucket: no count of all
    over_time = snapshot.ensure_today(stats, now, total)
    counts = snapshot.current_counts(stats, total)
    email = {s: stats.count_matching(LeadCount(email_status=s)) for s in EMAIL_STATUSES[1:]}
    email = {EMAIL_STATUSES[0]: total - sum(email.values()), **email}
    return Overview(
        total=total,
        mql=rules.stages.mql, sql=rules.stages.sql,
        buckets=buckets,
        stages={s: counts[f"stage:{s}"] for s in STAGES},
        grades={g: counts[f"grade:{g}"] for g in snapshot.GRADES},
        over_time=over_time,
        hot=hot_leads(store, rules, now),
        email=email,
        non_openers=stats.count_matching(LeadCount(non_opener=True)),
        handovers={"sent": stats.count_handovers(True),
                    "failed": stats.count_handovers(False, attempted=True),
                    "pending": stats.count_handovers(False, attempted=False)},
        opens={"human": stats.sum_counter("email_opened"),
               "machine": stats.sum_counter("email_opened_machine")},
        movers_up=stats.top_movers(True, TOP_MOVERS),
        movers_down=stats.top_movers(False, TOP_MOVERS),
        calibration_available=importlib.util.find_spec(
            "leadscore.service.calibration") is not None,
        calibration=stats.latest_calibration())


def _stats(store: LeadStore) -> DashboardStats:
    if not isinstance(store, DashboardStats):
        raise TypeError(f"{type(store).__name__} has no dashboard aggregations")
    return store
