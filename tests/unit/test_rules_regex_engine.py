"""`matches` runs on RE2: linear time whatever the pattern, so a visitor's value cannot make
a rule take exponential time (audit: `((a+))+$` on 27 "a" and a "!" took 23 s in one /ingest).
"""

from __future__ import annotations

import pytest
import re2
import yaml

from leadscore.domain import matching
from leadscore.domain.rules import FitRule, parse_rules
from leadscore.errors import RulesError

# each passed the old nested-repeat guard and backtracks exponentially in Python's `re`
EXPONENTIAL = [r"((a+))+$", r"(a+?)+$", r"(\w+\s?)+$", r"(a|a)+$", r"(a|aa)+$", r"(a+)+$"]


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_a_pattern_with_nested_repeats_is_compiled_by_re2_and_runs_on_hostile_values(
        pattern: str) -> None:
    # GIVEN a pattern that backtracks exponentially in Python's engine
    # WHEN it is compiled for a rule THEN it is RE2's (time linear in the value)
    assert isinstance(matching.compile_pattern(pattern), re2._Regexp)
    rule = FitRule.model_validate({"id": "r", "points": 1, "field": "t", "matches": pattern})
    # WHEN a hostile value as long as values are read (Python's `re` would never finish:
    # each extra character doubles its work) is tested THEN the test completes, and right
    hostile = "a" * (matching.MAX_VALUE_CHARS - 1) + "!"
    assert not rule.holds({"t": hostile})  # nothing repeated ends at the "!"
    assert not rule.holds({"t": "!"}) and rule.holds({"t": "AAAA"})  # case-insensitive


@pytest.mark.parametrize(("pattern", "construct"), [
    (r"(a)\1", "backreference"), (r"(?<=a)b", "lookbehind"), (r"a(?=b)", "lookahead"),
    (r"(?>a+)b", "atomic group"),
])
def test_rules_check_refuses_what_re2_cannot_run_naming_rule_field_and_reason(
        pattern: str, construct: str) -> None:
    # GIVEN a rules file whose `matches` uses a construct RE2 does not have (a `construct`)
    text = yaml.safe_dump({"version": "t", "engagement_half_life_days": 45,
                           "stages": {"mql": 40, "sql": 80},
                           "fit": [{"id": "vp", "field": "job_title", "matches": pattern,
                                    "points": 1}]})
    # WHEN it is checked THEN it is refused with the rule id, the field and RE2's reason
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "mine.yaml")
    message = raised.value.details[0]["message"]
    assert message.startswith('fit rule "vp": field "matches": RE2, the linear-time engine')
    assert "cannot run this pattern (" in message


def test_a_behaviour_where_pattern_runs_on_re2_too() -> None:
    # GIVEN a behaviour rule on the page with a nested repeat
    text = yaml.safe_dump({"version": "t", "engagement_half_life_days": 45,
                           "stages": {"mql": 40, "sql": 80},
                           "behaviour": [{"id": "p", "events": ["activity.website_visit"],
                                          "where": {"field": "page", "matches": r"^/(\w+/?)+$"},
                                          "points": 1}]})
    rule = parse_rules(text).behaviour_by_id()["p"]
    # WHEN a hostile page arrives THEN it is judged (and quickly enough to finish)
    assert not rule.matches("activity.website_visit", {"page": "/" + "a" * 250 + "!"})
    assert rule.matches("activity.website_visit", {"page": "/pricing/plans"})
