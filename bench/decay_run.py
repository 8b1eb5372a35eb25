"""The decay job (issue 6): one run over 100,000 leads of which 1,000 are due, against a run
over a store holding only those 1,000; cost must follow the work, not the database."""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import new_store
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.domain.state import LeadState
from leadscore.service.decay import run_decay

DUE, TOTAL = 1000, 100_000


def _leads(count: int, due: int, now: datetime) -> list[LeadState]:
    rules = default_rules()
    then = now - timedelta(days=20)
    opened = EVENT_ADAPTER.validate_python({
        "type": "form_submitted", "email": "t@x.example", "source": "bench",
        "idempotency_key": "t", "occurred_at": then, "form_kind": "demo_request"})
    template = apply_events(None, "t", "t@x.example", [opened], rules, then)[0]
    out = []
    for i in range(count):
        email = f"lead{i}@bench.example"
        review = then + timedelta(days=1) if i < due else now + timedelta(days=30)
        out.append(template.model_copy(update={"lead_id": lead_id_for(email), "email": email,
                                               "next_review_at": review}))
    return out


def _seed(store: Any, leads: list[LeadState]) -> None:
    """Bulk-load through each adapter's own document layout (benchmark set-up only)."""
    if type(store).__name__ == "SqliteStore":
        with store._tx() as conn:
            for lead in leads:
                store._stage_lead_write(conn, lead)
        return
    from leadscore.store.firestore_codec import to_doc

    def write(chunk: list[LeadState]) -> None:
        batch = store._client.batch()
        for lead in chunk:
            batch.set(store._leads.document(lead.lead_id), to_doc(lead))
        batch.commit()

    chunks = [leads[i:i + 500] for i in range(0, len(leads), 500)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, chunks))


def measure(kind: str, total: int) -> tuple[float, float, float, float]:
    now = datetime.now(UTC)
    rules = default_rules()
    timings, queries = [], []
    with tempfile.TemporaryDirectory() as folder:
        for size in (total, DUE):
            store = new_store(kind, Path(folder))
            _seed(store, _leads(size, DUE, now))
            start = time.perf_counter()
            store.due_for_review(now, 1)  # one indexed query, on its own
            queries.append(time.perf_counter() - start)
            start = time.perf_counter()
            summary = run_decay(store, rules, now)
            timings.append(time.perf_counter() - start)
            assert summary.decayed == DUE, summary
            store.close()
    return timings[0], timings[1], queries[0], queries[1]


def run(kinds: list[str]) -> None:
    print(f"\n## Decay: one run over {TOTAL:,} leads with {DUE:,} due, against {DUE:,} leads "
          "alone")
    print(f"{'store':<10}{'big s':>8}{'small s':>9}{'big/small':>11}{'due leads/s':>13}"
          f"{'1 query big/small':>19}")
    for kind in kinds:
        big, small, q_big, q_small = measure(kind, TOTAL)
        print(f"{kind:<10}{big:>8.2f}{small:>9.2f}{big / small:>11.2f}{DUE / big:>13.0f}"
              f"{q_big / q_small:>19.1f}")
    print("goal: big/small under 1.5 (the due leads come from an index, never a scan). The "
          "Firestore emulator\nuses no indexes (every query scans the collection: see the "
          "last column); production Firestore does.")
