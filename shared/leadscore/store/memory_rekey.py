"""Re-keying for the in-memory adapter (see `Rekeyable` in port.py): one lock, so the move
is atomic with respect to every writer. Under it the new id's tombstone is read: a lead
whose address was erased meanwhile is erased under its old id instead of moved. A moved
record there (Mailchimp's `upemail`) is no erasure: the lead is kept as it is, and
`service/rekey.py` re-keys it onto the lead the address moved to."""

from __future__ import annotations

import threading
from datetime import datetime

from leadscore.domain.outbox import StageChange
from leadscore.domain.state import HistoryEntry, LeadState, Order
from leadscore.store.port import EspSynced, Merge, Tombstone, VisitorEvent, VisitorLink


class MemoryRekey:
    _lock: threading.Lock
    _leads: dict[str, LeadState]
    _history: dict[str, dict[str, HistoryEntry]]
    _orders: dict[str, str]
    _aliases: dict[str, tuple[str, str | None]]
    _order_records: dict[str, dict[str, Order]]
    _handovers: dict[str, StageChange]
    _esp: dict[tuple[str, str], EspSynced]
    _tombstones: dict[str, Tombstone]

    def _erase_locked(self, lead_id: str, erased_at: datetime | None) -> bool:
        raise NotImplementedError  # MemoryStore's

    def erase_visitors(self, lead_id: str) -> int:
        raise NotImplementedError  # MemoryVisitors'

    def _visitors(self) -> tuple[dict[str, dict[str, VisitorEvent]], dict[str, VisitorLink]]:
        raise NotImplementedError  # MemoryVisitors'

    def rekey_lead(self, old_id: str, new_id: str, merge: Merge) -> bool:
        with self._lock:
            old = self._leads.get(old_id)
            if old is None:
                return False
            stone = self._tombstones.get(new_id)
            if stone is not None and stone.moved_to is not None:
                return False  # moved away (`upemail`), no erasure: kept (see the module)
            if stone is None:
                self._move_locked(old, old_id, new_id, merge)
            else:  # erased meanwhile: the old lead goes too, it never moves
                self._erase_locked(old_id, stone.erased_at)
        if stone is not None:
            self.erase_visitors(old_id)
        return stone is None

    def _move_locked(self, old: LeadState, old_id: str, new_id: str, merge: Merge) -> None:
        history = {**self._history.get(old_id, {}), **self._history.get(new_id, {})}
        records = {**self._order_records.get(old_id, {}),
                   **self._order_records.get(new_id, {})}
        merged = merge(old.model_copy(deep=True),
                       (t.model_copy(deep=True) if (t := self._leads.get(new_id)) else None),
                       sorted(history.values(), key=lambda e: (e.at, e.entry_id)), records)
        lead, records = merged.lead, merged.records
        for entry in merged.history:
            history.setdefault(entry.entry_id, entry)
        self._leads[new_id], self._history[new_id] = lead, history
        self._order_records[new_id] = records
        self._orders = {k: new_id if v == old_id else v for k, v in self._orders.items()}
        self._aliases = {a: (k, new_id if owner == old_id else owner)
                         for a, (k, owner) in self._aliases.items()}
        self._handovers = {i: c.model_copy(update={"lead_id": new_id})
                           if c.lead_id == old_id else c for i, c in self._handovers.items()}
        for change in merged.outbox:
            self._handovers.setdefault(change.id, change)
        for (tool, owner), record in list(self._esp.items()):
            if owner == old_id:
                del self._esp[(tool, owner)]
                self._esp.setdefault((tool, new_id),
                                     record.model_copy(update={"lead_id": new_id}))
        links = self._visitors()[1]
        for key, link in list(links.items()):
            if link.lead_id == old_id:
                links[key] = link.model_copy(update={"lead_id": new_id})
        self._leads.pop(old_id, None)
        self._history.pop(old_id, None)
        self._order_records.pop(old_id, None)
