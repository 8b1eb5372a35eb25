"""Dashboard aggregations for the in-memory fake (see `DashboardStats` in port.py).

The statistics (`lead_stats`) are kept by the leads' map itself (`CountedLeads`): every
path that stores or drops a lead goes through it, like SQLite's triggers."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from leadscore.domain import lead_stats as counting
from leadscore.domain.outbox import StageChange
from leadscore.domain.state import LeadState, Stage
from leadscore.store.port import LeadCount

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def matches(lead: LeadState, query: LeadCount) -> bool:
    return ((query.stage is None or lead.stage == query.stage)
            and (query.grade is None or lead.grade == query.grade)
            and (query.email_status is None or lead.email_status == query.email_status)
            and (query.non_opener is None or lead.non_opener == query.non_opener)
            and (query.min_score is None or lead.score >= query.min_score)
            and (query.below_score is None or lead.score < query.below_score))


def _counted(lead: LeadState | None) -> list[str] | None:
    if lead is None:
        return []
    return lead.counted if lead.counted is not None else [f"{counting.UNCOUNTED}=1"]


class CountedLeads(dict[str, LeadState]):
    """The leads by id, with the sum of their `counted` kept beside them (`totals`)."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, int] = {}

    def __setitem__(self, lead_id: str, lead: LeadState) -> None:
        counting.add(self.totals, counting.change(_counted(self.get(lead_id)), _counted(lead)))
        super().__setitem__(lead_id, lead)

    def __delitem__(self, lead_id: str) -> None:
        counting.add(self.totals, counting.change(_counted(self.get(lead_id)), []))
        super().__delitem__(lead_id)

    def pop(self, lead_id: str, *default: Any) -> Any:
        if lead_id in self:
            counting.add(self.totals, counting.change(_counted(self[lead_id]), []))
        return super().pop(lead_id, *default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("set leads one at a time, so they are counted")

    def setdefault(self, *args: Any) -> Any:
        raise NotImplementedError("set leads one at a time, so they are counted")

    def popitem(self) -> Any:
        raise NotImplementedError("drop leads by id, so they are counted")

    def clear(self) -> None:
        super().clear()
        self.totals.clear()


class MemoryStats:
    _lock: threading.Lock
    _leads: dict[str, LeadState]
    _handovers: dict[str, StageChange]

    def _days(self) -> dict[str, dict[str, int]]:
        if not hasattr(self, "_snapshot_days"):
            self._snapshot_days: dict[str, dict[str, int]] = {}
        return self._snapshot_days

    def lead_stats(self, complete_only: bool = True) -> dict[str, int] | None:
        with self._lock:
            leads = self._leads
            totals = dict(leads.totals) if isinstance(leads, CountedLeads) else {}
        return None if complete_only and totals.get(counting.UNCOUNTED, 0) else totals

    def mark_stats_complete(self) -> None:
        """Nothing to mark: every lead is counted, `uncounted` says what is missing."""

    def count_matching(self, query: LeadCount) -> int:
        with self._lock:
            return sum(1 for lead in self._leads.values() if matches(lead, query))

    def count_handovers(self, delivered: bool, attempted: bool | None = None,
                        given_up: bool | None = None) -> int:
        with self._lock:
            return sum(1 for c in self._handovers.values() if c.delivered == delivered and (
                attempted is None or (c.attempts > 0) == attempted) and (
                given_up is None or c.given_up == given_up))

    def put_snapshot(self, day: str, counts: dict[str, int]) -> None:
        with self._lock:
            self._days()[day] = dict(counts)

    def snapshots(self, limit: int = 30) -> dict[str, dict[str, int]]:
        with self._lock:
            days = sorted(self._days())[-limit:]
            return {d: dict(self._days()[d]) for d in days}

    def newest_in_stage(self, stage: Stage, limit: int) -> list[LeadState]:
        with self._lock:
            found = [x for x in self._leads.values() if x.stage == stage]
        found.sort(key=lambda x: (x.stage_since or EPOCH, x.lead_id), reverse=True)
        return [x.model_copy(deep=True) for x in found[:limit]]

    def top_movers(self, up: bool, limit: int) -> list[LeadState]:
        with self._lock:
            found = [x for x in self._leads.values() if (x.movement > 0 if up else x.movement < 0)]
        found.sort(key=lambda x: (-x.movement if up else x.movement, x.lead_id))
        return [x.model_copy(deep=True) for x in found[:limit]]

    def sum_counter(self, name: str) -> int:
        with self._lock:
            return sum(max(0, x.counters.get(name, 0)) for x in self._leads.values())

    def put_calibration(self, report: dict[str, Any]) -> None:
        with self._lock:
            self._calibration = json.loads(json.dumps(report))  # a stored copy, like a store

    def latest_calibration(self) -> dict[str, Any] | None:
        with self._lock:
            found: dict[str, Any] | None = getattr(self, "_calibration", None)
            return json.loads(json.dumps(found)) if found is not None else None
