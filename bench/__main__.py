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


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    goals: dict[str, bool] = {}
    with firestore_available() as has_firestore:
        kinds = ["sqlite", "firestore"] if has_firestore else ["sqlite"]
        goals["ingest e2e/raw >= 0.5 (SQLite, 8 writers)"] = ingest_throughput.run(kinds)
        purchase_throughput.run(kinds)
        goals["SendGrid batch e2e/raw >= 0.5 (SQLite)"] = email_batch.run(kinds)
        form_throughput.run(kinds)
        form_history.run(kinds)  # issue 21: constant-cost form posts
        decay_run.run(kinds)
        tracking.run(kinds)
        dashboard.run(kinds)  # issue 17: reads per page view (the emulator at 1k and 10k)
    scoring.run()  # cost per event against the previous release's engine (goal <= 1.3x)
    goals["mixed load >= 0.5x hello-world req/s, p99 <= 2x"] = load.run()
    goals["cold import <= 1.3x functions_framework + client libraries"] = cold_start.run()
    calibration.run()  # SQLite only: a back-test reads, it never writes
    sizing.run()  # on paper: the model behind the README's sizing section
    print("\n## Goals of issue 20, from this run")
    for goal, met in goals.items():
        print(f"{goal:<62} {verdict(met)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
