"""Dashboard aggregations for the SQLite adapter (see `DashboardStats` in port.py): one
`COUNT(*)` per question, and a small table of daily snapshots."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import AbstractContextManager
from typing import Any

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
CREATE INDEX IF NOT EXISTS leads_by_email_status
    ON leads (json_extract(doc, '$.email_status'));
CREATE INDEX IF NOT EXISTS leads_by_stage_since
    ON leads (stage, json_extract(doc, '$.stage_since'), lead_id);
CREATE INDEX IF NOT EXISTS leads_by_movement ON leads (json_extract(doc, '$.movement'));
"""
# the counters the dashboard sums get an index each, so SUM reads the index, not every lead
SUMMED = ("email_opened", "email_opened_machine")
SUM_INDEX = ("CREATE INDEX IF NOT EXISTS leads_by_counter_{name} "
             "ON leads (json_extract(doc, '$.counters.{name}'))")
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

    def _stats_conn(self) -> sqlite3.Connection:
        conn = self._conn()
        if not getattr(self, "_stats_ready", False):  # the table and index on first use
            conn.executescript(STATS_SCHEMA)
            for name in SUMMED:
                conn.execute(SUM_INDEX.format(name=name))
            self._stats_ready = True
        return conn

    def count_matching(self, query: LeadCount) -> int:
        where, args = _where(query)
        row = self._stats_conn().execute(f"SELECT COUNT(*) FROM leads WHERE {where}",  # noqa: S608
                                   args).fetchone()
        return int(row[0])

    def count_handovers(self, delivered: bool, attempted: bool | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM handovers WHERE delivered = ?", [int(delivered)]
        if attempted is not None:
            sql += (" AND json_extract(doc, '$.attempts') > 0" if attempted
                    else " AND json_extract(doc, '$.attempts') = 0")
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
