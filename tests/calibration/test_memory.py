"""Calibration streams: its memory grows by a few bytes a lead, not by a lead's documents.

What it measures: the peak of memory allocated by Python (tracemalloc) during a whole
`calibrate` (read, rebuild, metrics with 20 resamples) on SQLite stores of 500 and 2,500
leads, as bytes added per extra lead; and, for contrast, what holding the leads themselves
would cost. tracemalloc slows Python about threefold, so the sizes are small and there is
no timing; `make bench` compares 1,000 with 100,000 leads by peak resident memory (RSS),
each in a fresh process, and prints leads per second."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadscore.domain.rules import default_rules
from leadscore.service.calibration import calibrate
from leadscore.service.ingest import ingest
from leadscore.store.sqlite import SqliteStore

from .generator import event

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CUT = NOW - timedelta(days=90)
PER_LEAD_BUDGET = 400  # bytes a lead may add to the peak (about 100 at 10,000 leads)


def seeded(path: Path, n: int) -> SqliteStore:
    store, rules = SqliteStore(path), default_rules()
    events = [event("form_submitted", f"m{i}@acme{i % 50}.com", f"f{i}",
                    CUT - timedelta(days=1 + i % 60), source="web", form_kind="webinar",
                    profile={"job_title": "CTO" if i % 3 else "student"})
              for i in range(n)]
    events += [event("outcome", f"m{i}@acme{i % 50}.com", f"w{i}", CUT + timedelta(days=5),
                     source="crm", outcome="deal_won") for i in range(0, n, 7)]
    for start in range(0, len(events), 1000):
        ingest(store, rules, events[start:start + 1000], NOW)
    return store


def peak_while_calibrating(store: SqliteStore) -> int:
    tracemalloc.start()
    try:
        report = calibrate(store, {"current": default_rules()}, NOW, at=CUT, resamples=20)
        return tracemalloc.get_traced_memory()[1] if report.included else 0
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_number_of_leads_grows(tmp_path: Path) -> None:
    # GIVEN SQLite stores of 500 and 2,500 leads
    small, large = seeded(tmp_path / "small.db", 500), seeded(tmp_path / "large.db", 2500)
    # WHEN each is calibrated under tracemalloc
    small_peak, large_peak = peak_while_calibrating(small), peak_while_calibrating(large)
    # THEN the 2,000 extra leads add at most a few hundred bytes each to the peak
    per_lead = (large_peak - small_peak) / 2000
    assert small_peak > 0 and per_lead < PER_LEAD_BUDGET, (small_peak, large_peak, per_lead)
    # ... where holding the leads themselves (without their histories) would cost more
    tracemalloc.start()
    try:
        held = large.iter_leads(limit=500)
        per_held_lead = tracemalloc.get_traced_memory()[0] / len(held)
    finally:
        tracemalloc.stop()
    assert per_held_lead > 3 * PER_LEAD_BUDGET, per_held_lead
