"""Re-keying for the SQLite adapter (see `Rekeyable` in port.py): one `BEGIN IMMEDIATE`
transaction per lead, so no writer ever sees half a move and a crash leaves none."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from leadscore.domain.state import HistoryEntry, LeadState, Order
from leadscore.store.port import Merge

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

    def rekey_lead(self, old_id: str, new_id: str, merge: Merge) -> bool:
        ids = {"old": old_id, "new": new_id}
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM leads WHERE lead_id = ?", (old_id,)).fetchone()
            if row is None:
                return False
            target = conn.execute("SELECT doc FROM leads WHERE lead_id = ?",
                                  (new_id,)).fetchone()
            for statement in _REPOINT:
                conn.execute(statement, ids)
            history = [HistoryEntry.model_validate_json(doc) for (doc,) in conn.execute(
                "SELECT doc FROM history WHERE lead_id = ? ORDER BY at, entry_id", (new_id,))]
            records = {key: Order.model_validate_json(doc) for key, doc in conn.execute(
                "SELECT order_key, doc FROM order_records WHERE lead_id IN (?, ?) "
                "ORDER BY lead_id = ?", (old_id, new_id, new_id))}  # the new id's win
            lead, records = merge(LeadState.model_validate_json(row[0]),
                                  LeadState.model_validate_json(target[0]) if target else None,
                                  history, records)
            for table in _DROP_OLD:
                conn.execute(f"DELETE FROM {table} WHERE lead_id = ?", (old_id,))  # noqa: S608
            conn.execute("DELETE FROM order_records WHERE lead_id = ?", (new_id,))
            conn.executemany("INSERT INTO order_records (lead_id, order_key, doc) "
                             "VALUES (?, ?, ?)", [(new_id, k, o.model_dump_json())
                                                  for k, o in records.items()])
            self._stage_lead_write(conn, lead)
        return True
