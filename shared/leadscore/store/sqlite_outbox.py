"""Outbox claims for the SQLite adapter (see `OutboxClaims` in port.py).

Each worker of `serve --workers N` opens its own connection to the file; a claim is one
`BEGIN IMMEDIATE` transaction (the file's write lock) that selects the due rows and moves
their next attempt to the lease's end, so two processes never take the same row at once.
The CRM erasures have their own table: `erase` leaves it alone, since it is what finishes
an erasure in the CRM.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TypeVar

from leadscore.domain.outbox import StageChange
from leadscore.store.port import CrmErasure

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS crm_erasures (
    id TEXT PRIMARY KEY,
    next_attempt_at REAL NOT NULL,
    doc TEXT NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS crm_erasures_due ON crm_erasures (next_attempt_at);
"""
# after `expires_at` is added to an older database's table (sqlite_retention.py)
OUTBOX_INDEXES = """
CREATE INDEX IF NOT EXISTS crm_erasures_by_expiry ON crm_erasures (expires_at);
"""


Item = TypeVar("Item", StageChange, CrmErasure)


class SqliteOutbox:
    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # SqliteStore's

    def _claim(self, table: str, undelivered: str, kind: type[Item], now: datetime,
               until: datetime, limit: int, by: str = "next_attempt_at") -> list[Item]:
        due = f"SELECT doc FROM {table} WHERE {undelivered} {by} <= ? "  # noqa: S608
        if self._conn().execute(due + "LIMIT 1", (now.timestamp(),)).fetchone() is None:
            return []  # nothing due: no write lock taken (every CRM run and sweep asks)
        with self._tx() as conn:  # BEGIN IMMEDIATE: one claimer at a time, every process
            rows = conn.execute(due + f"ORDER BY {by}, id LIMIT ?",
                                (now.timestamp(), limit)).fetchall()
            taken = [kind.model_validate_json(r[0]).model_copy(update={"next_attempt_at": until})
                     for r in rows]
            conn.executemany(f"UPDATE {table} SET next_attempt_at = ?, doc = ? WHERE id = ?",  # noqa: S608
                             [(until.timestamp(), i.model_dump_json(), i.id) for i in taken])
        return taken

    def claim_handovers(self, now: datetime, until: datetime,
                        limit: int = 100) -> list[StageChange]:
        return self._claim("handovers", "delivered = 0 AND", StageChange, now, until, limit)

    def record_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        with self._tx() as conn:
            conn.executemany("INSERT OR REPLACE INTO crm_erasures (id, next_attempt_at, doc, "
                             "expires_at) VALUES (?, ?, ?, ?)",
                             [(i.id, i.next_attempt_at.timestamp(), i.model_dump_json(),
                               i.expires_at.timestamp()) for i in items])

    def update_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        with self._tx() as conn:
            conn.executemany("UPDATE crm_erasures SET next_attempt_at = ?, doc = ? WHERE id = ?",
                             [(i.next_attempt_at.timestamp(), i.model_dump_json(), i.id)
                              for i in items])

    def claim_crm_erasures(self, now: datetime, until: datetime, limit: int = 100,
                           expired: bool = False) -> list[CrmErasure]:
        return self._claim("crm_erasures", "", CrmErasure, now, until, limit,
                           "expires_at" if expired else "next_attempt_at")

    def forget_crm_erasures(self, ids: Sequence[str]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM crm_erasures WHERE id = ?", [(i,) for i in ids])
