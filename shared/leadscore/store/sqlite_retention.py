"""What the SQLite adapter keeps about erasures and moves, and for how long.

A move (Mailchimp's `upemail`) keeps a moved record in the tombstones table (`moved_to`),
read by every transaction like a tombstone (`sqlite_early.py`), so writes for the old
address land on the new lead. Firestore expires tombstones and erased orders' markers by TTL
policies on `expires_at` (infra/data_care.py); here the decay tick purges them
(`purge_erasures`) once `TOMBSTONE_KEPT` has passed, as the TTL would.

Databases created before these columns existed get them when opened (`add_columns`). The
erased orders' markers they hold had no expiry: they get `TOMBSTONE_KEPT` from the
migration on (the longest their erasure's tombstone can still be kept).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from leadscore.domain.state import LeadState
from leadscore.store.port import TOMBSTONE_KEPT, Tombstone

# table -> column -> type, added to older databases in place
LATER_COLUMNS = {
    "tombstones": {"moved_to": "TEXT"},
    "order_aliases": {"expires_at": "REAL"},
    "crm_erasures": {"expires_at": "REAL"},  # the no-CRM purge claims by it (crm_erasure.py)
    "used_tokens": {"expires_at": "REAL"},
}
# longer than any provider's window (`providers/base.py` TOKEN_KEPT): a token claimed by an
# older release has no expiry, so it is kept this long from the migration on
LEGACY_TOKEN_KEPT = timedelta(days=1)
# what an erased order's marker stands for (`service.purchases.ERASED`; the store knows no
# service, tests/integration/test_sqlite_older_schema.py holds the two equal)
ERASED_MARKER = "erased"
RETENTION_INDEXES = """
CREATE INDEX IF NOT EXISTS tombstones_by_moved_to ON tombstones (moved_to)
    WHERE moved_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS tombstones_by_time ON tombstones (erased_at);
CREATE INDEX IF NOT EXISTS order_aliases_by_expiry ON order_aliases (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS used_tokens_by_expiry ON used_tokens (expires_at);
"""


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # as SqliteStore stores erasure times


def missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The columns above that a database of an older release lacks."""
    return [(table, name, kind) for table, columns in LATER_COLUMNS.items()
            for name, kind in columns.items()
            if name not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}]


def add_columns(tx: sqlite3.Connection, missing: list[tuple[str, str, str]],
                now: datetime) -> None:
    """Add them, inside the caller's transaction."""
    for table, name, kind in missing:
        tx.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        if table == "crm_erasures":
            tx.executemany("UPDATE crm_erasures SET expires_at = ? WHERE id = ?", [
                (datetime.fromisoformat(json.loads(doc)["expires_at"]).timestamp(), key)
                for key, doc in tx.execute("SELECT id, doc FROM crm_erasures").fetchall()])
        if table == "used_tokens":
            tx.execute("UPDATE used_tokens SET expires_at = ?",
                       ((now + LEGACY_TOKEN_KEPT).timestamp(),))
        if (table, name) == ("order_aliases", "expires_at"):
            tx.execute("UPDATE order_aliases SET expires_at = ? WHERE lead_id IS NULL AND "
                       "order_key = ?", ((now + TOMBSTONE_KEPT).timestamp(), ERASED_MARKER))


def stage_move(conn: sqlite3.Connection, lead_id: str, moved_to: str,
               moved_at: datetime) -> bool:
    """`record_move`'s moved record, inside the caller's transaction (before `move_away`
    deletes the lead's rows, as an erasure's tombstone); False, nothing written, where the
    port refuses it (an erasure of either id, see `LeadStore.record_move`)."""
    stones = dict(conn.execute("SELECT lead_id, moved_to IS NULL FROM tombstones "
                               "WHERE lead_id IN (?, ?)", (lead_id, moved_to)).fetchall())
    if stones.get(lead_id):
        return False  # an erasure stays an erasure
    if stones.get(moved_to):
        row = conn.execute("SELECT doc FROM leads WHERE lead_id = ?", (moved_to,)).fetchone()
        stone = conn.execute("SELECT erased_at FROM tombstones WHERE lead_id = ?",
                             (moved_to,)).fetchone()
        erasure = Tombstone(erased_at=datetime.fromisoformat(stone[0]))
        if row is None or not erasure.restarted(LeadState.model_validate_json(row[0])):
            return False  # erased there: the record would send writes nowhere
    # the new address holds a lead again (a move back): it no longer moves away
    conn.execute("DELETE FROM tombstones WHERE lead_id = ? AND moved_to IS NOT NULL",
                 (moved_to,))
    conn.execute("UPDATE tombstones SET moved_to = ? WHERE moved_to = ?", (moved_to, lead_id))
    conn.execute("INSERT OR REPLACE INTO tombstones (lead_id, erased_at, moved_to) "
                 "VALUES (?, ?, ?)", (lead_id, _utc(moved_at), moved_to))
    return True


def purge_erasures(conn: sqlite3.Connection, now: datetime) -> int:
    """Tombstones and moved records `TOMBSTONE_KEPT` old, and expired markers, go."""
    purged: int = conn.execute("DELETE FROM tombstones WHERE erased_at <= ?",
                               (_utc(now - TOMBSTONE_KEPT),)).rowcount
    purged += conn.execute("DELETE FROM order_aliases WHERE expires_at <= ?",
                           (now.timestamp(),)).rowcount
    return purged
