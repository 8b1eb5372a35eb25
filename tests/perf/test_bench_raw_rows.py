"""The benchmarks' raw side writes the rows the adapter writes (issue 20's ratios compare
like with like): a raw lead row must read back as the lead the adapter would have stored,
with its ledger rows and its dashboard statistics. A column added to the adapter's lead
statement and not to the raw side broke `make bench` once; this catches it in `make test`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import NOW

from bench import email_batch, ingest_throughput
from leadscore.store.sqlite import SqliteStore


def test_the_email_batch_raw_writes_store_what_the_adapter_would(tmp_path: Path) -> None:
    # GIVEN the batch the benchmark sends, planned as the request would plan it
    planned = email_batch.planned_writes(
        email_batch.batch_body("raw", int(NOW.timestamp())), NOW)
    # WHEN the benchmark's raw side writes it with plain SQL
    assert email_batch.raw_sql(tmp_path / "raw.db", planned) > 0
    # THEN every lead reads back as planned, with its ledger rows and counted statistics
    store = SqliteStore(tmp_path / "raw.db")
    try:
        for write in planned:
            assert store.get_lead(write.lead.lead_id) == write.lead
            assert len(store.history(write.lead.lead_id)) == len(write.history)
        stats = store.lead_stats(complete_only=False)
        assert stats is not None and stats["total"] == len(planned)
    finally:
        store.close()


def test_the_ingest_raw_writes_one_lead_and_one_ledger_row_per_event(tmp_path: Path) -> None:
    # WHEN the ingestion benchmark's raw side writes 20 events for 20 addresses
    assert ingest_throughput.raw_sql(tmp_path / "raw.db", 20) > 0
    # THEN there are 20 leads and 20 ledger rows, each lead counted once
    conn = sqlite3.connect(tmp_path / "raw.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM leads").fetchone()[0] == 20
        assert conn.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 20
    finally:
        conn.close()
    store = SqliteStore(tmp_path / "raw.db")
    try:
        stats = store.lead_stats(complete_only=False)
        assert stats is not None and stats["total"] == 20
    finally:
        store.close()
