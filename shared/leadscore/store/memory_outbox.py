"""Outbox claims for the memory adapter (see `OutboxClaims` in port.py): under the store's
one lock, so a claim is atomic with every other write."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from leadscore.domain.outbox import StageChange
from leadscore.store.port import CrmErasure

Item = TypeVar("Item", StageChange, CrmErasure)


class MemoryOutbox:
    _lock: threading.Lock
    _handovers: dict[str, StageChange]
    _crm_erasures: dict[str, CrmErasure]

    def _claim(self, items: dict[str, Item], now: datetime, until: datetime,
               limit: int, by: str = "next_attempt_at") -> list[Item]:
        """Under the store's lock: the due items (a delivered handover never is), leased."""
        due = sorted((i for i in items.values()
                      if getattr(i, by) <= now and not getattr(i, "delivered", False)),
                     key=lambda i: (getattr(i, by), i.id))[:limit]
        for item in due:
            items[item.id] = item.model_copy(update={"next_attempt_at": until})
        return [items[i.id].model_copy() for i in due]

    def claim_handovers(self, now: datetime, until: datetime,
                        limit: int = 100) -> list[StageChange]:
        with self._lock:
            return self._claim(self._handovers, now, until, limit)

    def record_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        with self._lock:
            self._crm_erasures.update((i.id, i.model_copy()) for i in items)

    def update_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        with self._lock:
            self._crm_erasures.update((i.id, i.model_copy()) for i in items
                                      if i.id in self._crm_erasures)

    def claim_crm_erasures(self, now: datetime, until: datetime, limit: int = 100,
                           expired: bool = False) -> list[CrmErasure]:
        with self._lock:
            return self._claim(self._crm_erasures, now, until, limit,
                               "expires_at" if expired else "next_attempt_at")

    def forget_crm_erasures(self, ids: Sequence[str]) -> None:
        with self._lock:
            for key in ids:
                self._crm_erasures.pop(key, None)
