"""A SQLite database written by an older release opens with today's columns, its rows kept
(`store/sqlite_retention.py` adds them in place), also when several processes open it at
once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import NOW

from leadscore.service.crm_erasure import KEEP, erasure_for
from leadscore.service.purchases import ERASED
from leadscore.store.port import TOMBSTONE_KEPT
from leadscore.store.sqlite import SqliteStore
from leadscore.store.sqlite_retention import ERASED_MARKER, LEGACY_TOKEN_KEPT

# the tables as the release before moved records and expiries created them
OLDER_SCHEMA = """
CREATE TABLE tombstones (lead_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL);
INSERT INTO tombstones VALUES ('erased-id', '2026-11-01T00:00:00+00:00');
CREATE TABLE order_aliases (alias TEXT PRIMARY KEY, order_key TEXT NOT NULL, lead_id TEXT);
INSERT INTO order_aliases VALUES ('erased:marker', 'erased', NULL);
INSERT INTO order_aliases VALUES ('stripe:pi_1', 'stripe:in_1', NULL);
INSERT INTO order_aliases VALUES ('stripe:pi_2', 'stripe:in_2', 'lead-id');
CREATE TABLE crm_erasures (id TEXT PRIMARY KEY, next_attempt_at REAL NOT NULL,
                           doc TEXT NOT NULL);
CREATE TABLE used_tokens (token TEXT PRIMARY KEY, owner TEXT NOT NULL);
INSERT INTO used_tokens VALUES ('mailgun:older', 'event-a');
"""


# one CRM erasure past its KEEP, one not
CRM_ERASURES = [erasure_for("crm:hubspot", lead, f"{lead}@example.com", at, at)
                for lead, at in (("gone", NOW - KEEP - timedelta(days=1)), ("kept", NOW))]


def older_database(tmp_path: Path) -> Path:
    path = tmp_path / "older.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLDER_SCHEMA)
    conn.executemany("INSERT INTO crm_erasures VALUES (?, ?, ?)", [
        (i.id, i.next_attempt_at.timestamp(), i.model_dump_json()) for i in CRM_ERASURES])
    conn.commit()
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


def test_an_older_databases_erased_order_markers_expire_from_the_migration_on(
        tmp_path: Path) -> None:
    # GIVEN a database whose order aliases have no expiry, one of them an erased order's
    # marker (kept for good by that release)
    store = SqliteStore(older_database(tmp_path))
    try:
        # WHEN it is opened, THEN the marker is kept TOMBSTONE_KEPT from then on, as long
        # as the tombstone of its erasure could be, then it goes; other aliases stay
        migrated = datetime.now(UTC)
        early, late = (migrated + TOMBSTONE_KEPT + timedelta(hours=h) for h in (-1, 1))
        assert store.purge_expired_erasures(early) == 1  # the older tombstone only
        assert store.order_alias("erased:marker") == ERASED
        assert store.purge_expired_erasures(late) == 1
        assert store.order_alias("erased:marker") is None
        assert store.order_alias("stripe:pi_1") == "stripe:in_1"
        assert store.order_alias("stripe:pi_2") == "stripe:in_2"
    finally:
        store.close()


def test_the_store_names_an_erased_order_as_the_service_does() -> None:
    assert ERASED_MARKER == ERASED


def test_an_older_databases_crm_erasures_are_claimed_by_their_expiry(tmp_path: Path) -> None:
    # GIVEN a database whose CRM erasures table has no `expires_at` column
    store = SqliteStore(older_database(tmp_path))
    try:
        # WHEN it is opened, THEN the expired record is found by its expiry, the other not
        expired = store.claim_crm_erasures(NOW, NOW, expired=True)
        assert [i.lead_id for i in expired] == ["gone"]
    finally:
        store.close()


def test_an_older_databases_used_tokens_are_kept_a_whole_window_then_purged(
        tmp_path: Path) -> None:
    # GIVEN a database whose used tokens have no time
    store = SqliteStore(older_database(tmp_path))
    try:
        # WHEN it is opened, THEN its token is still refused to another owner after a
        # purge inside the window it is given, and purged after it
        migrated = datetime.now(UTC)
        assert store.purge_used_tokens(migrated + LEGACY_TOKEN_KEPT - timedelta(hours=1)) == 0
        assert store.claim_token("mailgun:older", "event-b") is False
        assert store.purge_used_tokens(migrated + LEGACY_TOKEN_KEPT + timedelta(hours=1)) == 1
        assert store.claim_token("mailgun:older", "event-b") is True
    finally:
        store.close()


# Several processes open one older database at once (`leadscore serve --workers N`
# starting): the migration runs once, under the writers' cross-process lock, none fails.
PROCESSES = 4
ROUNDS = 3

# each process imports the store, says it is ready, waits for the go, then opens the file
OPENER = """
import sys, time
from pathlib import Path
from leadscore.store.sqlite import SqliteStore
path, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.0005)
try:
    SqliteStore(path).close()
except Exception as exc:
    import traceback; traceback.print_exc()
    sys.exit(1)
"""


def open_at_once(path: Path, work: Path) -> list[str]:
    """What each of the processes said when they opened `path` at the same moment."""
    go = work / "go"
    ready = [work / f"ready-{i}" for i in range(PROCESSES)]
    shared = str(Path(__file__).resolve().parents[2] / "shared")
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(mark), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={"PYTHONPATH": shared, "PATH": "/usr/bin:/bin"})
             for mark in ready]
    deadline = time.monotonic() + 120
    while not all(mark.exists() for mark in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    return [f"rc={proc.wait(timeout=120)} {proc.stdout.read() if proc.stdout else ''}"
            for proc in procs]


def test_processes_opening_an_older_database_at_once_all_open_it(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        # GIVEN a database written by the release before moved records and expiries
        work = tmp_path / f"round-{round_}"
        work.mkdir()
        path = older_database(work)
        # WHEN several processes open it at the same moment
        said = open_at_once(path, work)
        # THEN every one opened it, and the database has today's columns, its rows kept
        assert said == ["rc=0 "] * PROCESSES
        store = SqliteStore(path)
        try:
            stone = store.tombstone("erased-id")
            assert stone is not None and stone.moved_to is None
            assert store.order_alias("stripe:pi_1") == "stripe:in_1"
        finally:
            store.close()
