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

Nothing here may fail a writer: `committed` runs after a COMMIT that already succeeded, so a
thread that cannot start, or a checkpoint that fails, is logged and left to the next
commit (and to the writers' own fallback). The thread ends by itself once its store is
garbage-collected without `close()`, and it opens the file read-write only: a database
deleted under it is never created again, empty.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from urllib.parse import quote

from leadscore.logs import exception as log_exception
from leadscore.logs import warning as log_warning

FALLBACK_PAGES = 10_000  # each connection's own `wal_autocheckpoint` (40 MB of 4 KB pages)
EVERY_COMMITS = 64  # ~15 pages a one-lead commit: about SQLite's 1,000 pages a pass
IDLE_S = 1.0  # commits fewer than that are checkpointed this long after they stop coming
# The WAL file is reused, never shrunk, after a checkpoint: one burst (a rescore, an import, a
# checkpoint held back by a long read) would leave it at its largest size for good. SQLite
# truncates it to this size when the first commit after a complete checkpoint starts it again.
# 16 MiB is four times a normal cycle (EVERY_COMMITS commits of ~15 pages, ~4 MB), so steady
# writing never pays a truncate and grows the file again, and it stays below FALLBACK_PAGES.
WAL_LIMIT_BYTES = 16 * 1024 * 1024


class Checkpointer:
    """One background thread per embedded database file of this process."""

    def __init__(self, path: str, synchronous: str, owner: object | None = None) -> None:
        self._path, self._synchronous = path, synchronous
        # the store this thread serves: once it is gone (never closed), the thread ends
        self._owner = weakref.ref(owner) if owner is not None else None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.passes = 0  # checkpoints run (tests, and anyone asking whether it works)
        self._pending = 0  # commits since the last pass (approximate: no lock, no matter)

    def committed(self) -> None:
        """A transaction committed: checkpoint soon (the thread starts on first use)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()
        self._pending += 1
        if self._pending >= EVERY_COMMITS:
            self._wake.set()

    def _start(self) -> None:
        with self._guard:
            if self._stopping or (self._thread is not None and self._thread.is_alive()):
                return
            thread = threading.Thread(target=self._run, daemon=True, name="sqlite-checkpoint")
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: the writers' fallback checkpoints
                log_warning("sqlite checkpoint thread could not start; commits checkpoint "
                             "by themselves past the fallback size")
                return
            self._thread = thread

    def stop(self) -> None:
        with self._guard:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=30)

    def _orphaned(self) -> bool:
        return self._owner is not None and self._owner() is None

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait(IDLE_S)
                self._wake.clear()
                if self._stopping or self._orphaned():
                    return
                if not self._pending:
                    continue
                self._pending = 0
                try:
                    if conn is None:
                        conn = sqlite3.connect(f"file:{quote(self._path)}?mode=rw", uri=True,
                                               timeout=60, isolation_level=None,
                                               check_same_thread=False)
                        conn.execute(f"PRAGMA synchronous={self._synchronous}")
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.passes += 1
                except sqlite3.Error as exc:  # busy, or the file is gone: the next commit
                    # retries on a fresh connection, and the writers' own FALLBACK_PAGES
                    # checkpoint bounds the WAL meanwhile
                    log_warning("sqlite checkpoint failed; retried after the next commit",
                                 error=type(exc).__name__)
                    if conn is not None:
                        conn.close()
                    conn = None
        except Exception:  # noqa: BLE001 - never silent: the next commit starts a new one
            log_exception("sqlite checkpoint thread stopped")
        finally:
            if conn is not None:
                conn.close()
