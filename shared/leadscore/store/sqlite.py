"""Embedded SQLite adapter: the local default. One file, WAL mode, one connection per thread.

`BEGIN IMMEDIATE` takes the write lock up front, so read-modify-write per lead is exact
under concurrency; SQLite serialises writers and each group commits in one transaction, or
all the groups of one request in one (`unit_of_work`, issue 20).

Durability: WAL with `synchronous=FULL`. A webhook's 2xx tells the sender "delivered, do
not send again", so a commit must survive a power cut or an OS crash, not only a crash of
this process: FULL syncs the WAL at every commit (about 0.2 ms here), NORMAL would sync it
only at checkpoints and could lose the last commits. With one commit per request the sync
is paid once per request, not once per lead. WAL lets readers (the API, the dashboard) run
beside the one writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from leadscore.domain.identity import shard_of
from leadscore.domain.outbox import StageChange
from leadscore.domain.state import HistoryEntry, LeadState, Order, Stage
from leadscore.store.port import EspSynced, LeadSnapshot, LeadWrite, Plan, R, Tombstone
from leadscore.store.sqlite_checkpoints import FALLBACK_PAGES, WAL_LIMIT_BYTES, Checkpointer
from leadscore.store.sqlite_commits import GroupCommit
from leadscore.store.sqlite_early import Raw, early_plan, raw_state, snapshot_of
from leadscore.store.sqlite_outbox import OUTBOX_INDEXES, OUTBOX_SCHEMA, SqliteOutbox
from leadscore.store.sqlite_rekey import SqliteRekey
from leadscore.store.sqlite_retention import (
    RETENTION_INDEXES,
    add_columns,
    missing_columns,
    purge_erasures,
    stage_move,
)
from leadscore.store.sqlite_scan import SqliteEventScan
from leadscore.store.sqlite_stats import SqliteStats, counted_column
from leadscore.store.sqlite_visitors import VISITOR_SCHEMA, SqliteVisitors

SCHEMA = """
CREATE TABLE IF NOT EXISTS leads (
    lead_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    stage TEXT NOT NULL,
    score REAL NOT NULL,
    next_review_at REAL
);
CREATE TABLE IF NOT EXISTS history (
    lead_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    at TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (lead_id, entry_id)
);
CREATE TABLE IF NOT EXISTS order_index (
    order_key TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_index_by_lead ON order_index (lead_id);
CREATE TABLE IF NOT EXISTS order_aliases (
    alias TEXT PRIMARY KEY,
    order_key TEXT NOT NULL,
    lead_id TEXT,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS order_aliases_by_lead ON order_aliases (lead_id);
CREATE TABLE IF NOT EXISTS order_records (
    lead_id TEXT NOT NULL,
    order_key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (lead_id, order_key)
);
CREATE TABLE IF NOT EXISTS handovers (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS handovers_pending ON handovers (delivered, next_attempt_at);
CREATE TABLE IF NOT EXISTS tombstones (
    lead_id TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL,
    moved_to TEXT
);
CREATE TABLE IF NOT EXISTS esp_sync (
    tool TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tool, lead_id)
);
CREATE TABLE IF NOT EXISTS used_tokens (
    token TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL
);
"""


# Columns added after the first release; each is derived from the JSON document, so an
# older database gets them filled in when it is opened.
ADDED_COLUMNS = {
    "shard": "INTEGER",
    "grade": "TEXT",
    "non_opener": "INTEGER",
    "counted": "TEXT",  # the dashboard's keys, as JSON (sqlite_stats.py keeps their sums)
}
INDEXES = """
CREATE INDEX IF NOT EXISTS leads_by_stage_score ON leads (stage, score DESC);
CREATE INDEX IF NOT EXISTS leads_by_score ON leads (score DESC);
CREATE INDEX IF NOT EXISTS leads_by_review ON leads (next_review_at)
    WHERE next_review_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_by_shard_review ON leads (shard, next_review_at)
    WHERE next_review_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_by_non_opener ON leads (non_opener, score DESC);
CREATE INDEX IF NOT EXISTS leads_by_grade ON leads (grade, score DESC);
"""


SYNCHRONOUS = "FULL"  # see the module's docstring; the benchmarks' raw writes use it too

# An update in place, not INSERT OR REPLACE (a delete and an insert, every index entry
# rewritten): about 15% fewer pages to write and sync per lead write (issue 20 profile).
LEAD_UPSERT = (
    "INSERT INTO leads (lead_id, doc, stage, score, next_review_at, shard, grade, non_opener, "
    "counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lead_id) DO UPDATE SET "
    "doc = excluded.doc, stage = excluded.stage, score = excluded.score, "
    "next_review_at = excluded.next_review_at, shard = excluded.shard, grade = excluded.grade, "
    "non_opener = excluded.non_opener, counted = excluded.counted")



def lead_row(lead: LeadState) -> tuple[object, ...]:
    """The values of `LEAD_UPSERT` for a lead (the benchmarks' raw writes use them too)."""
    return (lead.lead_id, lead.model_dump_json(), lead.stage, lead.score,
            _ts(lead.next_review_at), shard_of(lead.lead_id), lead.grade, int(lead.non_opener),
            counted_column(lead.counted))


WAL_ATTEMPTS = 100


def _write_ahead_log(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (kept in the file once done). The switch takes an exclusive
    lock that SQLite refuses at once, without its busy wait, to a connection that meets
    another one holding the file: processes opening a new database, or one an older
    release left in another mode, together. So it is tried again a while."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.002 * (attempt + 1))  # about 10 s in all


def _statements(script: str) -> list[str]:
    """A script's statements, to run inside a transaction (`executescript` commits first)."""
    found, part = [], ""
    for line in script.splitlines(keepends=True):
        part += line
        if sqlite3.complete_statement(part):
            found.append(part.strip())
            part = ""
    return [statement for statement in found if statement.strip(" ;\n")]


def _utc(value: datetime) -> str:
    """Times as UTC ISO text, so that ordering the text orders the moments."""
    return value.astimezone(UTC).isoformat()


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


class SqliteStore(SqliteVisitors, SqliteStats, SqliteEventScan, SqliteRekey, SqliteOutbox):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # Writers of this process queue on a lock instead of SQLite's busy-wait, which
        # sleeps and retries and so gives long tails under concurrent writes, and share
        # commits (sqlite_commits.py); writers of other processes (`serve --workers`) queue
        # on a file lock beside the database, other programs meet SQLite's own lock.
        self._checkpoints = Checkpointer(self.path, SYNCHRONOUS, owner=self)
        self._commits = self._group_commit()
        self._migrate()

    def _group_commit(self) -> GroupCommit:
        if self.path == ":memory:":
            return GroupCommit(self._connect)
        return GroupCommit(self._connect, self._checkpoints.committed,
                           lock_path=self.path + "-writers.lock")  # beside -wal and -shm

    def _migrate(self) -> None:
        """Create or upgrade the schema in one transaction under the writers' lock (the
        cross-process `flock` and `BEGIN IMMEDIATE`, sqlite_commits.py), each check made
        inside it: processes opening one older database at once (`serve --workers N`)
        queue, the first migrates, the others find it done. One sync, not one a statement."""
        with self._tx() as tx:
            for statement in _statements(SCHEMA + VISITOR_SCHEMA + OUTBOX_SCHEMA):
                tx.execute(statement)
            have = {row[1] for row in tx.execute("PRAGMA table_info(leads)")}
            missing = [name for name in ADDED_COLUMNS if name not in have]
            for name in missing:
                tx.execute(f"ALTER TABLE leads ADD COLUMN {name} {ADDED_COLUMNS[name]}")
            if missing:
                for (doc,) in tx.execute("SELECT doc FROM leads").fetchall():
                    self._stage_lead_write(tx, LeadState.model_validate_json(doc))
            if later := missing_columns(tx):  # sqlite_retention.py
                add_columns(tx, later, datetime.now(UTC))
            for statement in _statements(INDEXES + RETENTION_INDEXES + OUTBOX_INDEXES):
                tx.execute(statement)
        self._ensure_lead_stats()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                               check_same_thread=False)
        _write_ahead_log(conn)
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        # checkpoints run on a background thread (sqlite_checkpoints.py), not in a COMMIT
        conn.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # the WAL shrinks again
        with self._guard:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection for reads; inside a unit of work, the unit's (so a
        request reads what it wrote before)."""
        unit: sqlite3.Connection | None = getattr(self._local, "unit", None)
        if unit is not None:
            return unit
        if self.path == ":memory:":  # a database per connection: everything uses the writer's
            return self._commits.writer_connection()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: a savepoint inside the request's unit of work if one is open,
        else a unit of its own (committed with whatever other writers stage beside it)."""
        unit = getattr(self._local, "unit", None)
        if unit is not None:
            unit.execute("SAVEPOINT lead")
            try:
                yield unit
            except BaseException:
                unit.execute("ROLLBACK TO lead")
                unit.execute("RELEASE lead")
                raise
            unit.execute("RELEASE lead")
            return
        with self._commits.unit() as conn:
            yield conn

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """Every write this thread makes inside the block (a request's leads) in one
        atomic unit: each `transact` is a savepoint of it, and nothing at all is stored if
        the block raises. It is durable when the block returns (one WAL sync, shared with
        concurrent requests: sqlite_commits.py). The write lock is held for the block, so
        concurrent requests queue and every read inside is never stale. Nested blocks join
        the outer one."""
        if getattr(self._local, "unit", None) is not None:
            yield
            return
        with self._commits.unit() as conn:
            self._local.unit = conn
            try:
                yield
            finally:
                self._local.unit = None

    # -- the unit of work's primitives ----------------------------------------------------
    def read(self, lead_id: str, ledger_keys: Sequence[str] = (),
             with_history: bool = False) -> LeadSnapshot:
        return self._snapshot(self._conn(), lead_id, ledger_keys, with_history)

    def _snapshot(self, conn: sqlite3.Connection, lead_id: str, ledger_keys: Sequence[str],
                  with_history: bool, order_keys: Sequence[str] = (),
                  raw: Raw | None = None) -> LeadSnapshot:
        """The rows a plan reads (`raw_state`, unless already read), and the history."""
        snap = snapshot_of(lead_id, raw or raw_state(conn, lead_id, ledger_keys, order_keys))
        if with_history:
            snap.history = [HistoryEntry.model_validate_json(r[0]) for r in conn.execute(
                "SELECT doc FROM history WHERE lead_id = ? ORDER BY at, entry_id", (lead_id,))]
        return snap

    def _tombstone(self, conn: sqlite3.Connection, lead_id: str) -> Tombstone | None:
        row = conn.execute("SELECT erased_at, moved_to FROM tombstones WHERE lead_id = ?",
                           (lead_id,)).fetchone()
        return Tombstone(erased_at=datetime.fromisoformat(row[0]),
                         moved_to=row[1]) if row else None

    def tombstone(self, lead_id: str) -> Tombstone | None:
        return self._tombstone(self._conn(), lead_id)

    def transact(self, lead_id: str, ledger_keys: Sequence[str], plan: Plan[R],
                 with_history: bool = False, order_keys: Sequence[str] = ()) -> R:
        """`BEGIN IMMEDIATE` holds the write lock from the read on: never stale.

        A write of its own (not inside a request's unit of work) is planned first without
        the lock, and that plan is kept if the rows it read are unchanged under the lock
        (sqlite_early.py): the lock is then held for SQL only, not for scoring."""
        early = None
        if not with_history and self.path != ":memory:" and getattr(
                self._local, "unit", None) is None:
            early = early_plan(self._conn(), lead_id, ledger_keys, order_keys, plan)
        with self._tx() as conn:
            raw = raw_state(conn, lead_id, ledger_keys, order_keys)  # read once, under the lock
            if early is not None and early[0] == raw:
                write, result = early[1]
            else:
                write, result = plan(self._snapshot(conn, lead_id, ledger_keys, with_history,
                                                    order_keys, raw))
            if write is not None:
                self._commit(conn, lead_id, write)
        return result

    def _commit(self, conn: sqlite3.Connection, lead_id: str, write: LeadWrite) -> None:
        # a statement only for what the write has: most have no outbox record and no order,
        # and an `executemany` of nothing still costs a trip through the driver (issue 20)
        if write.history:
            conn.executemany(
                "INSERT OR IGNORE INTO history (lead_id, entry_id, at, doc) VALUES (?, ?, ?, ?)",
                [(lead_id, e.entry_id, _utc(e.at), e.model_dump_json()) for e in write.history])
        self._after_staging("history")
        self._stage_lead_write(conn, write.lead)
        self._after_staging("lead")
        if write.outbox:
            conn.executemany("INSERT OR IGNORE INTO handovers (id, lead_id, delivered, "
                             "next_attempt_at, doc) VALUES (?, ?, 0, ?, ?)",
                             [(c.id, c.lead_id, c.next_attempt_at.timestamp(),
                               c.model_dump_json()) for c in write.outbox])
        self._after_staging("outbox")
        if write.orders:
            conn.executemany("INSERT OR REPLACE INTO order_index (order_key, lead_id) "
                             "VALUES (?, ?)", [(k, lead_id) for k in write.orders])
        if write.aliases:
            conn.executemany("INSERT OR REPLACE INTO order_aliases (alias, order_key, lead_id) "
                             "VALUES (?, ?, ?)",
                             [(a, k, lead_id) for a, k in write.aliases.items()])
        if write.order_records:
            conn.executemany("INSERT OR REPLACE INTO order_records (lead_id, order_key, doc) "
                             "VALUES (?, ?, ?)", [(lead_id, k, o.model_dump_json())
                                                  for k, o in write.order_records.items()])
        self._after_staging("orders")

    def _after_staging(self, step: str) -> None:
        """Seam for fault-injection tests, after each part of a commit is staged."""

    def _stage_lead_write(self, conn: sqlite3.Connection, lead: LeadState) -> None:
        conn.execute(LEAD_UPSERT, lead_row(lead))

    def get_lead(self, lead_id: str) -> LeadState | None:
        row = self._conn().execute("SELECT doc FROM leads WHERE lead_id = ?",
                                   (lead_id,)).fetchone()
        return LeadState.model_validate_json(row[0]) if row else None

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        rows = self._conn().execute(
            "SELECT doc FROM history WHERE lead_id = ? ORDER BY at DESC, entry_id DESC "
            "LIMIT ?", (lead_id, limit or -1)).fetchall()
        return [HistoryEntry.model_validate_json(r[0]) for r in reversed(rows)]

    def list_leads(self, stage: Stage | None = None, min_score: float | None = None,
                   limit: int = 100, non_opener: bool | None = None, grade: str | None = None,
                   after: tuple[float, str] | None = None) -> list[LeadState]:
        sql, args = "SELECT doc FROM leads WHERE 1=1", list[object]()
        if grade is not None:
            sql, args = sql + " AND grade = ?", [*args, grade]
        if after is not None:
            sql += " AND (score < ? OR (score = ? AND lead_id < ?))"
            args = [*args, after[0], after[0], after[1]]
        if non_opener is not None:
            sql, args = sql + " AND non_opener = ?", [*args, int(non_opener)]
        if stage is not None:
            sql, args = sql + " AND stage = ?", [*args, stage]
        if min_score is not None:
            sql, args = sql + " AND score >= ?", [*args, min_score]
        rows = self._conn().execute(sql + " ORDER BY score DESC, lead_id DESC LIMIT ?",
                                    (*args, limit))
        return [LeadState.model_validate_json(r[0]) for r in rows]

    def count_leads(self) -> int:
        row = self._conn().execute("SELECT COUNT(*) FROM leads").fetchone()
        return int(row[0])

    def iter_leads(self, after_id: str | None = None, limit: int = 500) -> list[LeadState]:
        rows = self._conn().execute(
            "SELECT doc FROM leads WHERE lead_id > ? ORDER BY lead_id LIMIT ?",
            (after_id or "", limit))
        return [LeadState.model_validate_json(r[0]) for r in rows]

    def due_for_review(self, now: datetime, limit: int = 500,
                       buckets: Sequence[int] | None = None) -> list[LeadState]:
        where, args = "next_review_at IS NOT NULL AND next_review_at <= ?", [now.timestamp()]
        if buckets is not None:
            where += f" AND shard IN ({','.join('?' * len(buckets))})"
            args += [float(b) for b in buckets]
        rows = self._conn().execute(
            f"SELECT doc FROM leads WHERE {where} ORDER BY next_review_at, lead_id LIMIT ?",  # noqa: S608
            (*args, limit))
        return [LeadState.model_validate_json(r[0]) for r in rows]

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        rows = self._conn().execute(
            "SELECT doc FROM handovers WHERE delivered = 0 AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id LIMIT ?", (now.timestamp(), limit))
        return [StageChange.model_validate_json(r[0]) for r in rows]

    def record_handover(self, change: StageChange, lease: datetime | None = None) -> bool:
        # a closed change's row keeps its expiry in `next_attempt_at`, so the purge below
        # finds it through the `handovers_pending` index (delivered, next_attempt_at)
        due = change.expires_at if change.delivered and change.expires_at else (
            change.next_attempt_at)
        # the stored lead id stands: a re-key may have moved the change since the read
        sql, args = "UPDATE handovers SET delivered = ?, next_attempt_at = ?, " \
            "doc = json_set(?, '$.lead_id', lead_id) WHERE id = ?", [
                int(change.delivered), due.timestamp(), change.model_dump_json(), change.id]
        if lease is not None:  # still this claim: the claim stored exactly this float
            sql, args = sql + " AND delivered = 0 AND next_attempt_at = ?", [
                *args, lease.timestamp()]
        with self._tx() as conn:
            return int(conn.execute(sql, args).rowcount) == 1

    def purge_handovers(self, now: datetime) -> int:
        """Delete the closed changes expired at `now` (a row closed by an older release
        has its last attempt's time there: it goes at the first purge)."""
        where, args = "FROM handovers WHERE delivered = 1 AND next_attempt_at <= ?", (
            now.timestamp(),)
        if self._conn().execute(f"SELECT 1 {where} LIMIT 1", args).fetchone() is None:
            return 0  # nothing expired: no write lock taken (every sweep asks)
        with self._tx() as conn:
            return int(conn.execute(f"DELETE {where}", args).rowcount)

    def esp_synced(self, tool: str, lead_ids: Sequence[str]) -> dict[str, EspSynced]:
        found: dict[str, EspSynced] = {}
        ids = list(lead_ids)
        for start in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for (doc,) in self._conn().execute(
                    f"SELECT doc FROM esp_sync WHERE tool = ? AND lead_id IN ({marks})",  # noqa: S608
                    (tool, *chunk)):
                record = EspSynced.model_validate_json(doc)
                found[record.lead_id] = record
        return found

    def record_esp_synced(self, records: Sequence[EspSynced]) -> None:
        with self._tx() as conn:
            conn.executemany("INSERT OR REPLACE INTO esp_sync (tool, lead_id, doc) "
                             "VALUES (?, ?, ?)",
                             [(r.tool, r.lead_id, r.model_dump_json()) for r in records])

    def put_lead(self, lead: LeadState) -> None:
        with self._tx() as conn:
            self._stage_lead_write(conn, lead)

    def claim_token(self, token: str, owner: str, expires_at: datetime | None = None) -> bool:
        with self._tx() as conn:  # the first claim's expiry stays (purge_used_tokens)
            conn.execute("INSERT OR IGNORE INTO used_tokens (token, owner, expires_at) "
                         "VALUES (?, ?, ?)", (token, owner, _ts(expires_at)))
            row = conn.execute("SELECT owner FROM used_tokens WHERE token = ?",
                               (token,)).fetchone()
        return bool(row and row[0] == owner)

    def order_owner(self, order_key: str) -> str | None:
        row = self._conn().execute("SELECT lead_id FROM order_index WHERE order_key = ?",
                                   (order_key,)).fetchone()
        return str(row[0]) if row else None

    def orders_of(self, lead_id: str) -> dict[str, Order]:
        rows = self._conn().execute(
            "SELECT order_key, doc FROM order_records WHERE lead_id = ? ORDER BY order_key",
            (lead_id,))
        return {r[0]: Order.model_validate_json(r[1]) for r in rows}

    def order_record(self, lead_id: str, order_key: str) -> Order | None:
        row = self._conn().execute(
            "SELECT doc FROM order_records WHERE lead_id = ? AND order_key = ?",
            (lead_id, order_key)).fetchone()
        return Order.model_validate_json(row[0]) if row else None

    def order_alias(self, alias: str) -> str | None:
        row = self._conn().execute("SELECT order_key FROM order_aliases WHERE alias = ?",
                                   (alias,)).fetchone()
        return str(row[0]) if row else None

    def record_aliases(self, aliases: Mapping[str, str],
                       expires_at: datetime | None = None) -> None:
        if not aliases:
            return
        with self._tx() as conn:  # an erased order's marker expires (purge_expired_erasures)
            conn.executemany(
                "INSERT INTO order_aliases (alias, order_key, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (alias) DO UPDATE SET order_key = excluded.order_key, "
                "expires_at = excluded.expires_at",
                [(alias, key, _ts(expires_at)) for alias, key in aliases.items()])

    def purge_expired_erasures(self, now: datetime) -> int:
        with self._tx() as conn:
            return purge_erasures(conn, now)

    def purge_used_tokens(self, now: datetime) -> int:
        with self._tx() as conn:
            return int(conn.execute("DELETE FROM used_tokens WHERE expires_at <= ?",
                                    (now.timestamp(),)).rowcount)

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        with self._tx() as conn:  # one transaction: no writer sees half an erasure
            found = self._erase_rows(conn, lead_id, erased_at)
        self.erase_visitors(lead_id)
        return found

    def move_away(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        with self._tx() as conn:  # one transaction, like an erasure's tombstone
            if not stage_move(conn, lead_id, moved_to, moved_at):
                return False
            found = self._erase_rows(conn, lead_id, None)
        self.erase_visitors(lead_id)
        return found

    def record_move(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        with self._tx() as conn:
            return stage_move(conn, lead_id, moved_to, moved_at)

    def forget_move(self, lead_id: str, moved_to: str) -> bool:
        with self._tx() as conn:
            return bool(conn.execute("DELETE FROM tombstones WHERE lead_id = ? AND "
                                     "moved_to = ?", (lead_id, moved_to)).rowcount)

    def erase_leftover(self, lead_id: str) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
            stone = self._tombstone(conn, lead_id)
            if row is None or stone is None or stone.restarted(
                    LeadState.model_validate_json(row[0])):
                return False
            return self._erase_rows(conn, lead_id, None)

    def _erase_rows(self, conn: sqlite3.Connection, lead_id: str,
                    erased_at: datetime | None) -> bool:
        """`erase` inside the caller's transaction (also the re-keying of a lead whose new
        id is erased, `SqliteRekey`); the visitor records are the caller's to erase."""
        if erased_at is not None:  # a moved record of this id becomes a plain tombstone
            conn.execute("INSERT OR REPLACE INTO tombstones (lead_id, erased_at) "
                         "VALUES (?, ?)", (lead_id, _utc(erased_at)))
            # moved records pointing here would name the erased lead id: they go too
            conn.execute("DELETE FROM tombstones WHERE moved_to = ?", (lead_id,))
        conn.execute("DELETE FROM order_index WHERE lead_id = ?", (lead_id,))
        conn.execute("DELETE FROM order_aliases WHERE lead_id = ?", (lead_id,))
        conn.execute("DELETE FROM order_records WHERE lead_id = ?", (lead_id,))
        conn.execute("DELETE FROM handovers WHERE lead_id = ?", (lead_id,))
        conn.execute("DELETE FROM esp_sync WHERE lead_id = ?", (lead_id,))
        found = conn.execute("DELETE FROM leads WHERE lead_id = ?", (lead_id,)).rowcount
        found += conn.execute("DELETE FROM history WHERE lead_id = ?", (lead_id,)).rowcount
        return found > 0

    def close(self) -> None:
        self._checkpoints.stop()
        self._commits.close()
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
        self._checkpoints = Checkpointer(self.path, SYNCHRONOUS, owner=self)
        self._commits = self._group_commit()
