"""A rep accepts or rejects a handed-over lead from the signed links on its Slack card."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import NOW
from functional.conftest import client_for

from integrations.conftest import warm_lead_events
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.integrations.slack_actions import action_link
from leadscore.service.writes import apply_events

SECRET = "slack-action-secret-31"
BASE = "https://leads.example.com/crm_webhook/slack-action"
EMAIL = "ana@tiendassol.example"


@pytest.fixture
def app(durable_store: Any) -> Iterator[Container]:
    apply_events(durable_store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL),
                 default_rules(), NOW)
    built = Container(Settings(slack_action_secret=f"older,{SECRET}"), store=durable_store,
                      clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def link(action: str, secret: str = SECRET, expires: int | None = None) -> str:
    url = action_link(BASE, secret, lead_id_for(EMAIL), "h_change1", action,  # type: ignore[arg-type]
                      expires or int((NOW + timedelta(days=7)).timestamp()))
    return "/slack-action?" + urlsplit(url).query


def outcomes(app: Container) -> list[Any]:
    return [e for e in app.store.history(lead_id_for(EMAIL)) if e.kind == "outcome"]


def test_a_rep_rejects_with_a_reason_once(app: Container) -> None:
    client = client_for("crm_webhook")
    # WHEN the rep opens the link: a page asks for a reason and records nothing yet
    page = client.get(link("reject"), headers={"Accept": "text/html"})
    assert page.status_code == 200 and "<form" in page.get_data(as_text=True)
    assert outcomes(app) == []
    # AND sends it, twice (a double click)
    for _ in range(2):
        sent = client.post(link("reject"), data={"reason": "  student, no budget "},
                           headers={"Accept": "text/html"})
        assert sent.status_code == 200 and "Recorded" in sent.get_data(as_text=True)
    # THEN one sales_rejected outcome with the reason is on the lead, and the score is as it was
    recorded = outcomes(app)
    assert [(e.event["outcome"], e.event["reason"]) for e in recorded] == [
        ("sales_rejected", "student, no budget")]
    assert recorded[0].delta == 0


@pytest.mark.parametrize("case", ["forged", "expired", "altered"])
def test_a_bad_link_is_refused_with_a_page_and_records_nothing(app: Container,
                                                               case: str) -> None:
    url = {"forged": link("accept", secret="not-ours"),
           "expired": link("accept", expires=int((NOW - timedelta(seconds=1)).timestamp())),
           "altered": link("accept").replace("action=accept", "action=reject")}[case]
    answer = client_for("crm_webhook").post(url, data={"reason": "x"},
                                            headers={"Accept": "text/html"})
    assert answer.status_code == 401 and answer.mimetype == "text/html"
    assert outcomes(app) == []
