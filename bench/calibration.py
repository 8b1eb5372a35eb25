"""Calibration (issue 16): back-testing speed (leads per second) and peak memory on SQLite.

The store is bulk-loaded with copies of 500 generated leads (each copy its own lead id,
document and history rows), so loading is fast while every lead is still rebuilt from its
own history during the back-test. Peak memory is measured with tracemalloc on a separate,
smaller run (tracemalloc slows Python about threefold); what grows with the number of leads
is only the per-lead arrays of the metrics, measured directly on 100,000 synthetic scores.
"""

from __future__ import annotations

import random
import tempfile
import time
import tracemalloc
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.service.calibration import Sample, calibrate, evaluate
from leadscore.store.port import LeadWrite
from leadscore.store.sqlite import SqliteStore
from tests.calibration.generator import generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CUT = NOW - timedelta(days=90)
TEMPLATES = 500
BUDGET_S = 120.0


def _store(path: Path, count: int) -> SqliteStore:
    rules, store = default_rules(), SqliteStore(path)
    shapes = []
    for lead in generate(TEMPLATES, CUT, seed=11):
        state, history = apply_events(None, "x", lead.email, lead.events, rules, NOW)
        shapes.append((state, history))
    with store._tx() as conn:  # benchmark set-up only: the adapter's own layout, in bulk
        for i in range(count):
            state, history = shapes[i % TEMPLATES]
            email = f"c{i}-{state.email}"
            lead_id = lead_id_for(email)
            lead = state.model_copy(update={"lead_id": lead_id, "email": email})
            store._commit(conn, lead_id, LeadWrite(lead=lead, history=history))
    return store


def _run(store: SqliteStore, resamples: int) -> float:
    start = time.perf_counter()
    calibrate(store, {"current": default_rules()}, NOW, at=CUT, resamples=resamples)
    return time.perf_counter() - start


def _peak(store: SqliteStore) -> int:
    tracemalloc.start()
    try:
        calibrate(store, {"current": default_rules()}, NOW, at=CUT, resamples=200)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _metrics_peak(count: int) -> int:
    rng = random.Random(3)
    sample = Sample(at=CUT, window_days=90,
                    scores={"current": array("d", (round(rng.uniform(-40, 120), 2)
                                                   for _ in range(count)))},
                    stages={"current": bytearray(rng.randrange(3) for _ in range(count))},
                    labels=bytearray(rng.random() < 0.1 for _ in range(count)))
    tracemalloc.start()
    try:
        evaluate(sample, {"current": default_rules()}, purchases_are_wins=True, resamples=200)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run() -> None:
    print("\n== calibration: back-test on SQLite (issue 16) ==")
    with tempfile.TemporaryDirectory() as folder:
        small, large = _store(Path(folder) / "2k.db", 2_000), _store(Path(folder) / "10k.db",
                                                                    10_000)
        seconds = _run(large, 200)
        rate = 10_000 / seconds
        print(f"10,000 leads: {seconds:.1f} s with 200 bootstrap resamples, "
              f"{rate:,.0f} leads/s")
        peak_small, peak_large = _peak(small), _peak(large)
        print(f"peak traced memory: 2,000 leads {peak_small / 1e6:.2f} MB, "
              f"10,000 leads {peak_large / 1e6:.2f} MB "
              f"({(peak_large - peak_small) / 8_000:.0f} bytes per extra lead)")
        projected = 100_000 / rate
        if projected > BUDGET_S:
            print(f"100,000 leads: skipped, projected {projected:.0f} s at this rate "
                  f"(over the {BUDGET_S:.0f} s budget)")
        else:
            seconds = _run(_store(Path(folder) / "100k.db", 100_000), 200)
            print(f"100,000 leads: {seconds:.1f} s, {100_000 / seconds:,.0f} leads/s")
        for count in (10_000, 100_000):
            print(f"metrics on {count:,} scores (the only part that grows): peak "
                  f"{_metrics_peak(count) / 1e6:.1f} MB")


if __name__ == "__main__":
    run()
