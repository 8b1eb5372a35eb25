"""Domain events: use cases report what happened; `Container.dispatch` delivers it, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import event, form
from conftest import NOW

from leadscore import jsonfmt
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.happenings import NonOpenerFlagged, StageChanged
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.decay import run_decay
from leadscore.service.ingest import ingest
from leadscore.store.memory import MemoryStore


class PublishingContainer(Container):
    """The real container; only Pub/Sub, the outside edge, is recorded instead of sent."""

    def __init__(self, settings: Settings, rules: Rules) -> None:
        super().__init__(settings, store=MemoryStore(), rules=rules, clock=lambda: NOW)
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        self.published.append((topic, data))


def test_a_stage_change_is_reported_and_dispatched_to_sales(rules: Rules) -> None:
    # GIVEN a container that hands stage changes over to a topic
    app = PublishingContainer(Settings(handover_topic="handovers"), rules)
    # WHEN a demo request makes a lead marketing-qualified
    result = ingest(app.store, rules, [form("ana@acme.com", "f1", NOW, kind="demo_request")],
                    NOW)
    # THEN the result says so, in a domain event kept out of the response body
    assert result.events == [StageChanged(lead_id=lead_id_for("ana@acme.com"),
                                          stage_before=None, stage_after="mql")]
    assert "events" not in result.summary()  # the response body (functions/ingest.py)
    # AND dispatching it hands the change over, once, in the background
    app.dispatch(result.events)
    app.dispatch(result.events)
    assert app.handovers_settled(10)
    assert [(topic, data["stage_after"]) for topic, data in app.published] == [
        ("handovers", "mql")]


def test_a_flagged_non_opener_is_reported_and_dispatched(rules: Rules) -> None:
    # GIVEN a lead sent mail long ago that never opened it
    app = PublishingContainer(Settings(non_opener_topic="non-openers"), rules)
    email = "quiet@acme.com"
    ingest(app.store, rules, [event("email_delivered", email, "d1", NOW, source="esp")], NOW)
    later = NOW + timedelta(days=rules.non_opener_after_days + 1)
    # WHEN the decay job runs
    summary = run_decay(app.store, rules, later)
    # THEN it reports the flag, and dispatch publishes it
    flagged = [e for e in summary.events if isinstance(e, NonOpenerFlagged)]
    assert [(e.lead_id, e.at) for e in flagged] == [(lead_id_for(email), later)]
    assert "events" not in summary.as_json()  # what the job logs (functions/inactivity_decay)
    assert summary.as_json()["now"] == jsonfmt.iso(later)  # ISO 8601, as JSON, with `Z`
    app.dispatch(summary.events)
    assert app.published == [("non-openers", {"lead_id": lead_id_for(email), "email": email,
                                              "flagged_at": later.isoformat()})]


def test_nothing_to_report_dispatches_nothing(rules: Rules) -> None:
    app = PublishingContainer(Settings(handover_topic="h", non_opener_topic="n"), rules)
    app.dispatch([])
    assert app.published == []
