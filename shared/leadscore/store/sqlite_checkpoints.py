"""WAL checkpoints off the writers' path (issue 20, the mixed load's profile).

SQLite copies the WAL back into the database file (a checkpoint) from inside the COMMIT that
takes the WAL past `wal_autocheckpoint` pages (1,000 by default): that writer copies the
pages and, at `synchronous=FULL`, syncs the database file while it still holds the write
lock, so every writer queued behind it waits. Under the mixed load of `bench/load.py` that
made an average COMMIT cost about ten disk syncs instead of one.

Here a background thread with its own connection runs a PASSIVE checkpoint after every
EVERY_COMMITS commits, or within IDLE_S of the last one (about the cadence of SQLite's own
1,000 pages): it never takes the write lock, so writers go on beside it (WAL lets a
checkpoint run beside one writer and any readers). The write connections still checkpoint by
themselves past FALLBACK_PAGES, so the WAL stays bounded if this thread falls behind.
Durability is unchanged: a commit is durable once its WAL frames are synced, before any
checkpoint, and a checkpoint syncs the database file before the WAL is reused.
"""

from __future__ import annotations

import sqlite3
import threading

FALLBACK_PAGES = 10_000  # each connection's own `wal_autocheckpoint` (40 MB of 4 KB pages)
EVERY_COMMITS = 64  # ~15 pages a one-lead commit: about SQLite's 1,000 pages a pass
IDLE_S = 1.0  # commits fewer than that are checkpointed this long after they stop coming


class Checkpointer:
    """One background thread per embedded database file of this process."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._path, self._synchronous = path, synchronous
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.passes = 0  # checkpoints run (tests, and anyone asking whether it works)
        self._pending = 0  # commits since the last pass (approximate: no lock, no matter)

    def committed(self) -> None:
        """A transaction committed: checkpoint soon (the thread starts on first use)."""
        if self._thread is None:
            with self._guard:
                if self._thread is None and not self._stopping:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="sqlite-checkpoint")
                    self._thread.start()
        self._pending += 1
        if self._pending >= EVERY_COMMITS:
            self._wake.set()

    def stop(self) -> None:
        with self._guard:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait(IDLE_S)
                self._wake.clear()
                if self._stopping:
                    return
                if not self._pending:
                    continue
                self._pending = 0
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._path, timeout=60, isolation_level=None,
                                               check_same_thread=False)
                        conn.execute(f"PRAGMA synchronous={self._synchronous}")
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.passes += 1
                except sqlite3.Error:  # busy, or the file is gone: the next commit retries,
                    pass  # and the writers' own FALLBACK_PAGES checkpoint bounds the WAL
        finally:
            if conn is not None:
                conn.close()
