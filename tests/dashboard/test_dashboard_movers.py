"""Top movers and hot leads through the real write path and decay job, on every store:
the stored `movement` and `stage_since` are what the dashboard's indexed queries read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import event, form
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.decay import run_decay
from leadscore.service.ingest import ingest

WEEK_AGO = NOW - timedelta(days=10)


def test_a_lead_that_jumped_this_week_is_a_top_mover_until_the_week_is_over(
        store: Any, rules: Rules) -> None:
    # GIVEN two leads that signed up ten days ago; one asks for a demo today
    for name in ("jumper", "still"):
        ingest(store, rules, [form(f"{name}@acme.com", f"f-{name}", WEEK_AGO,
                                   kind="newsletter", job_title="CTO")], WEEK_AGO)
    before = store.get_lead(lead_id_for("jumper@acme.com"))
    ingest(store, rules, [form("jumper@acme.com", "demo", NOW, kind="demo_request")], NOW)
    jumper = store.get_lead(lead_id_for("jumper@acme.com"))
    # THEN its movement is its score now less its score at the end of the day a week ago
    assert jumper.movement == round(jumper.score - before.score, 4) > 0
    up = store.top_movers(True, 5)
    assert [x.lead_id for x in up][:1] == [jumper.lead_id]
    # WHEN the decay job runs after the week is over THEN the jump has left the window
    later = NOW + timedelta(days=8)
    run_decay(store, rules, later)
    after = store.get_lead(jumper.lead_id)
    assert after.next_review_at is None or after.next_review_at > later
    assert after.movement <= 0  # only fading is left
    assert jumper.lead_id not in [x.lead_id for x in store.top_movers(True, 5)]


def test_hot_leads_are_the_newest_to_reach_their_stage(store: Any, rules: Rules) -> None:
    # GIVEN an early demo request with many clicks, then a later plain demo request
    early = NOW - timedelta(days=2)
    ingest(store, rules, [form("early@acme.com", "d1", early, kind="demo_request"),
                          *[event("email_clicked", "early@acme.com", f"c{i}",
                                  early + timedelta(minutes=i), source="esp")
                            for i in range(4)]], early)
    ingest(store, rules, [form("late@acme.com", "d2", NOW, kind="demo_request")], NOW)
    first, second = (store.get_lead(lead_id_for(e)) for e in ("early@acme.com",
                                                               "late@acme.com"))
    assert first.stage == second.stage and first.stage == "mql"
    assert first.score > second.score  # by score the early one would come first
    newest = store.newest_in_stage(first.stage, 2)
    assert [x.lead_id for x in newest] == [second.lead_id, first.lead_id]
