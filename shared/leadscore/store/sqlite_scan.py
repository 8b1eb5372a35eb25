"""The SQLite adapter's `EventScan` (see port.py): a page of leads and their stored events
in two queries, the events left as the JSON the history keeps (issue 16's back-tests)."""

from __future__ import annotations

import sqlite3

from leadscore.store.port import StoredEvents


class SqliteEventScan:
    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # SqliteStore's

    def scan_events(self, after_id: str | None = None, limit: int = 500) -> list[StoredEvents]:
        conn = self._conn()
        leads = conn.execute(
            "SELECT lead_id, json_extract(doc, '$.email') FROM leads WHERE lead_id > ? "
            "ORDER BY lead_id LIMIT ?", (after_id or "", limit)).fetchall()
        if not leads:
            return []
        found = {lead_id: StoredEvents(lead_id=lead_id, email=email, events=[])
                 for lead_id, email in leads}
        # the page is a contiguous range of lead ids, so one range read of the history's
        # primary key covers it; entries that are not events (decay, rescore) are skipped
        rows = conn.execute(
            "SELECT lead_id, json_extract(doc, '$.event') FROM history "
            "WHERE lead_id BETWEEN ? AND ? AND json_extract(doc, '$.event') IS NOT NULL "
            "ORDER BY lead_id, at, entry_id", (leads[0][0], leads[-1][0]))
        for lead_id, event in rows:
            page_lead = found.get(lead_id)
            if page_lead is not None:
                page_lead.events.append(event)
        return list(found.values())
