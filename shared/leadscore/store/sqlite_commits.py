"""Group commit for the embedded store (issue 20): concurrent writers share one transaction
and one sync of the WAL.

With `synchronous=FULL` every COMMIT waits for the disk (0.2 ms on an idle disk, several ms
on a busy one), and SQLite has one writer at a time, so a commit per request would cap a
server at one request per sync. Instead every write of this process goes through one write
connection: a *unit* (one `transact`, or every lead of one request) is a savepoint inside
the open transaction, and the last writer in the queue commits that transaction for all
the units staged in it. Each writer waits for the commit of its own transaction before it
returns, so nothing is answered before it is durable; a unit that fails rolls back its
savepoint alone; a COMMIT that fails fails every unit of that transaction (each sender gets
a 5xx and retries; the ledger de-duplicates). Reads outside a unit use each thread's own
connection and see only committed data.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from leadscore.errors import TransientError

MAX_UNITS = 64  # a transaction commits after this many units even if writers still queue


class GroupCommit:
    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 on_commit: Callable[[], None] | None = None) -> None:
        self._connect = connect
        self._on_commit = on_commit  # a background WAL checkpoint (sqlite_checkpoints.py)
        self.connection: sqlite3.Connection | None = None
        self._writer = threading.Lock()  # held while a unit is staged (or a commit runs)
        self._state = threading.Condition()  # guards the numbers below
        self._queued = 0  # writers waiting for `_writer`
        self._open = 0  # number of the transaction being staged; 0 when none is open
        self._units = 0  # units staged in it
        self._next = 1
        self._committed = 0  # transactions commit in order: every number up to this one
        self._failed: dict[int, str] = {}

    @contextmanager
    def unit(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit, durable when the block returns (see the module's docstring)."""
        with self._state:
            self._queued += 1
        self._writer.acquire()
        with self._state:
            self._queued -= 1
        mine = 0
        try:
            conn = self.writer_connection()
            if not self._open:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:  # locked by another process too long
                    raise TransientError(f"store busy: {exc}") from exc
                self._open, self._next, self._units = self._next, self._next + 1, 0
            conn.execute("SAVEPOINT unit")
            try:
                yield conn
            except BaseException:
                self._undo_unit(conn)
                raise
            conn.execute("RELEASE unit")
            mine = self._open
            self._units += 1
        finally:
            try:
                with self._state:
                    last = self._queued == 0
                if self._open and (last or self._units >= MAX_UNITS):
                    self._commit(self.writer_connection())
            finally:
                self._writer.release()
        self._wait_for(mine)

    def writer_connection(self) -> sqlite3.Connection:
        if self.connection is None:
            self.connection = self._connect()
        return self.connection

    def _undo_unit(self, conn: sqlite3.Connection) -> None:
        """Roll this unit back; if SQLite dropped the whole transaction (some I/O errors
        do), the units staged before it are lost too: their writers are told so."""
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                return
            except sqlite3.Error:
                conn.execute("ROLLBACK")
        self._settle(self._open, "the transaction was rolled back by SQLite")

    def _commit(self, conn: sqlite3.Connection) -> None:
        failure = None
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # disk full, I/O error: nothing of it is stored
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = f"{type(exc).__name__}: {exc}"
        self._settle(self._open, failure)
        if failure is None and self._on_commit is not None:
            self._on_commit()

    def _settle(self, number: int, failure: str | None) -> None:
        with self._state:
            if failure is None:
                self._committed = number
            else:
                self._failed[number] = failure
            self._open = 0
            self._state.notify_all()

    def _wait_for(self, number: int) -> None:
        if not number:
            return
        with self._state:
            while number not in self._failed and self._committed < number:
                self._state.wait()
            failure = self._failed.get(number)
        if failure is not None:
            raise TransientError(f"store could not commit: {failure}")
