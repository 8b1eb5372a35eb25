"""Visitor records for the SQLite adapter (see `VisitorStore` in port.py): two tables apart
from the leads, one row per anonymous event and one per visitor link."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from leadscore.store.port import VisitorEvent, VisitorLink

VISITOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS visitor_events (
    key TEXT NOT NULL,
    ledger_key TEXT NOT NULL,
    expires_at REAL NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (key, ledger_key)
);
CREATE INDEX IF NOT EXISTS visitor_events_expiry ON visitor_events (expires_at);
CREATE TABLE IF NOT EXISTS visitor_links (
    key TEXT PRIMARY KEY,
    lead_id TEXT,
    expires_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS visitor_links_by_lead ON visitor_links (lead_id);
CREATE INDEX IF NOT EXISTS visitor_links_expiry ON visitor_links (expires_at);
"""


class SqliteVisitors:
    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # SqliteStore's

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def save_visitor_events(self, events: Sequence[VisitorEvent]) -> None:
        if not events:
            return
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO visitor_events (key, ledger_key, expires_at, doc) "
                "VALUES (?, ?, ?, ?)",
                [(e.key, e.ledger_key, e.expires_at.timestamp(), e.model_dump_json())
                 for e in events])

    def visitor_events(self, key: str, limit: int | None = None) -> list[VisitorEvent]:
        rows = self._conn().execute(
            "SELECT doc FROM visitor_events WHERE key = ? ORDER BY expires_at, ledger_key "
            "LIMIT ?", (key, -1 if limit is None else limit)).fetchall()
        return [VisitorEvent.model_validate_json(r[0]) for r in rows]

    def trim_visitor_events(self, keys: Sequence[str], keep: int) -> int:
        if not keys:
            return 0
        count = 0
        with self._tx() as conn:
            for key in keys:  # most keys are under the cap: an index walk says so, no sort
                if conn.execute("SELECT 1 FROM visitor_events WHERE key = ? LIMIT 1 OFFSET ?",
                                (key, keep)).fetchone() is None:
                    continue
                count += conn.execute(
                    "DELETE FROM visitor_events WHERE key = ? AND ledger_key IN ("
                    " SELECT ledger_key FROM visitor_events WHERE key = ?"
                    " ORDER BY expires_at DESC, ledger_key DESC LIMIT -1 OFFSET ?)",
                    (key, key, keep)).rowcount
        return count

    def drop_visitor_events(self, key: str, ledger_keys: Sequence[str]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM visitor_events WHERE key = ? AND ledger_key = ?",
                             [(key, k) for k in ledger_keys])

    def visitor_link(self, key: str) -> VisitorLink | None:
        row = self._conn().execute("SELECT doc FROM visitor_links WHERE key = ?",
                                   (key,)).fetchone()
        return VisitorLink.model_validate_json(row[0]) if row else None

    def put_visitor_link(self, link: VisitorLink) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO visitor_links (key, lead_id, expires_at, doc) "
                         "VALUES (?, ?, ?, ?)", (link.key, link.lead_id,
                                                 link.expires_at.timestamp(),
                                                 link.model_dump_json()))

    def erase_visitors(self, lead_id: str) -> int:
        with self._tx() as conn:
            keys = [r[0] for r in conn.execute(
                "SELECT key FROM visitor_links WHERE lead_id = ?", (lead_id,)).fetchall()]
            conn.executemany("DELETE FROM visitor_events WHERE key = ?", [(k,) for k in keys])
            conn.execute("DELETE FROM visitor_links WHERE lead_id = ?", (lead_id,))
        return len(keys)

    def purge_visitors(self, now: datetime) -> int:
        with self._tx() as conn:
            cut = now.timestamp()
            count = conn.execute("DELETE FROM visitor_events WHERE expires_at <= ?",
                                 (cut,)).rowcount
            count += conn.execute("DELETE FROM visitor_links WHERE expires_at <= ?",
                                  (cut,)).rowcount
        return int(count)



