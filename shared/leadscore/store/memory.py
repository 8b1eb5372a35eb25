"""In-memory adapter for unit tests: same contract, a lock instead of transactions."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from leadscore.domain.events import Event
from leadscore.domain.handover import StageChange, stage_change
from leadscore.domain.identity import shard_of
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import ViewChange, rebuilt, refreshed
from leadscore.domain.state import HistoryEntry, LeadState, Stage
from leadscore.store.port import ApplyOutcome, order_keys, plan, unique_by_key


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leads: dict[str, LeadState] = {}
        self._history: dict[str, dict[str, HistoryEntry]] = {}
        self._orders: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._handovers: dict[str, StageChange] = {}

    def apply_events(self, lead_id: str, email: str, events: Sequence[Event], rules: Rules,
                     now: datetime) -> ApplyOutcome:
        keyed = unique_by_key(events)
        with self._lock:
            current = self._leads.get(lead_id)
            known = set(self._history.get(lead_id, {}))
            lead, entries = plan(current, known, lead_id, email, keyed, rules, now)
            before = current.stage if current else None
            if lead is None:
                return ApplyOutcome(lead_id=lead_id, applied=0, duplicates=len(events),
                                    created=False, stage_before=before, stage_after=before,
                                    commits=0)
            history = dict(self._history.get(lead_id, {}))
            for entry in entries:
                history[entry.entry_id] = entry
            self._stage_lead_write(lead)
            self._history[lead_id] = history  # commit: all maps change together
            self._leads[lead_id] = lead
            self._outbox(current, lead, now)
            self._orders.update(dict.fromkeys(order_keys(events), lead_id))
        return ApplyOutcome(lead_id=lead_id, applied=len(entries),
                            duplicates=len(events) - len(entries), created=current is None,
                            stage_before=before, stage_after=lead.stage)

    def _stage_lead_write(self, lead: LeadState) -> None:
        """Seam for fault-injection tests: raising here must leave nothing written."""

    def get_lead(self, lead_id: str) -> LeadState | None:
        with self._lock:
            lead = self._leads.get(lead_id)
            return lead.model_copy(deep=True) if lead else None

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        with self._lock:
            entries = list(self._history.get(lead_id, {}).values())
        ordered = sorted(entries, key=lambda e: (e.at, e.entry_id))
        return ordered[-limit:] if limit else ordered

    def list_leads(self, stage: Stage | None = None, min_score: float | None = None,
                   limit: int = 100, non_opener: bool | None = None, grade: str | None = None,
                   after: tuple[float, str] | None = None) -> list[LeadState]:
        with self._lock:
            leads = [lead for lead in self._leads.values()
                     if (stage is None or lead.stage == stage)
                     and (min_score is None or lead.score >= min_score)
                     and (non_opener is None or lead.non_opener == non_opener)
                     and (grade is None or lead.grade == grade)
                     and (after is None or (lead.score, lead.lead_id) < after)]
        return sorted(leads, key=lambda lead: (lead.score, lead.lead_id), reverse=True)[:limit]

    def iter_leads(self, after_id: str | None = None, limit: int = 500) -> list[LeadState]:
        with self._lock:
            ids = sorted(i for i in self._leads if after_id is None or i > after_id)[:limit]
            return [self._leads[i].model_copy(deep=True) for i in ids]

    def due_for_review(self, now: datetime, limit: int = 500,
                       buckets: Sequence[int] | None = None) -> list[LeadState]:
        with self._lock:
            due = [lead for lead in self._leads.values()
                   if lead.next_review_at is not None and lead.next_review_at <= now
                   and (buckets is None or shard_of(lead.lead_id) in buckets)]
        return sorted(due, key=lambda lead: (lead.next_review_at or now, lead.lead_id))[:limit]

    def refresh_view(self, lead_id: str, rules: Rules, now: datetime) -> ViewChange | None:
        with self._lock:
            lead = self._leads.get(lead_id)
            done = refreshed(lead, rules, now) if lead else None
            if done is None:
                return None
            fresh, change, entry = done
            self._stage_lead_write(fresh)
            self._history.setdefault(lead_id, {})[entry.entry_id] = entry
            self._leads[lead_id] = fresh
            self._outbox(lead, fresh, now)
            return change

    def rescore_lead(self, lead_id: str, rules: Rules, now: datetime) -> ViewChange | None:
        with self._lock:
            lead = self._leads.get(lead_id)
            history = sorted(self._history.get(lead_id, {}).values(), key=lambda e: e.at)
            done = rebuilt(lead, history, rules, now) if lead else None
            if done is None:
                return None
            fresh, change, entry = done
            self._history[lead_id][entry.entry_id] = entry
            self._leads[lead_id] = fresh
            self._outbox(lead, fresh, now)
            return change

    def _outbox(self, before: LeadState | None, after: LeadState, now: datetime) -> None:
        change = stage_change(before, after, now)
        if change is not None:
            self._handovers.setdefault(change.id, change)

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        with self._lock:
            due = [h for h in self._handovers.values()
                   if not h.delivered and h.next_attempt_at <= now]
        return sorted(due, key=lambda h: (h.next_attempt_at, h.id))[:limit]

    def record_handover(self, change: StageChange) -> None:
        with self._lock:
            self._handovers[change.id] = change

    def put_lead(self, lead: LeadState) -> None:
        with self._lock:
            self._leads[lead.lead_id] = lead.model_copy(deep=True)

    def claim_token(self, token: str, owner: str) -> bool:
        with self._lock:
            return self._tokens.setdefault(token, owner) == owner

    def order_owner(self, order_key: str) -> str | None:
        with self._lock:
            return self._orders.get(order_key)

    def erase(self, lead_id: str) -> bool:
        with self._lock:
            self._orders = {k: v for k, v in self._orders.items() if v != lead_id}
            self._handovers = {k: v for k, v in self._handovers.items() if v.lead_id != lead_id}
            found = lead_id in self._leads or lead_id in self._history
            self._leads.pop(lead_id, None)
            self._history.pop(lead_id, None)
        return found

    def close(self) -> None:
        """Nothing to release."""
