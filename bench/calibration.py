"""Calibration (issue 16): back-test speed (leads per second) and memory on SQLite, at
1,000 and 100,000 leads side by side in one run.

Seeding: 500 generated leads (tests/calibration/generator.py) are written through the
adapter's own commit; the other leads are copies of them made inside SQLite (one
`INSERT ... SELECT` per copy, with the copy's address and lead id in its documents), so
100,000 leads load in seconds instead of 100,000 requests, while every lead still has its
own document and history rows and is rebuilt from them during the back-test. Copies share
their template's order records, which the back-test never reads.

Each size is calibrated in a fresh process, as `leadscore calibrate` does it (the current
rules, 200 bootstrap resamples), which reports its time, its resident memory just before
calibrating and its peak resident memory (`VmHWM`). Flat memory means the peak at
100,000 leads is close to the peak at 1,000: pages of leads are read and dropped, and what
grows is only the metrics' arrays (a score, a stage and a label per lead, then one sort),
measured on their own with tracemalloc on synthetic scores.

LEADSCORE_BENCH_CALIBRATION_LEADS sets the large size (default 100,000), for slow machines.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
SMALL = 1_000
LARGE = int(os.environ.get("LEADSCORE_BENCH_CALIBRATION_LEADS", "100000"))


def _email(i: int, template: str) -> str:
    return f"c{i}-{template}"


def _clone_sql(conn: sqlite3.Connection, table: str) -> str:
    """Copy one lead's rows of `table`: the lead id from the first parameter, the document
    with the template's address and lead id replaced (parameters 2-5), other columns as they
    are (whatever columns the adapter has)."""
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    values = ["?1" if c == "lead_id" else "replace(replace(doc, ?2, ?3), ?4, ?5)" if c == "doc"
              else c for c in columns]
    return (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (names from the schema)
            f"SELECT {', '.join(values)} FROM {table} WHERE lead_id = ?4")


def seed(path: Path, count: int) -> float:
    """A store of `count` leads at `path`; returns the seconds it took."""
    start = time.perf_counter()
    rules, store = default_rules(), SqliteStore(path)
    templates = []
    with store._tx() as conn:  # benchmark set-up: the adapter's own commit, in one transaction
        for j, lead in enumerate(generate(TEMPLATES, CUT, seed=11)):
            email = _email(j, lead.email)
            lead_id = lead_id_for(email)
            events = [e.model_copy(update={"email": email}) for e in lead.events]
            state, history = apply_events(None, lead_id, email, events, rules, NOW)
            store._commit(conn, lead_id, LeadWrite(lead=state, history=history))
            templates.append((lead_id, email))
        leads, history = _clone_sql(conn, "leads"), _clone_sql(conn, "history")
        copies = []
        for i in range(TEMPLATES, count):
            template_id, template_email = templates[i % TEMPLATES]
            email = _email(i, template_email.split("-", 1)[1])
            copies.append((lead_id_for(email), template_email, email, template_id))
        rows = [(lead_id, t_email, email, t_id, lead_id) for lead_id, t_email, email, t_id
                in copies]
        conn.executemany(leads, rows)
        conn.executemany(history, rows)
    store.close()
    return time.perf_counter() - start


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_now() -> int:
    """This process's resident memory now, in bytes (Linux), else its peak so far."""
    return _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_peak() -> int:
    """This process's peak resident memory. Linux's `ru_maxrss` keeps the parent's peak
    across fork and exec (a child of a big parent looks big), so read the high-water mark
    of this process's own memory (`VmHWM`) where there is one."""
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(path: str) -> dict[str, Any]:
    """Calibrate the store at `path` once (run in a fresh process by `run`)."""
    store = SqliteStore(path)
    rules = {"current": default_rules()}
    before = _rss_now()
    start, cpu = time.perf_counter(), time.process_time()
    report = calibrate(store, rules, NOW, at=CUT, resamples=200)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _rss_peak()
    return {"leads": report.examined, "included": report.included, "seconds": seconds,
            "cpu_seconds": cpu,
            "rss_before": before, "rss_peak": peak, "auc": report.results[0].auc}


def _in_fresh_process(path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.calibration", "--measure", str(path)],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _metrics_peak(count: int) -> int:
    rng = random.Random(3)
    sample = Sample(at=CUT, window_days=90,
                    scores={"current": array("d", (round(rng.uniform(-40, 120), 2)
                                                   for _ in range(count)))},
                    stages={"current": bytearray(rng.randrange(3) for _ in range(count))},
                    labels=bytearray(rng.random() < 0.1 for _ in range(count)))
    tracemalloc.start()
    try:
        # fewer resamples than a real run: each reuses the same arrays, the peak is the same
        evaluate(sample, {"current": default_rules()}, purchases_are_wins=True, resamples=20)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run() -> None:
    print("\n== calibration: back-test on SQLite (issue 16) ==")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in (SMALL, LARGE):
            path = Path(folder) / f"{count}.db"
            seconds = seed(path, count)
            print(f"seeded {count:,} leads in {seconds:.1f} s ({count / seconds:,.0f} leads/s; "
                  f"{min(count, TEMPLATES)} through the adapter's commit, the rest copied "
                  "in SQLite)")
            results[count] = _in_fresh_process(path)
            path.unlink()
    for count, r in results.items():
        print(f"calibrate {count:>7,} leads: {r['seconds']:5.1f} s, "
              f"{r['leads'] / r['seconds']:6,.0f} leads/s "
              f"({r['leads'] / r['cpu_seconds']:,.0f} per CPU second; 200 bootstrap resamples); "
              f"peak RSS {r['rss_peak'] / 1e6:.1f} MB "
              f"({(r['rss_peak'] - r['rss_before']) / 1e6:+.1f} MB while calibrating)")
    small, large = results[SMALL], results[LARGE]
    print(f"memory ratio, peak RSS at {LARGE:,} / {SMALL:,} leads: "
          f"{large['rss_peak'] / small['rss_peak']:.2f} (flat = near 1); "
          f"{(large['rss_peak'] - small['rss_peak']) / (LARGE - SMALL):.0f} bytes per extra "
          "lead")
    print("what grows (the metrics' per-lead arrays), tracemalloc on synthetic scores: "
          + ", ".join(f"{n:,} scores {_metrics_peak(n) / 1e6:.1f} MB"
                      for n in (10_000, 100_000)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        run()
