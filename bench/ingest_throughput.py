"""Ingestion throughput (issue 2): end to end against the raw store write rate, and a hot
lead (every event for one lead, several writers) against the same events spread over leads.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import ThreadSessions, local_server, new_store, timed_parallel
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.providers import canonical
from leadscore.server import build_app
from leadscore.service.ingest import ingest

TOKEN = "bench-token"
WRITERS = 8


def _event(i: int, email: str) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=i)
    return {"type": "activity", "email": email, "source": "bench",
            "idempotency_key": f"ev-{i}", "occurred_at": at.isoformat(),
            "activity": "website_visit"}


def measure(kind: str, events: int) -> dict[str, float]:
    rules = default_rules()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        emails = [f"lead{i}@bench.example" for i in range(events)]
        # the same documents ingestion produces, written directly
        docs = [apply_events(None, lead_id_for(e), e, [], rules, now)[0] for e in emails]
        raw = timed_parallel(docs, store.put_lead, WRITERS)
        # the ingest use case in process: scoring and the store, without HTTP
        parsed = canonical.parse(json.dumps([_event(i, f"direct{i}@bench.example")
                                             for i in range(events)]).encode())
        direct = timed_parallel(parsed, lambda e: ingest(store, rules, [e], now), WRITERS)

        install(Container(Settings(api_token=TOKEN, log_level="WARNING"), store=store,
                          rules=rules))
        session = ThreadSessions().get

        def get_health() -> None:
            session().get(f"{base}/healthz", timeout=60).raise_for_status()

        def post(body: dict[str, Any]) -> None:
            answer = session().post(f"{base}/ingest", json=body, timeout=60,
                                  headers={"Authorization": f"Bearer {TOKEN}"})
            answer.raise_for_status()

        with local_server(build_app()) as base:
            floor = timed_parallel(list(range(events)), lambda _: get_health(), WRITERS)
            spread = timed_parallel([_event(i, f"spread{i}@bench.example")
                                     for i in range(events)], post, WRITERS)
            hot = timed_parallel([_event(i, "hot@bench.example") for i in range(events)],
                                 post, WRITERS)
        install(None)
        lead = store.get_lead(lead_id_for("hot@bench.example"))
        assert lead is not None and lead.counters["activity"] == events, "hot lead lost events"
        store.close()
    return {"raw": raw, "direct": direct, "spread": spread, "hot": hot, "floor": floor}


def run(kinds: list[str], events: int = 400) -> None:
    print(f"\n## Ingestion: {events} events, {WRITERS} concurrent writers, POST /ingest over "
          "HTTP on loopback")
    print(f"{'store':<10}{'raw writes/s':>13}{'use case/s':>12}{'case/raw':>10}"
          f"{'HTTP e2e/s':>12}{'e2e/raw':>9}{'e2e/HTTP floor':>16}{'hot lead/s':>12}"
          f"{'spread/hot':>12}")
    for kind in kinds:
        r = measure(kind, events)
        print(f"{kind:<10}{r['raw']:>13.0f}{r['direct']:>12.0f}{r['direct'] / r['raw']:>10.2f}"
              f"{r['spread']:>12.0f}{r['spread'] / r['raw']:>9.2f}"
              f"{r['spread'] / r['floor']:>16.2f}{r['hot']:>12.0f}"
              f"{r['spread'] / r['hot']:>12.2f}")
    print("use case: the ingest use case in process (scoring + store, no HTTP); HTTP floor: "
          "GET /healthz on the same local server.\ngoals: e2e/raw >= 0.5; spread/hot <= 2 "
          "(a hot lead no worse than 2x slower than spread leads)")
