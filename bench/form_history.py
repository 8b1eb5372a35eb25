"""Constant-cost form posts (issue 21): a form post for an address with 10,000 history
entries against one for an unknown address, on the same store, side by side.

The post path reads the lead and one ledger key, never the history, so the two should cost
the same (goal: known/unknown <= 1.5x); timing must not reveal which addresses we know."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import new_store
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.rules import default_rules
from leadscore.service.forms import build_event, submission_key, submit
from leadscore.service.ingest import ingest

HISTORY = 10_000
POSTS = 200
WINDOW = timedelta(minutes=10)


def _seed(store: Any, email: str, now: datetime) -> None:
    rules = default_rules()
    for start in range(0, HISTORY, 1000):
        ingest(store, rules, [EVENT_ADAPTER.validate_python({
            "type": "email_delivered", "email": email, "source": "bench",
            "idempotency_key": f"d{i}", "occurred_at": now - timedelta(minutes=i)})
            for i in range(start, start + 1000)], now)


def _post(store: Any, email: str, i: int, now: datetime) -> float:
    profile = {"company": "Acme", "note": f"n{i}"}
    key, previous = submission_key(email, "contact", profile, now, WINDOW)
    event = build_event("web-form", key, email, "contact", profile, now)
    started = time.perf_counter()
    submit(store, default_rules(), event, now, also_seen_as=previous, window=WINDOW)
    return time.perf_counter() - started


def run(kinds: list[str]) -> None:
    print(f"\n## Form posts: an address with {HISTORY:,} history entries against unknown "
          f"addresses, {POSTS} posts each (median)")
    print(f"{'store':<10}{'known ms':>10}{'unknown ms':>12}{'known/unknown':>15}")
    now = datetime.now(UTC)
    for kind in kinds:
        with tempfile.TemporaryDirectory() as folder:
            store = new_store(kind, Path(folder))
            _seed(store, "busy@bench.example", now)
            known, unknown = [], []
            for i in range(POSTS):  # interleaved, so load on the machine hits both alike
                known.append(_post(store, "busy@bench.example", i, now))
                unknown.append(_post(store, f"new{i}@bench.example", i, now))
            k, u = statistics.median(known) * 1000, statistics.median(unknown) * 1000
            print(f"{kind:<10}{k:>10.2f}{u:>12.2f}{k / u:>15.2f}")
            store.close()


if __name__ == "__main__":
    run(["sqlite"])
