"""The pure scoring domain: fit, engagement, fading, caps, status, purchases, stages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import event, form, opened
from conftest import NOW

from leadscore.domain.rules import Rules
from leadscore.domain.scoring import apply_events, materialise
from leadscore.domain.state import LeadState

ANA = "ana@example.com"


def lead(rules: Rules, events: list[Any], now: Any = NOW) -> LeadState:
    return apply_events(None, "l_ana", events[0].email, events, rules, now)[0]


def test_a_demo_request_scores_above_a_newsletter_signup(rules: Rules) -> None:
    # GIVEN the same person signing up for a newsletter, or asking for a demo
    newsletter = lead(rules, [form(ANA, "f", NOW, kind="newsletter", job_title="CTO")])
    demo = lead(rules, [form(ANA, "f", NOW, kind="demo_request", job_title="CTO")])
    # THEN the demo request is worth more, by exactly the difference of the two rules
    assert demo.score - newsletter.score == pytest.approx(
        rules.engagement["form.demo_request"].points - rules.engagement["form.newsletter"].points)
    assert demo.fit_score == newsletter.fit_score


@pytest.mark.parametrize(("email", "profile", "rule"), [
    ("sam@uni.edu", {"job_title": "Student"}, "student"),
    ("ex@hubspot.com", {}, "competitor"),
    ("old@gmail.com", {"job_title": "Jubilado"}, "retired"),
])
def test_students_competitors_and_retirees_lower_fit(rules: Rules, email: str,
                                                     profile: dict[str, str], rule: str) -> None:
    base = lead(rules, [form("someone@acme.com", "f", NOW)])
    low = lead(rules, [form(email, "f", NOW, **profile)])
    penalty = next(r.points for r in rules.fit if r.id == rule)
    assert low.fit_score == pytest.approx(base.fit_score + penalty) and penalty < 0


def test_engagement_halves_every_half_life_and_fit_never_fades(rules: Rules) -> None:
    # GIVEN a CTO who requested a demo
    state = lead(rules, [form(ANA, "f", NOW, kind="demo_request", job_title="CTO")])
    # WHEN one half-life passes
    later = materialise(state, rules, NOW + timedelta(days=rules.engagement_half_life_days))
    # THEN engagement is halved and fit is unchanged
    assert later.engagement_score == pytest.approx(state.engagement_score / 2, abs=1e-3)
    assert later.fit_score == state.fit_score


def test_caps_limit_points_per_window(rules: Rules) -> None:
    # GIVEN 9 opens on one day, against a cap of 5 per 7-day window
    cap = rules.engagement["email.opened"].cap
    assert cap is not None
    events = [opened(ANA, f"o{i}", NOW - timedelta(minutes=i)) for i in range(9)]
    state = lead(rules, events)
    # THEN only 5 opens score, all still counted
    assert state.engagement_score == pytest.approx(5 * rules.engagement["email.opened"].points,
                                                   rel=1e-3)
    assert state.counters["email_opened"] == 9


def test_machine_opens_score_nothing_and_are_not_opens(rules: Rules) -> None:
    state = lead(rules, [opened(ANA, "o", NOW, machine=True)])
    assert state.engagement_score == 0 and state.last_open_at is None
    assert state.counters == {"email_opened_machine": 1}


def test_a_click_counts_as_an_open(rules: Rules) -> None:
    state = lead(rules, [event("email_clicked", ANA, "c", NOW, source="esp")])
    assert state.last_open_at == NOW and state.last_click_at == NOW


@pytest.mark.parametrize(("kinds", "status"), [
    ([("email_bounced", {"hard": True})], "bounced"),
    ([("email_bounced", {"hard": False})], "active"),
    ([("email_complained", {})], "complained"),
    ([("email_unsubscribed", {}), ("email_resubscribed", {})], "active"),
    ([("email_resubscribed", {}), ("email_unsubscribed", {})], "unsubscribed"),
])
def test_email_status_follows_the_latest_status_event(rules: Rules, kinds: list[Any],
                                                      status: str) -> None:
    # GIVEN status events an hour apart, delivered newest first
    events = [event(k, ANA, f"s{i}", NOW + timedelta(hours=i), source="esp", **extra)
              for i, (k, extra) in enumerate(kinds)]
    state = lead(rules, list(reversed(events)), now=NOW + timedelta(days=1))
    assert state.email_status == status


def test_unsubscribes_and_complaints_take_points(rules: Rules) -> None:
    base = lead(rules, [form(ANA, "f", NOW, kind="webinar")])
    unsub = lead(rules, [form(ANA, "f", NOW, kind="webinar"),
                         event("email_unsubscribed", ANA, "u", NOW, source="esp")])
    assert unsub.score == pytest.approx(base.score + rules.engagement["email.unsubscribed"].points)


def _purchase(key: str, amount: int, at: Any, order: str = "A-1") -> Any:
    return event("purchase_made", ANA, key, at, source="shop", order_id=order,
                 amount_minor=amount, currency="EUR")


def _refund(key: str, amount: int, at: Any, refund: str) -> Any:
    return event("purchase_refunded", ANA, key, at, source="shop", order_id="A-1",
                 refund_id=refund, amount_minor=amount, currency="EUR")


def test_one_order_reported_many_times_is_one_purchase(rules: Rules) -> None:
    # GIVEN an order reported as created, paid and retried
    events = [_purchase(k, 15000, NOW - timedelta(minutes=3 - i)) for i, k in
              enumerate(["created", "paid", "retry"])]
    orders: dict[str, Any] = {}
    state = apply_events(None, "l_ana", ANA, events, rules, NOW, orders)[0]
    # THEN one purchase (one order record), the lead is a customer with the order's points
    assert list(orders) == ["shop:A-1"] and state.stage == "customer"
    assert state.purchase_totals["EUR"].count == 1 and state.orders == {}
    expected = rules.purchase.per_purchase + 10  # the 100.00 value band
    assert state.engagement_score == pytest.approx(expected, rel=1e-3)


def test_refunds_take_back_their_share_and_a_full_refund_ends_customer(rules: Rules) -> None:
    paid = _purchase("p", 20000, NOW - timedelta(hours=2))
    half = lead(rules, [paid, _refund("r1", 10000, NOW - timedelta(hours=1), "R1")])
    full = lead(rules, [paid, _refund("r1", 10000, NOW - timedelta(hours=1), "R1"),
                        _refund("r2", 10000, NOW, "R2")])
    whole = rules.purchase.per_purchase + 10
    assert half.stage == "customer"
    assert half.engagement_score == pytest.approx(whole / 2, rel=1e-3)
    assert full.stage == "lead" and full.engagement_score == pytest.approx(0)


@pytest.mark.parametrize(("score_form", "stage"), [
    ({"kind": "newsletter"}, "lead"),
    ({"kind": "demo_request"}, "mql"),
    ({"kind": "demo_request", "job_title": "CTO", "industry": "SaaS", "seniority": "VP"}, "sql"),
])
def test_stage_follows_the_thresholds(rules: Rules, score_form: dict[str, str],
                                      stage: str) -> None:
    kind = score_form.pop("kind")
    assert lead(rules, [form(ANA, "f", NOW, kind=kind, **score_form)]).stage == stage


def test_stage_goes_down_as_engagement_fades(rules: Rules) -> None:
    state = lead(rules, [form(ANA, "f", NOW, kind="demo_request")])
    assert state.stage == "mql"
    assert materialise(state, rules, NOW + timedelta(days=90)).stage == "lead"


@pytest.mark.parametrize(("sent_days_ago", "open_days_ago", "machine", "flagged"), [
    (210, None, False, True),  # sent 7 months ago, never opened
    (210, 20, True, True),  # only machine opens
    (210, 150, False, False),  # a human open 5 months ago
    (None, None, False, False),  # never sent anything
    # no delivery reported (a tool that sends opens and clicks only): an open proves a send
    (None, 210, True, True),  # machine opens only, the first 7 months ago
    (None, 20, True, False),  # machine opens only, the first 20 days ago: not yet
    (None, 210, False, True),  # one human open 7 months ago
    (None, 150, False, False),  # one human open 5 months ago
])
def test_non_openers(rules: Rules, sent_days_ago: int | None, open_days_ago: int | None,
                     machine: bool, flagged: bool) -> None:
    events = [form(ANA, "f", NOW - timedelta(days=300))]
    if sent_days_ago is not None:
        events.append(event("email_delivered", ANA, "d", NOW - timedelta(days=sent_days_ago),
                            source="esp"))
    if open_days_ago is not None:
        events.append(opened(ANA, "o", NOW - timedelta(days=open_days_ago), machine=machine))
    state = lead(rules, events)
    assert state.non_opener is flagged
    assert (state.non_opener_since is not None) is flagged
