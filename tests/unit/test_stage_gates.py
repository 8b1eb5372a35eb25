"""Stage gates: a stage can require fit and engagement besides the total score; the rules
carry a content hash that changes with any rule."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from builders import form
from conftest import NOW

from leadscore.domain.rules import Rules, default_rules_text, parse_rules
from leadscore.domain.scoring import apply_events
from leadscore.errors import RulesError

ANA = "ana@acme.com"


def rules_with(**changes: Any) -> Rules:
    data = yaml.safe_load(default_rules_text())
    data.update(changes)
    return parse_rules(yaml.safe_dump(data))


def stage(rules: Rules, kind: str, **profile: Any) -> str:
    lead, _ = apply_events(None, "l", ANA, [form(ANA, "f", NOW, kind=kind, **profile)],
                           rules, NOW)
    return lead.stage


PERFECT_FIT = {"job_title": "CTO", "industry": "SaaS", "seniority": "VP",
               "company_size": "51-200"}  # fit 55, grade A


def test_a_perfect_fit_without_engagement_is_no_mql_behind_a_gate() -> None:
    # GIVEN an MQL that needs engagement digit 3 or better (at least 10 points)
    gated = rules_with(stages={"mql": {"score": 40, "fit_at_least": "C",
                                       "engagement_at_least": "3"}, "sql": 80})
    plain = rules_with(stages={"mql": 40, "sql": 80})
    # THEN a newsletter signup alone does not make a perfect-fit lead an MQL
    assert stage(plain, "newsletter", **PERFECT_FIT) == "mql"
    assert stage(gated, "newsletter", **PERFECT_FIT) == "lead"
    # AND real engagement does
    assert stage(gated, "content_download", **PERFECT_FIT) == "mql"


def test_a_poor_fit_cannot_buy_its_way_to_sql_with_engagement_alone() -> None:
    gated = rules_with(stages={"mql": {"score": 40, "fit_at_least": "C"},
                               "sql": {"score": 80, "fit_at_least": "B"}})
    assert stage(gated, "demo_request", job_title="Student", company_size="3") == "lead"


def test_both_stage_forms_are_the_same_rules() -> None:
    short = rules_with(stages={"mql": 40, "sql": 80})
    long = rules_with(stages={"mql": {"score": 40}, "sql": {"score": 80}})
    assert short.stages.mql == long.stages.mql == 40 and short.stages.sql == 80
    assert short.content_hash == long.content_hash


def test_the_content_hash_changes_with_any_rule_even_without_a_new_version() -> None:
    base = rules_with()
    assert len(base.content_hash) == 64
    assert rules_with().content_hash == base.content_hash
    fit = yaml.safe_load(default_rules_text())["fit"]
    fit[0]["points"] += 1
    assert rules_with(fit=fit).content_hash != base.content_hash
    assert rules_with(version="other").content_hash != base.content_hash


def test_a_bad_gate_names_the_stage_and_field() -> None:
    with pytest.raises(RulesError) as raised:
        rules_with(stages={"mql": {"score": 40, "fit_at_least": "E"}, "sql": 80})
    fields = {d["field"] for d in raised.value.details}
    assert "stages.mql.fit_at_least" in fields, fields


def test_with_the_default_rules_fit_alone_makes_no_mql(rules: Rules) -> None:
    # GIVEN the built-in rules' MQL gate (fit C or better, engagement 3 or better)
    assert stage(rules, "newsletter", **PERFECT_FIT) == "lead"  # 58 points, engagement 3
    assert stage(rules, "webinar", **PERFECT_FIT) == "mql"
    # AND a net fit penalty keeps a student out of the MQL stage, however engaged
    events = [form(ANA, "d", NOW, kind="demo_request", job_title="Student"),
              form(ANA, "s", NOW, kind="free_sample")]
    student, _ = apply_events(None, "l", ANA, events, rules, NOW)
    assert student.score >= rules.stages.mql and student.grade[0] == "D"
    assert student.stage == "lead"
