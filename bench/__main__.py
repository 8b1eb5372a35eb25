"""`make bench`: every benchmark, printed as ratios measured side by side in one run."""

from __future__ import annotations

import logging
import sys

from bench import (
    calibration,
    cold_start,
    dashboard,
    decay_run,
    email_batch,
    form_history,
    form_throughput,
    ingest_throughput,
    load,
    purchase_throughput,
    scoring,
    sizing,
    tracking,
)
from bench.harness import firestore_available, verdict


def issue_20(goals: dict[str, tuple[str, bool]], kinds: list[str]) -> None:
    """The four measures of issue 20's goals (SQLite; the emulator's columns if given)."""
    # the write goals against raw writes of the adapter's durability, and (in brackets)
    # against raw writes without a sync at each commit, the CPU-bound rate
    ratio, cpu_bound, met = email_batch.run(kinds)
    goals["SendGrid batch e2e/raw >= 0.5 (SQLite)"] = (f"{ratio:.2f} ({cpu_bound:.2f})", met)
    # the HTTP goals with both clients (bench/clients.py), judged with wrk
    ingest, met = ingest_throughput.run(kinds)
    goals["/ingest e2e/raw >= 0.5 (SQLite, 8 writers, 1 event/request)"] = (", ".join(
        f"{name} {ratio:.2f} ({cpu_bound:.2f})" for name, (ratio, cpu_bound) in ingest.items()),
        met)
    mixed, met = load.run()
    goals["mixed load req/s >= 0.5x, p99 <= 2x hello-world"] = (", ".join(
        f"{name} {rps:.2f}x, {p99:.1f}x" for name, (rps, p99) in mixed.items()), met)
    worst, met = cold_start.run()
    goals["cold import <= 1.3x ff + client libraries (worst target)"] = (f"{worst:.2f}", met)


def main() -> int:
    """`python -m bench` runs everything; `python -m bench issue20` only issue 20's four
    measures on SQLite (to measure them alone on a shared machine)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    goals: dict[str, tuple[str, bool]] = {}
    if sys.argv[1:] == ["issue20"]:
        issue_20(goals, ["sqlite"])
    elif sys.argv[1:] == ["workers"]:  # the mixed load on 1 and 2 worker processes, alternated
        load.compare_workers()
        return 0
    else:
        with firestore_available() as has_firestore:
            kinds = ["sqlite", "firestore"] if has_firestore else ["sqlite"]
            issue_20(goals, kinds)
            purchase_throughput.run(kinds)
            form_throughput.run(kinds)
            form_history.run(kinds)  # issue 21: constant-cost form posts
            decay_run.run(kinds)
            tracking.run(kinds)
            dashboard.run(kinds)  # issue 17: reads per page view (the emulator at 1k and 10k)
        scoring.run()  # cost per event against the previous release's engine (goal <= 1.3x)
        calibration.run()  # SQLite only: a back-test reads, it never writes
        sizing.run()  # on paper: the model behind the README's sizing section
    print("\n## Goals of issue 20, from this run")
    for goal, (value, met) in goals.items():
        print(f"{goal:<60} {value:>12}  {verdict(met)}")
    print("(the HTTP goals: wrk, which judges them, then Python threads; bench/clients.py)")
    print("(in brackets: against raw writes without a sync at each commit; the goals are "
          "judged against raw writes of the store's own durability, synchronous=FULL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
