"""Dashboard aggregations for the SQLite adapter (see `DashboardStats` in port.py): the
statistics table `lead_stats`, one `COUNT(*)` per question for what it does not hold (or
while it is incomplete), and a small table of daily snapshots.

`lead_stats` (key, n) holds the sum of every stored lead's `counted` (domain/lead_stats.py),
kept by triggers on `leads`, so every statement that inserts, upserts or deletes a lead (a
commit, an erasure, a re-key, a seed, even an older release's code) keeps it exact in the
same transaction: a write adds what changed between the old row's `counted` column and the new
one (nothing when they are equal, the common case), a delete takes the old row's back. A
row without `counted` counts as `uncounted`; the table is complete while `uncounted` is 0.
It is created, and filled from the leads already stored, in one transaction the first time
a database is opened by this release."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from leadscore.domain.lead_stats import UNCOUNTED, decode
from leadscore.domain.state import LeadState, Stage
from leadscore.store.port import LeadCount

STATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_snapshots (
    day TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dashboard_documents (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_by_stage_since
    ON leads (stage, json_extract(doc, '$.stage_since'), lead_id);
CREATE INDEX IF NOT EXISTS leads_by_movement ON leads (json_extract(doc, '$.movement'));
"""
# The statements are spelled out with placeholders filled by `_sql` (plain text: no value
# from outside ever reaches them). The `counted` column holds the lead's keys as a JSON
# object (key -> amount: json_each reads it as it is, about twice as fast as splitting the
# document's `key=amount` strings); ITEMS(object, sign) reads it as (k, d); ADD(rows) adds
# the rows' sums into lead_stats.
_UNCOUNTED = "'{\"" + UNCOUNTED + "\":1}'"  # what a row without `counted` counts for
_ITEMS = "SELECT key AS k, SIGNvalue AS d FROM json_each(LIST)"
_ADD = ("INSERT INTO lead_stats (key, n) SELECT k, SUM(d) FROM (ROWS) WHERE 1 GROUP BY k "
        "HAVING SUM(d) != 0 ON CONFLICT (key) DO UPDATE SET n = n + excluded.n")
_NEW = "coalesce(NEW.counted, UNCOUNTED)"
_REPLACED = ("coalesce((SELECT coalesce(counted, UNCOUNTED) FROM leads "
             "WHERE lead_id = NEW.lead_id), '{}')")
_GONE = "coalesce(OLD.counted, UNCOUNTED)"


def _sql(template: str, **parts: str) -> str:
    for name, text in parts.items():
        template = template.replace(name, text)
    return template.replace("UNCOUNTED", _UNCOUNTED)


def _items(counted: str, sign: str = "") -> str:
    return _sql(_ITEMS, SIGN=sign, LIST=counted)


def _add(rows: str) -> str:
    return _sql(_ADD, ROWS=rows)


# Every lead write is an INSERT: an upsert (`sqlite.LEAD_UPSERT`) or, from older code, an
# INSERT OR REPLACE. SQLite fires BEFORE INSERT triggers for both, with the row about to be
# updated or replaced still in place (the upsert's update and the replace's implicit delete
# fire no trigger of ours), so this one trigger adds the difference between that row's
# `counted` and the new one; it does nothing when they are equal (the common case: a score
# that moved within its bucket, an event that changed no count). There is deliberately no
# UPDATE trigger: it would count an upsert twice. Nothing writes `counted` with a plain
# UPDATE (that would escape the statistics).
LEAD_STATS_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS lead_stats (key TEXT PRIMARY KEY, n INTEGER NOT NULL) "
    "WITHOUT ROWID",
    _sql("CREATE TRIGGER IF NOT EXISTS lead_stats_on_write BEFORE INSERT ON leads WHEN NOT "
         "EXISTS (SELECT 1 FROM leads WHERE lead_id = NEW.lead_id AND counted IS NEW.counted) "
         "BEGIN BODY; END", BODY=_add(_items(_NEW) + " UNION ALL " + _items(_REPLACED, "-"))),
    _sql("CREATE TRIGGER IF NOT EXISTS lead_stats_on_delete AFTER DELETE ON leads BEGIN BODY; "
         "END", BODY=_add(_items(_GONE, "-"))),
]
# the leads stored before the table existed, summed once, in the transaction that creates it
_FILL = _add(_sql("SELECT j.key AS k, j.value AS d FROM leads, "
                  "json_each(coalesce(leads.counted, UNCOUNTED)) AS j"))


def counted_column(counted: list[str] | None) -> str | None:
    """The `counted` column of a lead row: a compact JSON object, compared as text by the
    trigger (the same list always gives the same text)."""
    return None if counted is None else _COMPACT(decode(counted))


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode  # `json.dumps` with separators
# builds an encoder per call: most of this function's cost


# Indexes the page's email-status counts and open sums used before the statistics held
# them: every lead write paid for them (an index on a JSON expression parses the document),
# so they go; the aggregation queries left for an incomplete store scan instead, until the
# recount.
RETIRED_INDEXES = ("leads_by_email_status", "leads_by_counter_email_opened",
                   "leads_by_counter_email_opened_machine")
PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _where(query: LeadCount) -> tuple[str, list[object]]:
    parts, args = ["1=1"], list[object]()
    for column, value in (("stage", query.stage), ("grade", query.grade)):
        if value is not None:
            parts.append(f"{column} = ?")
            args.append(value)
    if query.non_opener is not None:
        parts.append("non_opener = ?")
        args.append(int(query.non_opener))
    if query.email_status is not None:  # not a column: read from the document, still one COUNT
        parts.append("json_extract(doc, '$.email_status') = ?")
        args.append(query.email_status)
    if query.min_score is not None:
        parts.append("score >= ?")
        args.append(query.min_score)
    if query.below_score is not None:
        parts.append("score < ?")
        args.append(query.below_score)
    return " AND ".join(parts), args


class SqliteStats:
    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # SqliteStore's

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def _ensure_lead_stats(self) -> None:
        """Create `lead_stats` and its triggers, filled from the stored leads, atomically
        (the existence check runs under the write lock: two processes opening one older
        database fill it once)."""
        with self._tx() as conn:
            made = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                "AND name = 'lead_stats'").fetchone()
            for statement in LEAD_STATS_SCHEMA:
                conn.execute(statement)
            if not made:
                conn.execute(_FILL)
            for name in RETIRED_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")

    def lead_stats(self, complete_only: bool = True) -> dict[str, int] | None:
        rows = dict(self._conn().execute("SELECT key, n FROM lead_stats WHERE n != 0"))
        return None if complete_only and rows.get(UNCOUNTED, 0) else rows

    def mark_stats_complete(self) -> None:
        """Nothing to mark: the triggers count every row, `uncounted` says what is missing."""

    def _stats_conn(self) -> sqlite3.Connection:
        conn = self._conn()
        if not getattr(self, "_stats_ready", False):  # the table and index on first use
            conn.executescript(STATS_SCHEMA)
            self._stats_ready = True
        return conn

    def count_matching(self, query: LeadCount) -> int:
        where, args = _where(query)
        row = self._stats_conn().execute(f"SELECT COUNT(*) FROM leads WHERE {where}",  # noqa: S608
                                   args).fetchone()
        return int(row[0])

    def count_handovers(self, delivered: bool, attempted: bool | None = None,
                        given_up: bool | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM handovers WHERE delivered = ?", [int(delivered)]
        if attempted is not None:
            sql += (" AND json_extract(doc, '$.attempts') > 0" if attempted
                    else " AND json_extract(doc, '$.attempts') = 0")
        if given_up is not None:  # records older than the field have none: not given up
            sql += " AND coalesce(json_extract(doc, '$.given_up'), 0) = ?"
            args.append(int(given_up))
        return int(self._conn().execute(sql, args).fetchone()[0])

    def put_snapshot(self, day: str, counts: dict[str, int]) -> None:
        self._stats_conn()
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO dashboard_snapshots (day, doc) VALUES (?, ?)",
                         (day, json.dumps(counts, sort_keys=True)))

    def snapshots(self, limit: int = 30) -> dict[str, dict[str, int]]:
        rows = self._stats_conn().execute(
            "SELECT day, doc FROM dashboard_snapshots ORDER BY day DESC LIMIT ?", (limit,))
        return {day: json.loads(doc) for day, doc in reversed(list(rows))}

    def newest_in_stage(self, stage: Stage, limit: int) -> list[LeadState]:
        rows = self._stats_conn().execute(
            "SELECT doc FROM leads WHERE stage = ? ORDER BY json_extract(doc, '$.stage_since') "
            "DESC, lead_id DESC LIMIT ?", (stage, limit))
        return [LeadState.model_validate_json(r[0]) for r in rows]

    def top_movers(self, up: bool, limit: int) -> list[LeadState]:
        sql = ("SELECT doc FROM leads WHERE json_extract(doc, '$.movement') > 0 "
               "ORDER BY json_extract(doc, '$.movement') DESC LIMIT ?" if up else
               "SELECT doc FROM leads WHERE json_extract(doc, '$.movement') < 0 "
               "ORDER BY json_extract(doc, '$.movement') ASC LIMIT ?")
        return [LeadState.model_validate_json(r[0])
                for r in self._stats_conn().execute(sql, (limit,))]

    def sum_counter(self, name: str) -> int:
        if not PLAIN_NAME.fullmatch(name):
            raise ValueError(f"not a counter name: {name!r}")
        path = f"json_extract(doc, '$.counters.{name}')"
        row = self._stats_conn().execute(
            f"SELECT SUM({path}) FROM leads WHERE {path} > 0").fetchone()  # noqa: S608
        return int(row[0] or 0)

    def put_calibration(self, report: dict[str, Any]) -> None:
        self._stats_conn()
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO dashboard_documents (name, doc) VALUES (?, ?)",
                         ("calibration", json.dumps(report, sort_keys=True)))

    def latest_calibration(self) -> dict[str, Any] | None:
        row = self._stats_conn().execute(
            "SELECT doc FROM dashboard_documents WHERE name = 'calibration'").fetchone()
        return json.loads(row[0]) if row else None
