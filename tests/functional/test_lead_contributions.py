"""`GET /leads/<id>` says what each rule is worth now, adding up to the score (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import event, form, opened
from conftest import NOW

from functional.conftest import client_for
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.service.writes import apply_events

AUTH = {"Authorization": "Bearer current-token-123"}
ANA = "ana@acme.com"


def test_the_lead_page_lists_what_each_rule_is_worth_now(app_container: Container) -> None:
    # GIVEN a lead with a demo request, six opens in a week (over the cap) and an unsubscribe
    events = [form(ANA, "d", NOW - timedelta(days=30), kind="demo_request", job_title="CTO"),
              event("email_unsubscribed", ANA, "u", NOW - timedelta(days=2), source="esp")]
    events += [opened(ANA, f"o{i}", NOW - timedelta(days=3, hours=i)) for i in range(6)]
    apply_events(app_container.store, lead_id_for(ANA), ANA, events, app_container.rules,
                 NOW - timedelta(days=1))
    # WHEN its page is read
    page: Any = client_for("leads_api").get(f"/leads/{lead_id_for(ANA)}",
                                                headers=AUTH).get_json()
    # THEN each rule says what it is worth now, and together they are the score
    lines = {line["rule"]: line for line in page["contributions"]}
    assert lines["form.demo_request"]["points"] < 45  # faded over 30 days
    assert lines["email.unsubscribed"]["points"] < 0
    assert lines["email.opened"]["events"] == 6
    assert "fit.title-decision-maker" in lines
    assert abs(sum(line["points"] for line in page["contributions"]) - page["score"]) < 0.01
