"""`make bench`: every benchmark, printed as ratios measured side by side in one run."""

from __future__ import annotations

import logging
import sys

from bench import (
    dashboard,
    decay_run,
    email_batch,
    form_history,
    form_throughput,
    ingest_throughput,
    load,
    purchase_throughput,
    sizing,
    tracking,
)
from bench.harness import firestore_available


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with firestore_available() as has_firestore:
        kinds = ["sqlite", "firestore"] if has_firestore else ["sqlite"]
        ingest_throughput.run(kinds)
        purchase_throughput.run(kinds)
        email_batch.run(kinds)
        form_throughput.run(kinds)
        form_history.run(kinds)  # issue 21: constant-cost form posts
        decay_run.run(kinds)
        tracking.run(kinds)
        dashboard.run(["sqlite"])  # issue 17 (the emulator's counts scan: not measured)
    load.run()
    sizing.run()  # on paper: the model behind the README's sizing section
    return 0


if __name__ == "__main__":
    sys.exit(main())
