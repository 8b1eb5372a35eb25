"""Re-keying for the SQLite adapter (see `Rekeyable` in port.py): one `BEGIN IMMEDIATE`
transaction per lead, so no writer ever sees half a move and a crash leaves none. The new
id's tombstone is read in that transaction: a lead whose address was erased meanwhile is
erased under its old id instead of moved (it would come back under the erased id). A moved
record there (Mailchimp's `upemail`) is no erasure: the lead is kept as it is, and
`service/rekey.py` re-keys it onto the lead the address moved to."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from leadscore.domain.state import HistoryEntry, LeadState, Order
from leadscore.store.port import Merge


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # as SqliteStore orders history times

# Tables whose rows name the lead (and a JSON document that repeats its id), moved as is.
_REPOINT = [
    "UPDATE order_index SET lead_id = :new WHERE lead_id = :old",
    "UPDATE order_aliases SET lead_id = :new WHERE lead_id = :old",
    "UPDATE handovers SET lead_id = :new, doc = json_set(doc, '$.lead_id', :new) "
    "WHERE lead_id = :old",
    "UPDATE visitor_links SET lead_id = :new, doc = json_set(doc, '$.lead_id', :new) "
    "WHERE lead_id = :old",
    # a record the new id has already wins (it is the newer); the old one goes below
    "INSERT OR IGNORE INTO esp_sync (tool, lead_id, doc) SELECT tool, :new, "
    "json_set(doc, '$.lead_id', :new) FROM esp_sync WHERE lead_id = :old",
    "INSERT OR IGNORE INTO history (lead_id, entry_id, at, doc) "
    "SELECT :new, entry_id, at, doc FROM history WHERE lead_id = :old",
]
_DROP_OLD = ["esp_sync", "history", "order_records", "leads"]


class SqliteRekey:
    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def _stage_lead_write(self, conn: sqlite3.Connection, lead: LeadState) -> None:
        raise NotImplementedError  # SqliteStore's

    def _erase_rows(self, conn: sqlite3.Connection, lead_id: str,
                    erased_at: datetime | None) -> bool:
        raise NotImplementedError  # SqliteStore's

    def erase_visitors(self, lead_id: str) -> int:
        raise NotImplementedError  # SqliteVisitors'

    def rekey_lead(self, old_id: str, new_id: str, merge: Merge) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM leads WHERE lead_id = ?", (old_id,)).fetchone()
            if row is None:
                return False
            stone = conn.execute("SELECT erased_at, moved_to FROM tombstones "
                                 "WHERE lead_id = ?", (new_id,)).fetchone()
            if stone is not None and stone[1] is not None:
                return False  # moved away (`upemail`), no erasure: kept (see the module)
            if stone is None:
                self._move(conn, row[0], old_id, new_id, merge)
            else:  # erased meanwhile: the old lead goes too, it never moves
                self._erase_rows(conn, old_id, datetime.fromisoformat(stone[0]))
        if stone is not None:
            self.erase_visitors(old_id)
        return stone is None

    def _move(self, conn: sqlite3.Connection, old_doc: str, old_id: str, new_id: str,
              merge: Merge) -> None:
        ids = {"old": old_id, "new": new_id}
        target = conn.execute("SELECT doc FROM leads WHERE lead_id = ?", (new_id,)).fetchone()
        for statement in _REPOINT:
            conn.execute(statement, ids)
        history = [HistoryEntry.model_validate_json(doc) for (doc,) in conn.execute(
            "SELECT doc FROM history WHERE lead_id = ? ORDER BY at, entry_id", (new_id,))]
        records = {key: Order.model_validate_json(doc) for key, doc in conn.execute(
            "SELECT order_key, doc FROM order_records WHERE lead_id IN (?, ?) "
            "ORDER BY lead_id = ?", (old_id, new_id, new_id))}  # the new id's win
        merged = merge(LeadState.model_validate_json(old_doc),
                       LeadState.model_validate_json(target[0]) if target else None,
                       history, records)
        lead, records = merged.lead, merged.records
        for table in _DROP_OLD:
            conn.execute(f"DELETE FROM {table} WHERE lead_id = ?", (old_id,))  # noqa: S608
        conn.execute("DELETE FROM order_records WHERE lead_id = ?", (new_id,))
        conn.executemany("INSERT INTO order_records (lead_id, order_key, doc) "
                         "VALUES (?, ?, ?)", [(new_id, k, o.model_dump_json())
                                              for k, o in records.items()])
        self._stage_lead_write(conn, lead)
        conn.executemany("INSERT OR IGNORE INTO history (lead_id, entry_id, at, doc) "
                         "VALUES (?, ?, ?, ?)", [(new_id, e.entry_id, _utc(e.at),
                                                  e.model_dump_json()) for e in merged.history])
        conn.executemany("INSERT OR IGNORE INTO handovers (id, lead_id, delivered, "
                         "next_attempt_at, doc) VALUES (?, ?, 0, ?, ?)",
                         [(c.id, c.lead_id, c.next_attempt_at.timestamp(), c.model_dump_json())
                          for c in merged.outbox])
