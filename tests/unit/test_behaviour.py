"""Behaviour rules: URL, page, campaign and UTM matching, and frequency rules that are
exact and order-independent (issue 15)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from builders import activity, event, form
from conftest import NOW

from leadscore.domain.behaviour import window_of
from leadscore.domain.effects import effect_of
from leadscore.domain.rules import Rules, default_rules_text, parse_rules
from leadscore.domain.scoring import apply_delta, apply_events, materialise
from leadscore.errors import RulesError

ANA = "ana@acme.com"
# the start of NOW's 7-day window (fixed windows from 2025-01-01): awards are dated there
START = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=7 * window_of(NOW, 7))


def with_behaviour(*rules: dict[str, Any]) -> Rules:
    data = yaml.safe_load(default_rules_text())
    data["behaviour"] = list(rules)
    return parse_rules(yaml.safe_dump(data))


def score(rules: Rules, events: list[Any], now: Any = NOW) -> float:
    lead, _ = apply_events(None, "l", ANA, events, rules, now)
    return materialise(lead, rules, now).engagement_score


def visits(n: int, at: Any, name: str = "pricing_page_visit") -> list[Any]:
    return [activity(ANA, f"v{i}-{at.isoformat()}", at + timedelta(minutes=i), name=name)
            for i in range(n)]


def test_three_pricing_visits_in_a_window_earn_the_points_once(rules: Rules) -> None:
    # GIVEN the default rule: 3 pricing-page visits in a 7-day window -> 15 points, once
    two, three, five = (score(rules, visits(n, NOW)) for n in (2, 3, 5))
    # THEN two visits earn their own points only, the third adds 15 (dated at the window's
    # start, so faded since), and more add no second 15
    award = 15 * 2 ** (-(NOW - START).total_seconds() / 86400 / 45)
    assert three - two == pytest.approx(10 + award, abs=1e-3)
    assert five - three == pytest.approx(0, abs=1e-3)  # visits are capped at 3 a week


def test_a_frequency_rule_is_the_same_in_any_order_and_grouping(rules: Rules) -> None:
    events = visits(3, NOW - timedelta(days=1)) + visits(2, NOW - timedelta(days=20))
    want = score(rules, events)
    for order in itertools.permutations(events):
        lead = None
        for one in order:  # one delivery at a time, as separate blind increments would be
            delta, _ = effect_of(one, rules)
            assert delta.blind
            lead = apply_delta(lead or apply_events(None, "l", ANA, [], rules, NOW)[0], delta)
        assert lead is not None
        assert materialise(lead, rules, NOW).engagement_score == pytest.approx(want)


def test_url_page_campaign_and_utm_rules_match_clicks_forms_and_page_views() -> None:
    rules = with_behaviour(
        {"id": "pricing-page", "events": ["activity.website_visit"],
         "where": {"field": "page", "matches": "^/pricing"}, "points": 7},
        {"id": "linkedin", "events": ["form.demo_request", "activity.website_visit"],
         "where": {"field": "utm_source", "one_of": ["linkedin"]}, "points": 4},
        {"id": "black-friday", "events": ["email.clicked"],
         "where": {"field": "campaign", "contains": ["black friday"]}, "points": 6})
    page = event("activity", ANA, "p", NOW, source="t", activity="website_visit",
                 url="https://acme.com/pricing/teams?utm_source=LinkedIn")
    other = event("activity", ANA, "q", NOW, source="t", activity="website_visit",
                  url="https://acme.com/blog")
    click = event("email_clicked", ANA, "c", NOW, source="esp",
                  url="https://acme.com/x?utm_campaign=Black-Friday+2026")
    demo = form(ANA, "d", NOW, kind="demo_request")
    base = score(rules, [other])
    assert score(rules, [page]) - base == pytest.approx(7 + 4)
    assert score(rules, [click]) == pytest.approx(3 + 6)
    assert score(rules, [demo]) == pytest.approx(45)  # no utm: no linkedin points


def test_a_behaviour_rules_points_are_its_own_line_of_what_each_rule_contributes() -> None:
    from leadscore.domain.explain import contributions
    from leadscore.domain.scoring import breakdown

    # GIVEN a URL rule on clicks (+6 for the Black Friday campaign) beside the click's +3
    rules = with_behaviour(
        {"id": "black-friday", "events": ["email.clicked"], "reason": "Black Friday click",
         "where": {"field": "campaign", "contains": ["black friday"]}, "points": 6})
    clicks = [event("email_clicked", ANA, f"c{i}", NOW - timedelta(days=3 * i), source="esp",
                    url=f"https://acme.com/x?utm_campaign=Black-Friday+2026&n={i}")
              for i in range(3)]
    lead, entries = apply_events(None, "l", ANA, clicks, rules, NOW)
    # WHEN what each rule is worth now is listed
    lines = {line["rule"]: line for line in contributions(lead, entries, rules, NOW)}
    # THEN the campaign rule has its own line with its own reason and its events, the click
    # rule keeps only its own points, and the lines still add up to the score
    faded = sum(2 ** (-3 * i / rules.half_life_for(rules.behaviour[0])) for i in range(3))
    assert lines["behaviour.black-friday"]["points"] == pytest.approx(6 * faded)
    assert lines["behaviour.black-friday"]["reason"] == "Black Friday click"
    assert lines["behaviour.black-friday"]["events"] == 3
    click_rule = rules.engagement["email.clicked"]
    assert lines["email.clicked"]["points"] == pytest.approx(
        3 * sum(2 ** (-3 * i / rules.half_life_for(click_rule)) for i in range(3)))
    parts = breakdown(lead, rules, NOW)
    assert sum(line["points"] for line in lines.values()) == pytest.approx(
        parts.fit + parts.engagement)


def test_rules_check_names_the_behaviour_rule_and_field() -> None:
    with pytest.raises(RulesError) as raised:
        with_behaviour({"id": "often", "events": ["activity.x"], "points": 5,
                        "frequency": {"count": 1, "within_days": 7}})
    assert 'behaviour rule "often": field "frequency.count"' in str(raised.value)
    with pytest.raises(RulesError) as raised:
        with_behaviour({"id": "bad", "events": ["page.view"], "points": 5})
    assert 'behaviour rule "bad"' in str(raised.value) and "page.view" in str(raised.value)


def with_limits(limits: dict[str, float]) -> Rules:
    data = yaml.safe_load(default_rules_text())
    data["limits"] = limits
    return parse_rules(yaml.safe_dump(data))


def test_category_limits_cap_each_category_at_materialise() -> None:
    # GIVEN at most 5 points now from email and 12 from the website
    limited = with_limits({"email": 5, "website": 12})
    clicks = [event("email_clicked", ANA, f"c{i}", NOW - timedelta(hours=i), source="esp")
              for i in range(4)]  # 12 points of clicks
    pages = visits(3, NOW)  # 30 points of pricing visits, plus the 3-a-week award
    demo = form(ANA, "d", NOW, kind="demo_request")  # forms are not limited
    # THEN each category counts up to its limit, whatever the order
    assert score(limited, clicks) == pytest.approx(5)
    assert score(limited, clicks + pages + [demo]) == (
        pytest.approx(5 + 12 + 45))
    assert score(limited, list(reversed(clicks + pages + [demo]))) == pytest.approx(62)
    # AND what each rule is worth now still adds up, with the limits as their own lines
    from leadscore.domain.explain import contributions
    from leadscore.domain.scoring import breakdown

    events = clicks + pages + [demo]
    lead, entries = apply_events(None, "l", ANA, events, limited, NOW)
    lines = contributions(lead, entries, limited, NOW)
    parts = breakdown(lead, limited, NOW)
    assert {line["rule"] for line in lines} >= {"limit.email", "limit.website"}
    assert sum(line["points"] for line in lines) == pytest.approx(parts.fit + parts.engagement)


def test_a_bad_limit_names_its_field() -> None:
    with pytest.raises(RulesError) as raised:
        with_limits({"email": -1})
    assert "limits.email" in str(raised.value)


def test_a_bad_behaviour_condition_names_the_rule_and_field() -> None:
    with pytest.raises(RulesError) as raised:
        with_behaviour({"id": "pages", "events": ["activity.website_visit"], "points": 1,
                        "where": {"field": "page", "range": {"min": 5, "max": 1}}})
    assert 'behaviour rule "pages": field "where.range": min is greater than max' in str(
        raised.value)
