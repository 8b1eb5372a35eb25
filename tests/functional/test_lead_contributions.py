"""`GET /leads/<id>` says what each rule is worth now, adding up to the score (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import event, form, opened
from conftest import NOW

from functional.conftest import client_for
from leadscore.container import Container, install
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


def test_a_lead_stored_under_other_rules_is_shown_as_the_rules_in_force_score_it(
        app_container: Container) -> None:
    # GIVEN a lead scored under the default rules, then rules that value a demo request at
    # 100 points (an audit saw the page keep the old score and explain the difference with
    # an "older events" line, though the whole history was shown)
    import yaml

    from leadscore.domain.rules import default_rules_text, parse_rules
    from leadscore.service.rescore import rescore

    events = [form(ANA, "d", NOW - timedelta(days=3), kind="demo_request", job_title="CTO")]
    apply_events(app_container.store, lead_id_for(ANA), ANA, events, app_container.rules,
                 NOW - timedelta(days=3))
    data = yaml.safe_load(default_rules_text())
    data["engagement"]["form.demo_request"]["points"] = 100
    changed = Container(app_container.settings, store=app_container.store,
                        rules=parse_rules(yaml.safe_dump(data)), clock=lambda: NOW)
    install(changed)
    # WHEN its page is read, before any rescore
    page: Any = client_for("leads_api").get(f"/leads/{lead_id_for(ANA)}",
                                                headers=AUTH).get_json()
    # THEN it is the score the new rules give (what rescore then stores), every line is a
    # rule's, and they add up to it
    rescore(changed.store, changed.rules, NOW, dry_run=False)
    stored = changed.store.get_lead(lead_id_for(ANA))
    assert stored is not None and abs(page["score"] - stored.score) < 0.01
    lines = {line["rule"]: line for line in page["contributions"]}
    assert lines["form.demo_request"]["points"] > 45 and not any(
        "older" in rule for rule in lines)
    assert abs(sum(line["points"] for line in page["contributions"]) - page["score"]) < 0.01
