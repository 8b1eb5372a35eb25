"""In-memory adapter for unit tests: same contract, a lock instead of transactions.

It offers `transact` only (no blind path): with one writer at a time there is nothing to gain."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from leadscore.domain.identity import shard_of
from leadscore.domain.outbox import StageChange
from leadscore.domain.state import HistoryEntry, LeadState, Order, Stage
from leadscore.store.memory_outbox import MemoryOutbox
from leadscore.store.memory_rekey import MemoryRekey
from leadscore.store.memory_stats import CountedLeads, MemoryStats
from leadscore.store.memory_visitors import MemoryVisitors
from leadscore.store.port import (
    TOMBSTONE_KEPT,
    CrmErasure,
    EspSynced,
    LeadSnapshot,
    LeadWrite,
    Plan,
    R,
    Tombstone,
)


def _ordered(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(entries, key=lambda e: (e.at, e.entry_id))


class MemoryStore(MemoryVisitors, MemoryStats, MemoryRekey, MemoryOutbox):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leads: dict[str, LeadState] = CountedLeads()  # keeps the dashboard's sums
        self._history: dict[str, dict[str, HistoryEntry]] = {}
        self._orders: dict[str, str] = {}
        self._aliases: dict[str, tuple[str, str | None]] = {}  # alias -> (key, lead id)
        self._order_records: dict[str, dict[str, Order]] = {}  # lead id -> key -> record
        self._tokens: dict[str, str] = {}
        self._expiry: dict[str, datetime] = {}  # alias -> its expires_at (erased orders)
        self._token_expiry: dict[str, datetime] = {}
        self._handovers: dict[str, StageChange] = {}
        self._tombstones: dict[str, Tombstone] = {}
        self._esp: dict[tuple[str, str], EspSynced] = {}
        self._crm_erasures: dict[str, CrmErasure] = {}  # never erased with a lead

    # -- the unit of work's primitives ----------------------------------------------------
    def read(self, lead_id: str, ledger_keys: Sequence[str] = (),
             with_history: bool = False) -> LeadSnapshot:
        with self._lock:
            return self._snapshot(lead_id, ledger_keys, with_history)

    def _snapshot(self, lead_id: str, ledger_keys: Sequence[str],
                  with_history: bool, order_keys: Sequence[str] = ()) -> LeadSnapshot:
        lead = self._leads.get(lead_id)
        entries = self._history.get(lead_id, {})
        records = self._order_records.get(lead_id, {})
        return LeadSnapshot(lead_id=lead_id, lead=lead.model_copy(deep=True) if lead else None,
                            known={k for k in ledger_keys if k in entries},
                            history=_ordered(entries.values()) if with_history else [],
                            orders={k: records[k].model_copy(deep=True) for k in order_keys
                                    if k in records},
                            tombstone=self._tombstones.get(lead_id))

    def transact(self, lead_id: str, ledger_keys: Sequence[str], plan: Plan[R],
                 with_history: bool = False, order_keys: Sequence[str] = ()) -> R:
        with self._lock:  # one writer at a time: a snapshot is never stale
            write, result = plan(self._snapshot(lead_id, ledger_keys, with_history,
                                                order_keys))
            if write is not None:
                self._commit(lead_id, write)
        return result

    def _commit(self, lead_id: str, write: LeadWrite) -> None:
        """Stage every part in copies, then swap them in together: a fault at any step
        leaves nothing written."""
        history = dict(self._history.get(lead_id, {}))
        for entry in write.history:
            history.setdefault(entry.entry_id, entry)
        self._after_staging("history")
        lead = write.lead
        self._stage_lead_write(lead)
        self._after_staging("lead")
        handovers = dict(self._handovers)
        for change in write.outbox:
            handovers.setdefault(change.id, change)
        self._after_staging("outbox")
        orders = {**self._orders, **dict.fromkeys(write.orders, lead_id)}
        aliases = {**self._aliases,
                   **{alias: (key, lead_id) for alias, key in write.aliases.items()}}
        records = {**self._order_records.get(lead_id, {}), **write.order_records}
        self._after_staging("orders")
        self._history[lead_id], self._leads[lead_id] = history, lead
        self._handovers, self._orders, self._aliases = handovers, orders, aliases
        self._order_records[lead_id] = records

    def _stage_lead_write(self, lead: LeadState) -> None:
        """Seam for fault-injection tests: raising here must leave nothing written."""

    def _after_staging(self, step: str) -> None:
        """Seam for fault-injection tests, after each part of a commit is staged."""

    def get_lead(self, lead_id: str) -> LeadState | None:
        with self._lock:
            lead = self._leads.get(lead_id)
            return lead.model_copy(deep=True) if lead else None

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        with self._lock:
            entries = list(self._history.get(lead_id, {}).values())
        ordered = _ordered(entries)
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

    def count_leads(self) -> int:
        with self._lock:
            return len(self._leads)

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

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        with self._lock:
            due = [h for h in self._handovers.values()
                   if not h.delivered and h.next_attempt_at <= now]
        return sorted(due, key=lambda h: (h.next_attempt_at, h.id))[:limit]

    def record_handover(self, change: StageChange, lease: datetime | None = None) -> bool:
        with self._lock:
            held = self._handovers.get(change.id)
            if held is None:  # erased meanwhile: not written back
                return False
            if lease is not None and (held.delivered or held.next_attempt_at != lease):
                return False  # no longer this sweeper's claim
            # the stored lead id stands: a re-key may have moved the change since the read
            self._handovers[change.id] = change.model_copy(update={"lead_id": held.lead_id},
                                                           deep=True)
            return True

    def purge_handovers(self, now: datetime) -> int:
        with self._lock:
            expired = [k for k, c in self._handovers.items()
                       if c.delivered and c.expires_at is not None and c.expires_at <= now]
            for key in expired:
                del self._handovers[key]
        return len(expired)

    def esp_synced(self, tool: str, lead_ids: Sequence[str]) -> dict[str, EspSynced]:
        with self._lock:
            return {i: self._esp[(tool, i)].model_copy(deep=True) for i in lead_ids
                    if (tool, i) in self._esp}

    def record_esp_synced(self, records: Sequence[EspSynced]) -> None:
        with self._lock:
            for record in records:
                self._esp[(record.tool, record.lead_id)] = record.model_copy(deep=True)

    def put_lead(self, lead: LeadState) -> None:
        with self._lock:
            self._leads[lead.lead_id] = lead.model_copy(deep=True)

    def claim_token(self, token: str, owner: str, expires_at: datetime | None = None) -> bool:
        with self._lock:  # the first claim's expiry stays (purge_used_tokens)
            if token not in self._tokens and expires_at is not None:
                self._token_expiry[token] = expires_at
            return self._tokens.setdefault(token, owner) == owner

    def purge_used_tokens(self, now: datetime) -> int:
        with self._lock:
            gone = [token for token, at in self._token_expiry.items() if at <= now]
            for token in gone:
                del self._tokens[token], self._token_expiry[token]
            return len(gone)

    def order_owner(self, order_key: str) -> str | None:
        with self._lock:
            return self._orders.get(order_key)

    def orders_of(self, lead_id: str) -> dict[str, Order]:
        with self._lock:
            return {k: o.model_copy(deep=True)
                    for k, o in self._order_records.get(lead_id, {}).items()}

    def order_record(self, lead_id: str, order_key: str) -> Order | None:
        with self._lock:
            found = self._order_records.get(lead_id, {}).get(order_key)
            return found.model_copy(deep=True) if found else None

    def order_alias(self, alias: str) -> str | None:
        with self._lock:
            found = self._aliases.get(alias)
        return found[0] if found else None

    def record_aliases(self, aliases: Mapping[str, str],
                       expires_at: datetime | None = None) -> None:
        with self._lock:  # an erased order's marker expires (purge_expired_erasures)
            for alias, key in aliases.items():
                self._aliases[alias] = (key, self._aliases.get(alias, ("", None))[1])
                if expires_at is None:
                    self._expiry.pop(alias, None)
                else:
                    self._expiry[alias] = expires_at

    def purge_expired_erasures(self, now: datetime) -> int:
        with self._lock:
            old = [i for i, s in self._tombstones.items()
                   if s.erased_at <= now - TOMBSTONE_KEPT]
            gone = [a for a, at in self._expiry.items() if at <= now]
            for lead_id in old:
                del self._tombstones[lead_id]
            for alias in gone:
                self._aliases.pop(alias, None)
                del self._expiry[alias]
            return len(old) + len(gone)

    def move_away(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        with self._lock:  # the same lock as `transact`, like an erasure's tombstone
            if not self._record_move_locked(lead_id, moved_to, moved_at):
                return False
            found = self._erase_locked(lead_id, None)
        self.erase_visitors(lead_id)
        return found

    def record_move(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        with self._lock:
            return self._record_move_locked(lead_id, moved_to, moved_at)

    def _record_move_locked(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        mine, theirs = self._tombstones.get(lead_id), self._tombstones.get(moved_to)
        if mine is not None and mine.moved_to is None:
            return False  # an erasure stays an erasure
        if theirs is not None and theirs.moved_to is None:
            lead = self._leads.get(moved_to)
            if lead is None or not theirs.restarted(lead):
                return False  # erased there: the record would send writes nowhere
        elif theirs is not None:
            del self._tombstones[moved_to]  # a move back: the new id holds a lead again
        for old_id, stone in self._tombstones.items():
            if stone.moved_to == lead_id:
                self._tombstones[old_id] = stone.model_copy(update={"moved_to": moved_to})
        self._tombstones[lead_id] = Tombstone(erased_at=moved_at, moved_to=moved_to)
        return True

    def forget_move(self, lead_id: str, moved_to: str) -> bool:
        with self._lock:
            stone = self._tombstones.get(lead_id)
            if stone is None or stone.moved_to != moved_to:
                return False
            del self._tombstones[lead_id]
            return True

    def tombstone(self, lead_id: str) -> Tombstone | None:
        with self._lock:
            return self._tombstones.get(lead_id)

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        with self._lock:  # the same lock as `transact`: atomic with every write
            found = self._erase_locked(lead_id, erased_at)
        self.erase_visitors(lead_id)
        return found

    def erase_leftover(self, lead_id: str) -> bool:
        with self._lock:
            stone, lead = self._tombstones.get(lead_id), self._leads.get(lead_id)
            if stone is None or lead is None or stone.restarted(lead):
                return False
            return self._erase_locked(lead_id, None)

    def _erase_locked(self, lead_id: str, erased_at: datetime | None) -> bool:
        """`erase` under the caller's lock (also the re-keying of a lead whose new id is
        erased, `MemoryRekey`); the visitor records are the caller's to erase."""
        if erased_at is not None:  # a moved record of this id becomes a plain tombstone,
            self._tombstones[lead_id] = Tombstone(erased_at=erased_at)  # and those to it go
            self._tombstones = {i: s for i, s in self._tombstones.items()
                                if s.moved_to != lead_id}
        self._orders = {k: v for k, v in self._orders.items() if v != lead_id}
        self._aliases = {k: v for k, v in self._aliases.items() if v[1] != lead_id}
        self._order_records.pop(lead_id, None)
        self._handovers = {k: v for k, v in self._handovers.items() if v.lead_id != lead_id}
        self._esp = {k: v for k, v in self._esp.items() if k[1] != lead_id}
        found = lead_id in self._leads or lead_id in self._history
        self._leads.pop(lead_id, None)
        self._history.pop(lead_id, None)
        return found

    def close(self) -> None:
        """Nothing to release."""
