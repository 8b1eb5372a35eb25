"""The one persistence port. Every adapter passes tests/integration/test_store_contract.py.

Guarantees every adapter gives for `apply_events`:
- atomic per lead: the ledger entries of a group and the lead's facts commit together or
  not at all (an exception means nothing was written: the caller answers 5xx, the sender
  retries);
- exactly once: an event whose ledger key exists already (a retry, a duplicate in the same
  request, a concurrent delivery) changes nothing;
- every concurrent event for one lead counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from leadscore.domain.events import Event, PurchaseMade
from leadscore.domain.handover import StageChange
from leadscore.domain.identity import ledger_key
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import ViewChange, apply_events
from leadscore.domain.state import HistoryEntry, LeadState, Stage


class ApplyOutcome(BaseModel):
    lead_id: str
    applied: int
    duplicates: int
    created: bool
    stage_before: Stage | None
    stage_after: Stage | None
    commits: int = 1


class LeadStore(Protocol):
    def apply_events(self, lead_id: str, email: str, events: Sequence[Event], rules: Rules,
                     now: datetime) -> ApplyOutcome: ...

    def get_lead(self, lead_id: str) -> LeadState | None: ...

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        """The lead's history in time order; with `limit`, only its newest entries."""
        ...

    def list_leads(self, stage: Stage | None = None, min_score: float | None = None,
                   limit: int = 100, non_opener: bool | None = None, grade: str | None = None,
                   after: tuple[float, str] | None = None) -> list[LeadState]:
        """Leads by stored score, highest first (ties by lead id, descending); `after` is the
        (score, lead_id) of the last lead of the previous page."""
        ...

    def rescore_lead(self, lead_id: str, rules: Rules, now: datetime) -> ViewChange | None:
        """Recompute one lead from its events under `rules` and store it with a history
        entry, atomically; None if nothing changed."""
        ...

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        """Stage changes not yet delivered whose next attempt is due."""
        ...

    def record_handover(self, change: StageChange) -> None:
        """Store a handover's delivery state (attempts, next attempt, delivered)."""
        ...

    def iter_leads(self, after_id: str | None = None, limit: int = 500) -> list[LeadState]:
        """Every lead, a page at a time in lead id order (rescoring, reports, exports)."""
        ...

    def due_for_review(self, now: datetime, limit: int = 500,
                       buckets: Sequence[int] | None = None) -> list[LeadState]:
        """Leads whose view is stale at `now`, oldest first, by an indexed query (never a
        scan); `buckets` limits them to those shards (`identity.shard_of`)."""
        ...

    def refresh_view(self, lead_id: str, rules: Rules, now: datetime) -> ViewChange | None:
        """Re-materialise one lead at `now` and record the change in its history, atomically
        and only if something changed (so two runs at the same `now` equal one)."""
        ...

    def put_lead(self, lead: LeadState) -> None:
        """Overwrite one lead document (seeding, benchmarks' raw write rate)."""
        ...

    def claim_token(self, token: str, owner: str) -> bool:
        """Remember a one-use signing token; True if it is new or was claimed by `owner`
        before (a retry of the same delivery), False if another request used it (a replay)."""
        ...

    def order_owner(self, order_key: str) -> str | None:
        """The lead id that paid `platform:order_id`, for refunds that name no buyer."""
        ...

    def erase(self, lead_id: str) -> bool: ...

    def close(self) -> None: ...


def order_keys(events: Sequence[Event]) -> set[str]:
    """Orders these events pay or refund: written to the order index with the lead."""
    return {f"{e.source}:{e.order_id}" for e in events if isinstance(e, PurchaseMade)}


def unique_by_key(events: Sequence[Event]) -> list[tuple[str, Event]]:
    """Drop duplicates inside one group, keeping the first delivery of each event."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(ledger_key(event.source, event.idempotency_key), event)
    return list(seen.items())


def plan(current: LeadState | None, known: set[str], lead_id: str, email: str,
         keyed: list[tuple[str, Event]], rules: Rules,
         now: datetime) -> tuple[LeadState | None, list[HistoryEntry]]:
    """For read-modify-write adapters: the new lead and entries, or (None, []) if all known."""
    fresh = [event for key, event in keyed if key not in known]
    if not fresh:
        return None, []
    return apply_events(current, lead_id, email, fresh, rules, now)
