"""Sales outcomes through `POST /ingest` (our own canonical format, as the README's
calibration section documents it; tests/events/ingest_outcomes.json is shaped like a CRM
export of opportunities), on SQLite and the Firestore emulator: recorded once on each lead,
adding no points, and counted as wins by the back-test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW, event_json

from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.service.lead_events import conversion_times, lead_pages

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
AUTH = {"Authorization": "Bearer outcomes-token-5"}
RAVI = lead_id_for("ravi.patel@contoso-freight.com")


@pytest.fixture
def app(durable_store: Any) -> Iterator[Container]:
    built = Container(Settings(api_token="outcomes-token-5"), store=durable_store,
                      clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def test_outcomes_posted_to_ingest_are_recorded_once_and_count_as_wins(app: Container) -> None:
    import functions_framework

    client = functions_framework.create_app("ingest", str(MAIN), "http").test_client()
    body = json.dumps(event_json("ingest_outcomes.json"))
    # WHEN a CRM export of outcomes is posted, then posted again (a retry)
    first = client.post("/", data=body, headers=AUTH, content_type="application/json")
    again = client.post("/", data=body, headers=AUTH, content_type="application/json")
    # THEN each outcome is on its lead once, with its amount and reason
    assert first.status_code == 200 and first.get_json()["applied"] == 3
    assert again.get_json()["duplicates"] == 3
    events = [e.event for e in app.store.history(RAVI)]
    assert [(e["outcome"], e["amount_minor"], e["reason"]) for e in events if e] == [
        ("opportunity_created", None, None), ("deal_won", 1850000, "signed 2-year plan")]
    # ... adding no points (no rule names an outcome)
    lead = app.store.get_lead(RAVI)
    assert lead is not None and lead.score == 0 and lead.counters["outcome_deal_won"] == 1
    # ... and the back-test sees one win, at its own time; the lost deal is no win
    leads = {lead.lead_id: lead for page in lead_pages(app.store) for lead in page}
    assert [w.isoformat() for w in conversion_times(leads[RAVI].events, True)] == [
        "2026-11-03T16:12:00+00:00"]
    lost = leads[lead_id_for("kim.nguyen@tailwind-traders.com")]
    assert conversion_times(lost.events, True) == []
