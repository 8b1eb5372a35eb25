"""Website tracking (issue 14): page-view batches from many anonymous visitors through
`/track/v1/batch`, as a ratio of the raw store write rate; and the identification of a
visitor with 1,000 anonymous events, as a ratio of writing those events for a known lead."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import ThreadSessions, local_server, new_store, timed_parallel
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.server import build_app
from leadscore.service.ingest import ingest
from leadscore.service.visitors import record
from leadscore.tracking.mapping import Policy, map_message

KEY, WRITERS, PER_BATCH = "bench-write-key", 8, 50
PATHS = ["/", "/pricing", "/product/a", "/blog/b", "/case-studies/c"]


def _batch(n: int, now: datetime) -> dict[str, Any]:
    return {"batch": [{"type": "page", "anonymousId": f"visitor-{n}-{i}",
                       "messageId": f"m-{n}-{i}", "properties": {"path": PATHS[i % 5]},
                       "timestamp": (now - timedelta(minutes=i)).isoformat()}
                      for i in range(PER_BATCH)]}


def page_views(kind: str, batches: int) -> tuple[float, float]:
    """(raw store writes/s, tracked page views/s) on one store."""
    rules, now = default_rules(), datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        emails = [f"raw{i}@bench.example" for i in range(batches * 4)]
        docs = [apply_events(None, lead_id_for(e), e, [], rules, now)[0] for e in emails]
        raw = timed_parallel(docs, store.put_lead, WRITERS)
        install(Container(Settings(track_server_keys=KEY, log_level="WARNING"), store=store,
                          rules=rules))
        session = ThreadSessions().get
        try:
            with local_server(build_app()) as base:
                def post(n: int) -> None:
                    session().post(f"{base}/track/v1/batch", json=_batch(n, now), timeout=120,
                                   headers={"X-Write-Key": KEY}).raise_for_status()
                rate = timed_parallel(list(range(batches)), post, WRITERS) * PER_BATCH
        finally:
            install(None)
            store.close()
    return raw, rate


def identification(kind: str, events: int = 1000) -> tuple[float, float]:
    """(seconds to write `events` for a known lead, seconds to identify a visitor who has
    them as anonymous events)."""
    rules, now = default_rules(), datetime.now(UTC)
    policy = Policy(caller="server", website=rules.website, client_events=frozenset(),
                    field_mapping={}, profile_fields=frozenset())

    def messages(anon: str, email: str | None) -> list[Any]:
        ctx = {"traits": {"email": email}} if email else {}
        return [map_message({"type": "page", "anonymousId": anon, "messageId": f"{anon}-{i}",
                             "properties": {"path": PATHS[i % 5]}, "context": ctx,
                             "timestamp": (now - timedelta(minutes=i)).isoformat()},
                            "batch", None, now, policy) for i in range(events)]

    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        keep = timedelta(days=90)
        known = [t.event for t in messages("known", "known@bench.example") if t.event]
        start = time.perf_counter()
        ingest(store, rules, known, now)
        direct = time.perf_counter() - start
        record(store, store, rules, messages("anon", None), now, keep)
        who = map_message({"type": "identify", "anonymousId": "anon", "messageId": "who",
                           "traits": {"email": "visitor@bench.example"}}, "batch", None, now,
                          policy)
        start = time.perf_counter()
        result = record(store, store, rules, [who], now, keep)
        joined = time.perf_counter() - start
        assert result.joined == events, result
        store.close()
    return direct, joined


def run(kinds: list[str], batches: int = 60) -> None:
    print(f"\n## Website tracking: {batches} batches of {PER_BATCH} page views from "
          f"{PER_BATCH} new visitors each, {WRITERS} writers; identifying 1,000 events")
    print(f"{'store':<10}{'raw w/s':>9}{'views/s':>9}{'views/raw':>11}"
          f"{'known 1k s':>12}{'identify 1k s':>15}{'identify/known':>16}")
    for kind in kinds:
        raw, views = page_views(kind, batches)
        direct, joined = identification(kind)
        print(f"{kind:<10}{raw:>9.0f}{views:>9.0f}{views / raw:>11.2f}"
              f"{direct:>12.2f}{joined:>15.2f}{joined / direct:>16.2f}")
