"""A SQLite database written by an older release opens with today's columns, its rows kept
(`store/sqlite_retention.py` adds them in place)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import NOW

from leadscore.store.sqlite import SqliteStore

# the tables as the release before moved records created them
OLDER_SCHEMA = """
CREATE TABLE tombstones (lead_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL);
INSERT INTO tombstones VALUES ('erased-id', '2026-11-01T00:00:00+00:00');
"""


def older_database(tmp_path: Path) -> Path:
    path = tmp_path / "older.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLDER_SCHEMA)
    conn.close()
    return path


def test_an_older_database_gets_moved_records(tmp_path: Path) -> None:
    # GIVEN a database whose tombstones table has no `moved_to`
    store = SqliteStore(older_database(tmp_path))
    try:
        # WHEN it is opened, THEN its tombstone is still there and a move can be recorded
        stone = store.tombstone("erased-id")
        assert stone is not None and stone.moved_to is None
        store.move_away("old-id", "new-id", NOW)
        assert store.tombstone("old-id").moved_to == "new-id"
    finally:
        store.close()
