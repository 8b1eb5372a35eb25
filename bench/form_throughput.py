"""Form submissions (issue 3): urlencoded posts to /form_submission through the local
server, against the same submissions as canonical events to /ingest, on the same store."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import ThreadSessions, local_server, new_store, timed_parallel
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.server import build_app

TOKEN, WRITERS = "bench-token", 8


def measure(kind: str, count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        install(Container(Settings(api_token=TOKEN, log_level="WARNING"), store=store))
        session = ThreadSessions().get

        def form(i: int) -> None:
            session().post(f"{base}/form_submission", timeout=60, headers={
                "Accept": "application/json"}, data={
                "form": "webinar", "email": f"f{i}@bench.example", "empresa": "Acme",
                "cargo": "CTO", "country": "ES"}).raise_for_status()

        def ingest(i: int) -> None:
            session().post(f"{base}/ingest", timeout=60, headers={
                "Authorization": f"Bearer {TOKEN}"}, json={
                "type": "form_submitted", "email": f"i{i}@bench.example", "source": "bench",
                "idempotency_key": f"i{i}", "occurred_at": datetime.now(UTC).isoformat(),
                "form_kind": "webinar",
                "profile": {"company": "Acme", "job_title": "CTO", "country": "ES"}},
            ).raise_for_status()

        with local_server(build_app()) as base:
            via_ingest = timed_parallel(list(range(count)), ingest, WRITERS)
            via_form = timed_parallel(list(range(count)), form, WRITERS)
        install(None)
        store.close()
    return via_form, via_ingest


def run(kinds: list[str], count: int = 300) -> None:
    print(f"\n## Forms: {count} urlencoded form posts against the same submissions via "
          f"/ingest, {WRITERS} writers")
    print(f"{'store':<10}{'forms/s':>9}{'ingest/s':>10}{'forms/ingest':>14}")
    for kind in kinds:
        forms, ingest = measure(kind, count)
        print(f"{kind:<10}{forms:>9.0f}{ingest:>10.0f}{forms / ingest:>14.2f}")
