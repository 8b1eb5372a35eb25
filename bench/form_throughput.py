"""Form submissions (issue 3): urlencoded posts to /form_submission through the local
server, against the same submissions as canonical events to /ingest, on the same store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.harness import compare_over_http
from leadscore.config import Settings

TOKEN, WRITERS = "bench-token", 8


def form(base: str, session: Any, i: int) -> None:
    session.post(f"{base}/form_submission", timeout=60, headers={"Accept": "application/json"},
                 data={"form": "webinar", "email": f"f{i}@bench.example", "empresa": "Acme",
                       "cargo": "CTO", "country": "ES"}).raise_for_status()


def ingest(base: str, session: Any, i: int) -> None:
    session.post(f"{base}/ingest", timeout=60, headers={"Authorization": f"Bearer {TOKEN}"},
                 json={"type": "form_submitted", "email": f"i{i}@bench.example",
                       "source": "bench", "idempotency_key": f"i{i}",
                       "occurred_at": datetime.now(UTC).isoformat(), "form_kind": "webinar",
                       "profile": {"company": "Acme", "job_title": "CTO", "country": "ES"}},
                 ).raise_for_status()


def run(kinds: list[str], count: int = 300) -> None:
    print(f"\n## Forms: {count} urlencoded form posts against the same submissions via "
          f"/ingest, {WRITERS} writers")
    print(f"{'store':<10}{'forms/s':>9}{'ingest/s':>10}{'forms/ingest':>14}")
    settings = Settings(api_token=TOKEN, log_level="WARNING")
    for kind in kinds:
        via_ingest, forms = compare_over_http(kind, settings, count, ingest, form, WRITERS)
        print(f"{kind:<10}{forms:>9.0f}{via_ingest:>10.0f}{forms / via_ingest:>14.2f}")
