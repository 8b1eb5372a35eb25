"""Fakes of Slack and HubSpot on real local HTTP servers, and leads worth handing over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from builders import activity, form
from conftest import NOW
from fakes.hubspot_api import HubSpotFake
from fakes.server import serving
from fakes.slack_api import SlackWebhookFake

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.domain.state import HistoryEntry, LeadState
from leadscore.service.writes import apply_events
from leadscore.store.memory import MemoryStore

HUBSPOT_TOKEN = "pat-eu1-fake-token"
HOOK_PATH = "/services/T000/B000/XXXXXXXX"


@pytest.fixture
def slack_api() -> Iterator[SlackWebhookFake]:
    fake = SlackWebhookFake()
    with serving(fake):
        yield fake


@pytest.fixture
def hubspot_api() -> Iterator[HubSpotFake]:
    fake = HubSpotFake(HUBSPOT_TOKEN)
    with serving(fake):
        yield fake


def warm_lead_events(email: str) -> list:  # type: ignore[type-arg]
    """A newsletter long ago, two pricing visits this week and a demo request yesterday,
    from someone in retail: an MQL (76 points at the time, a little less now)."""
    return [
        form(email, "news", NOW - timedelta(days=10), kind="newsletter"),
        activity(email, "price-1", NOW - timedelta(days=5), name="pricing_page_visit"),
        activity(email, "price-2", NOW - timedelta(days=5, hours=1), name="pricing_page_visit"),
        form(email, "demo", NOW - timedelta(days=1), kind="demo_request",
             first_name="Ana", last_name="Pereira", company="Tiendas Sol",
             job_title="Ecommerce manager", industry="retail"),
    ]


def warm_lead(rules: Rules, email: str = "ana@tiendassol.example"
              ) -> tuple[LeadState, list[HistoryEntry], MemoryStore]:
    store = MemoryStore()
    lead_id = lead_id_for(email)
    apply_events(store, lead_id, email, warm_lead_events(email), rules, NOW)
    lead = store.get_lead(lead_id)
    assert lead is not None and lead.stage == "mql"
    return lead, store.history(lead_id), store
