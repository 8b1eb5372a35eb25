"""Visitor records for the in-memory adapter (see `VisitorStore` in port.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

from leadscore.store.port import VisitorEvent, VisitorLink


class MemoryVisitors:
    _lock: threading.Lock

    def _visitors(self) -> tuple[dict[str, dict[str, VisitorEvent]], dict[str, VisitorLink]]:
        if not hasattr(self, "_visitor_events"):
            self._visitor_events: dict[str, dict[str, VisitorEvent]] = {}
            self._visitor_links: dict[str, VisitorLink] = {}
        return self._visitor_events, self._visitor_links

    def save_visitor_events(self, events: Sequence[VisitorEvent]) -> None:
        with self._lock:
            stored, _ = self._visitors()
            for event in events:
                stored.setdefault(event.key, {}).setdefault(event.ledger_key, event)

    def visitor_events(self, key: str, limit: int | None = None) -> list[VisitorEvent]:
        with self._lock:
            stored, _ = self._visitors()
            return _oldest_first(stored.get(key, {}).values())[:limit]

    def trim_visitor_events(self, keys: Sequence[str], keep: int) -> int:
        count = 0
        with self._lock:
            for key in keys:
                events = self._visitors()[0].get(key, {})
                gone = _oldest_first(events.values())[:max(len(events) - keep, 0)]
                for event in gone:
                    del events[event.ledger_key]
                count += len(gone)
        return count

    def drop_visitor_events(self, key: str, ledger_keys: Sequence[str]) -> None:
        with self._lock:
            stored, _ = self._visitors()
            for ledger in ledger_keys:
                stored.get(key, {}).pop(ledger, None)

    def visitor_link(self, key: str) -> VisitorLink | None:
        with self._lock:
            return self._visitors()[1].get(key)

    def put_visitor_link(self, link: VisitorLink) -> None:
        with self._lock:
            self._visitors()[1][link.key] = link

    def erase_visitors(self, lead_id: str) -> int:
        with self._lock:
            stored, links = self._visitors()
            gone = [k for k, link in links.items() if link.lead_id == lead_id]
            for key in gone:
                del links[key]
                stored.pop(key, None)
            return len(gone)

    def purge_visitors(self, now: datetime) -> int:
        with self._lock:
            stored, links = self._visitors()
            count = 0
            for events in stored.values():
                old = [k for k, e in events.items() if e.expires_at <= now]
                for k in old:
                    del events[k]
                count += len(old)
            for key in [k for k, link in links.items() if link.expires_at <= now]:
                del links[key]
                count += 1
            return count


def _oldest_first(events: Iterable[VisitorEvent]) -> list[VisitorEvent]:
    return sorted(events, key=lambda e: (e.expires_at, e.ledger_key))
