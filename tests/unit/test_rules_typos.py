"""What a rules check used to pass silently (audit): a key given twice (the second replaced
the first), a limit on a category no rule scores in, a behaviour `where` on a field events
do not have."""

from __future__ import annotations

import json

import pytest

from leadscore.domain.rules import default_rules_text, parse_rules, parse_rules_json
from leadscore.errors import RulesError

HEAD = "version: t\nengagement_half_life_days: 45\nstages: {mql: 40, sql: 80}\n"


def test_an_engagement_key_given_twice_is_refused_with_its_line() -> None:
    # GIVEN two `email.opened` rules in one engagement section (the second on line 6)
    text = HEAD + "engagement:\n  email.opened: {points: 1}\n  email.opened: {points: 50}\n"
    # WHEN checked THEN refused, naming the key and the line of the second
    with pytest.raises(RulesError, match=r"duplicate key 'email.opened' \(line 6\)"):
        parse_rules(text, "mine.yaml")


def test_a_section_given_twice_is_refused_with_its_line() -> None:
    # GIVEN two `fit:` sections
    text = (HEAD + "fit:\n  - {id: a, field: t, equals: x, points: 1}\n"
            "fit:\n  - {id: b, field: t, equals: y, points: 2}\n")
    with pytest.raises(RulesError, match=r"duplicate key 'fit' \(line 6\)"):
        parse_rules(text, "mine.yaml")


def test_a_key_given_twice_in_a_json_rules_file_is_refused() -> None:
    text = ('{"version": "t", "engagement_half_life_days": 45, "version": "u", '
            '"stages": {"mql": 40, "sql": 80}}')
    with pytest.raises(RulesError, match="duplicate key 'version'"):
        parse_rules_json(text, "mine.json")


def test_yaml_merge_keys_still_override_as_yaml_says() -> None:
    # GIVEN an anchored rule merged into another and one key overridden
    text = HEAD + ("engagement:\n  email.clicked: &base {points: 3, half_life_days: 30}\n"
                   "  email.opened: {<<: *base, points: 1}\n")
    # THEN the file parses and the override wins
    rules = parse_rules(text)
    assert rules.engagement["email.opened"].points == 1
    assert rules.engagement["email.opened"].half_life_days == 30


def test_a_limit_on_a_category_no_rule_scores_in_is_refused_naming_the_known_ones() -> None:
    # GIVEN `limits: {webiste: 40}` (a typo) beside rules scoring in email and website
    text = HEAD + ("engagement:\n  email.opened: {points: 1}\n"
                   "  activity.website_visit: {points: 1}\nlimits: {email: 5, webiste: 40}\n")
    # WHEN checked THEN refused, naming the unknown and the known categories
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "mine.yaml")
    assert "limits on categories no rule scores in: webiste" in str(raised.value)
    assert "(the rules' categories: email, website)" in str(raised.value)


def test_a_limit_on_a_rules_own_category_is_accepted() -> None:
    text = HEAD + ("engagement:\n  email.opened: {points: 1, category: mail}\n"
                   "behaviour:\n  - {id: b, events: [activity.x], points: 1}\n"
                   "limits: {mail: 5, website: 9}\n")
    assert parse_rules(text).limits == {"mail": 5, "website": 9}


@pytest.mark.parametrize("where", [
    {"field": "pgae", "matches": "^/pricing"},
    {"any": [{"field": "page", "matches": "^/p"}, {"not": {"field": "utm_sorce",
                                                            "equals": "x"}}]},
    {"email_domain": ["acme.com"]},  # no field: the lead's domain, which events do not have
])
def test_a_behaviour_where_on_a_field_events_do_not_have_is_refused(
        where: dict[str, object]) -> None:
    # GIVEN a behaviour rule whose `where` reads a field events do not carry
    text = HEAD + "behaviour:\n  - " + json.dumps(
        {"id": "p", "events": ["activity.website_visit"], "where": where, "points": 1}) + "\n"
    # WHEN checked THEN refused, naming the rule and listing the fields events have
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "mine.yaml")
    message = raised.value.details[0]["message"]
    assert message.startswith('behaviour rule "p": field "where": unknown event field ')
    assert "reads url, page, campaign, utm_source" in message


def test_the_default_rules_still_parse() -> None:
    assert parse_rules(default_rules_text()).version.startswith("default-")
