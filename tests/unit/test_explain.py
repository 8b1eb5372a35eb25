"""History that explains the score: what each rule is worth now adds up to the score, and
each entry shows what its event was worth when it was applied (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import event, form, opened
from conftest import NOW
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.domain.events import Event
from leadscore.domain.explain import contributions
from leadscore.domain.rules import Rules, default_rules
from leadscore.domain.scoring import apply_events, breakdown

ANA = "ana@acme.com"
RULES = default_rules()


def make(kind: int, i: int, days: float) -> Event:
    at = NOW - timedelta(days=days)
    key = f"e{i}"
    return [
        lambda: opened(ANA, key, at),
        lambda: event("email_clicked", ANA, key, at, source="esp", url="https://x.io/p"),
        lambda: form(ANA, key, at, kind="demo_request", job_title="CTO"),
        lambda: form(ANA, key, at, kind="newsletter"),
        lambda: event("email_unsubscribed", ANA, key, at, source="esp"),
        lambda: event("activity", ANA, key, at, source="t", activity="pricing_page_visit"),
        lambda: event("purchase_made", ANA, key, at, source="shop", order_id=f"o{i % 3}",
                      amount_minor=25000, currency="EUR"),
        lambda: event("purchase_refunded", ANA, key, at, source="shop", order_id=f"o{i % 3}",
                      refund_id=f"r{i}", amount_minor=5000, currency="EUR"),
    ][kind]()


histories = st.lists(st.tuples(st.integers(0, 7), st.floats(0, 400)), min_size=1,
                     max_size=40)


@settings(max_examples=60, deadline=None)
@given(histories, st.integers(1, 5), st.floats(0, 800))
def test_what_each_rule_is_worth_now_adds_up_to_the_score(
        spec: list[tuple[int, float]], batches: int, later: float) -> None:
    # GIVEN a random history applied in a few batches
    events = [make(kind, i, days) for i, (kind, days) in enumerate(spec)]
    lead: Any = None
    entries = []
    for b in range(batches):
        lead, new = apply_events(lead, "l", ANA, events[b::batches], RULES, NOW)
        entries += new
    # WHEN it is explained at any later moment
    now = NOW + timedelta(days=later)
    lines = contributions(lead, entries, RULES, now)
    parts = breakdown(lead, RULES, now)
    # THEN the lines add up to the exact score, with nothing left unexplained
    assert abs(sum(line["points"] for line in lines) - (parts.fit + parts.engagement)) < 1e-6
    assert all(line["rule"] != "older" for line in lines)


def test_a_capped_open_shows_its_scaled_points(rules: Rules) -> None:
    # GIVEN six opens in one week (the cap is 5 a week, 1 point each)
    events = [opened(ANA, f"o{i}", NOW - timedelta(hours=i)) for i in range(6)]
    lead, entries = apply_events(None, "l", ANA, events, rules, NOW)
    # THEN each entry says the cap may scale it (its share depends on the window's count,
    # which must not make history depend on arrival order), and what the opens are worth
    # now is 5 points: each counts 5/6
    assert "at most 5" in entries[-1].reason
    opens = [line for line in contributions(lead, entries, rules, NOW)
             if line["rule"] == "email.opened"]
    assert opens[0]["events"] == 6 and abs(opens[0]["points"] - lead.engagement_score) < 1e-3


def test_a_refund_shows_the_points_it_takes_back(rules: Rules) -> None:
    paid = event("purchase_made", ANA, "p", NOW - timedelta(days=1), source="shop",
                 order_id="A-1", amount_minor=20000, currency="EUR")
    refund = event("purchase_refunded", ANA, "r", NOW, source="shop", order_id="A-1",
                   refund_id="R1", amount_minor=10000, currency="EUR")
    orders: dict[str, Any] = {}  # the order's record, kept beside the lead as a store does
    lead, _ = apply_events(None, "l", ANA, [paid], rules, NOW, orders)
    after, refunded = apply_events(lead, "l", ANA, [refund], rules, NOW, orders)
    # THEN the refund's entry is the negative of what it removed from the score (half of
    # the order's 60 points, faded by a day)
    assert refunded[0].delta < -29.9
    assert abs(refunded[0].delta - (after.score - lead.score)) < 1e-3
