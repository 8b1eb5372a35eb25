"""WAL checkpoints run beside the writers, not inside their COMMIT (issue 20): a writer
never copies the WAL into the database file while others queue behind its lock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from builders import activity
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.ingest import ingest
from leadscore.store.sqlite import SqliteStore
from leadscore.store.sqlite_checkpoints import FALLBACK_PAGES


def _in_database_file(path: str, lead_id: str) -> bool:
    """Whether the lead is in the database file itself (`immutable` ignores the WAL)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute("SELECT 1 FROM leads WHERE lead_id = ?",
                            (lead_id,)).fetchone() is not None
    except sqlite3.OperationalError:  # not even the schema has been copied yet
        return False
    finally:
        conn.close()


def test_a_background_checkpoint_copies_committed_writes_into_the_database_file(
        tmp_path: Path, rules: Rules) -> None:
    # GIVEN an embedded store (kept open: closing it would checkpoint by itself)
    store = SqliteStore(tmp_path / "wal.db")
    lead_id = lead_id_for("ana@example.org")
    try:
        # WHEN a request commits
        ingest(store, rules, [activity("ana@example.org", "k1", NOW)], NOW)
        # THEN the write is durable in the WAL at once, and a background checkpoint copies
        # it into the database file soon after, with no further write to trigger it
        deadline = time.monotonic() + 10
        while not _in_database_file(store.path, lead_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _in_database_file(store.path, lead_id)
        assert store._checkpoints.passes >= 1
    finally:
        store.close()


def test_writers_checkpoint_by_themselves_only_past_the_fallback(
        tmp_path: Path, rules: Rules) -> None:
    # GIVEN an embedded store
    store = SqliteStore(tmp_path / "wal.db")
    try:
        # WHEN it writes
        ingest(store, rules, [activity("ana@example.org", "k1", NOW)], NOW)
        writer = store._commits.writer_connection()
        # THEN its write connection leaves checkpoints to the background thread until the
        # WAL is far past SQLite's default of 1,000 pages (the WAL stays bounded)
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == FALLBACK_PAGES
        assert FALLBACK_PAGES > 1000
    finally:
        store.close()


def test_closing_the_store_stops_its_checkpoint_thread(tmp_path: Path, rules: Rules) -> None:
    # GIVEN a store whose checkpoint thread has started
    store = SqliteStore(tmp_path / "wal.db")
    ingest(store, rules, [activity("ana@example.org", "k1", NOW)], NOW)
    checkpoints = store._checkpoints
    assert checkpoints._thread is not None
    # WHEN it is closed
    store.close()
    # THEN the thread has ended (it holds a connection to the file)
    assert not checkpoints._thread.is_alive()
    # AND the store can be used again (a new thread starts on the next commit)
    ingest(store, rules, [activity("ana@example.org", "k2", NOW)], NOW)
    assert store.get_lead(lead_id_for("ana@example.org")) is not None
    store.close()
