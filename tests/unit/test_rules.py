"""Rules files: the default is valid, bad files are refused whole with named problems."""

from __future__ import annotations

import pytest
import yaml

from leadscore.domain.rules import default_rules, default_rules_text, parse_rules
from leadscore.errors import RulesError


def _with(**changes: object) -> str:
    data = yaml.safe_load(default_rules_text())
    data.update(changes)
    return yaml.safe_dump(data)


def test_the_default_rules_are_valid_and_cover_the_common_practice() -> None:
    rules = default_rules()
    assert rules.engagement["form.demo_request"].points > rules.engagement[
        "form.newsletter"].points
    assert rules.engagement["email.unsubscribed"].points < 0
    assert rules.engagement["email.complained"].points < 0
    negatives = {r.id for r in rules.fit if r.points < 0}
    assert {"student", "retired", "unemployed", "competitor"} <= negatives


@pytest.mark.parametrize(("change", "where", "problem"), [
    ({"fit": [{"id": "two", "field": "industry", "equals": "x", "one_of": ["y"],
               "points": 1}]}, "fit.0 (id=two)", "exactly one of"),
    ({"fit": [{"id": "r", "field": "company_size", "range": {"min": 9, "max": 1},
               "points": 1}]}, "fit.0 (id=r).range", "min is greater than max"),
    ({"fit": [{"id": "p", "field": "industry", "equals": "x", "points": "lots"}]},
     "fit.0 (id=p).points", "valid number"),
    ({"engagement": {"email.openned": {"points": 1}}}, "(top level)", "email.openned"),
    ({"engagement": {"email.opened": {"points": 1, "half_life_days": 0.01}}},
     "engagement.email.opened.half_life_days", "from 1 hour"),
    ({"engagement_half_life_days": 3651}, "engagement_half_life_days", "to 3650 days"),
    ({"engagement": {"email.opened": {"points": 1, "cap": {"max_events": 0,
                                                            "window_days": 7}}}},
     "engagement.email.opened.cap.max_events", "greater than or equal to 1"),
    ({"stages": {"mql": 90, "sql": 10}}, "stages", "sql threshold"),
    ({"grades": {"fit": {"A": 1, "B": 0}}}, "grades", "exactly A, B and C"),
    ({"surprise": 1}, "surprise", "Extra inputs"),
])
def test_a_bad_rules_file_names_the_rule_and_field(change: dict[str, object], where: str,
                                                    problem: str) -> None:
    # GIVEN a rules file with one mistake
    text = _with(**change)
    # WHEN it is parsed
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "mine.yaml")
    # THEN the error names the place and the problem
    fields = {d["field"]: d["problem"] for d in raised.value.details}
    assert where in fields, fields
    assert problem in fields[where]


def test_a_file_that_is_not_yaml_or_not_a_mapping_is_refused() -> None:
    with pytest.raises(RulesError, match="not valid YAML"):
        parse_rules("version: [unclosed", "x.yaml")
    with pytest.raises(RulesError, match="must be a mapping"):
        parse_rules("- just\n- a list\n", "x.yaml")


def test_the_behaviour_rules_by_id_cannot_be_changed_through_the_lookup() -> None:
    # GIVEN rules with behaviour rules (shared by every request of a process)
    rules = parse_rules(default_rules_text())
    lookup = rules.behaviour_by_id()
    assert lookup and set(lookup) == {r.id for r in rules.behaviour}
    before, some_id = rules.content_hash, next(iter(lookup))
    # WHEN a caller tries to replace, add or remove one through it
    with pytest.raises(TypeError):
        lookup[some_id] = lookup[some_id].model_copy(update={"points": 1000.0})
    with pytest.raises(TypeError):
        lookup["new"] = lookup[some_id]
    with pytest.raises(TypeError):
        del lookup[some_id]
    # THEN the rules are as they were
    assert rules.behaviour_by_id() == {r.id: r for r in rules.behaviour}
    assert rules.content_hash == before
