"""Group commit for the embedded store (issue 20): concurrent writers share one transaction
and one sync of the WAL.

With `synchronous=FULL` every COMMIT waits for the disk (0.2 ms on an idle disk, several ms
on a busy one), and SQLite has one writer at a time, so a commit per request would cap a
server at one request per sync. Instead every write of this process goes through one write
connection: a *unit* (one `transact`, or every lead of one request) opens the transaction or
joins the open one as a savepoint, and the last writer in the queue commits that
transaction for all the units staged in it. Each writer waits for the commit of its own
transaction before it returns, so nothing is answered before it is durable. A unit that
fails undoes itself alone: a joining unit rolls back to its savepoint; the first unit needs
no savepoint, because when it fails nothing else is staged yet and the whole transaction is
rolled back. A COMMIT that fails fails every unit of that transaction (each sender gets a
5xx and retries; the ledger de-duplicates). Reads outside a unit use each thread's own
connection and see only committed data.

Writers of *other processes* (`leadscore serve --workers N`) queue on an exclusive `flock`
of a lock file beside the database, held from BEGIN IMMEDIATE to COMMIT: they sleep in the
kernel and wake when it is released, instead of SQLite's busy handler, which sleeps and
retries on a timer (1 to 100 ms) and so gave long tails. The lock file is opened lazily by
each process (never inherited across a fork); flock locks belong to the open file, so the
thread that commits may release what another thread of the process took.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from leadscore.errors import TransientError

MAX_UNITS = 64  # a transaction commits after this many units even if writers still queue


class GroupCommit:
    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 on_commit: Callable[[], None] | None = None,
                 lock_path: str | None = None) -> None:
        self._connect = connect
        self._lock_path = lock_path  # None: no other process writes (an in-memory database)
        self._lock_fd: int | None = None
        self._lock_pid = 0  # the process that opened _lock_fd (a forked child reopens)
        self._lock_closer: weakref.finalize[[int], GroupCommit] | None = None
        self._on_commit = on_commit  # a background WAL checkpoint (sqlite_checkpoints.py)
        self.connection: sqlite3.Connection | None = None
        self._writer = threading.Lock()  # held while a unit is staged (or a commit runs)
        self._state = threading.Condition()  # guards the numbers below
        self._queued = 0  # writers waiting for `_writer`
        self._open = 0  # number of the transaction being staged; 0 when none is open
        self._units = 0  # units staged in it
        self._next = 1
        self._committed = 0  # transactions commit in order: every number up to this one
        # a failed transaction's reason and how many of its writers have yet to read it
        self._failed: dict[int, list[Any]] = {}

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
            # the transaction's first unit needs no savepoint: if it fails, rolling the
            # whole transaction back undoes it alone (two statements fewer per commit)
            first = not self._open
            if first:
                self._lock_processes()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:  # locked by another program too long
                    self._unlock_processes()
                    raise TransientError(f"store busy: {exc}") from exc
                self._open, self._next, self._units = self._next, self._next + 1, 0
            else:
                conn.execute("SAVEPOINT unit")
            try:
                yield conn
            except BaseException:
                self._undo_unit(conn, first)
                raise
            if not first:
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

    def _lock_processes(self) -> None:
        """Wait (in the kernel) until no other process has a transaction open."""
        if self._lock_path is None:
            return
        if self._lock_fd is None or self._lock_pid != os.getpid():
            if self._lock_closer is not None:  # the parent's, inherited by a fork: its
                self._lock_closer.detach()  # number may be reused here, never close it
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock_pid = os.getpid()
            # a store dropped without close() must not leak the descriptor
            self._lock_closer = weakref.finalize(self, os.close, self._lock_fd)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # releases the GIL while it waits

    def _unlock_processes(self) -> None:
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._lock_closer is not None and self._lock_pid == os.getpid():
            self._lock_closer()  # closes the descriptor once, whoever asks first
        elif self._lock_closer is not None:  # inherited by a fork: not ours to close
            self._lock_closer.detach()
        self._lock_fd, self._lock_closer = None, None

    def _undo_unit(self, conn: sqlite3.Connection, first: bool) -> None:
        """Roll this unit back: to its savepoint, or the whole transaction when it is the
        first unit (nothing else is staged in it). If SQLite dropped the whole transaction
        (some I/O errors do), the units staged before it are lost too: their writers are
        told so. If the rollback itself fails, the connection is dropped (closing it rolls
        the transaction back) rather than ever committing what the failed unit wrote; an
        in-memory database (tests) lives in that connection and keeps it."""
        try:
            if conn.in_transaction and not first:
                try:
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    return
                except sqlite3.Error:
                    pass
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._drop_writer(conn)
        self._settle(self._open, "the transaction was rolled back", waiters=self._units)

    def _drop_writer(self, conn: sqlite3.Connection) -> None:
        if self._lock_path is None:  # an in-memory database lives in this connection
            return
        try:
            conn.close()
        except sqlite3.Error:
            pass
        self.connection = None

    def _commit(self, conn: sqlite3.Connection) -> None:
        failure = None
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # disk full, I/O error: nothing of it is stored
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = f"{type(exc).__name__}: {exc}"
        self._settle(self._open, failure, waiters=self._units)
        if failure is None and self._on_commit is not None:
            self._on_commit()

    def _settle(self, number: int, failure: str | None, waiters: int) -> None:
        """End the transaction; a failure is kept until each of its `waiters` (the units
        staged in it, which wait in `_wait_for`) has read it, so none outlives them."""
        self._unlock_processes()  # the transaction is over (committed or rolled back)
        with self._state:
            if failure is None:
                self._committed = number
            elif waiters:
                self._failed[number] = [failure, waiters]
            self._open = 0
            self._state.notify_all()

    def _wait_for(self, number: int) -> None:
        if not number:
            return
        with self._state:
            while number not in self._failed and self._committed < number:
                self._state.wait()
            failed = self._failed.get(number)
            if failed is not None:
                failed[1] -= 1
                if not failed[1]:
                    del self._failed[number]
        if failed is not None:
            raise TransientError(f"store could not commit: {failed[0]}")
