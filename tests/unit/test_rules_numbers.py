"""Every number a rules file gives is finite, and points and thresholds are bounded (audit:
`points: .nan` made every /ingest of the lead a 503, SQLite's NOT NULL on the score; `.inf`
stored a score that could not be read back; `range: {min: .nan}` never matched)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from leadscore.domain.rules import parse_rules
from leadscore.domain.rules_numbers import MAX_POINTS
from leadscore.errors import RulesError

BASE: dict[str, Any] = {"version": "t", "engagement_half_life_days": 45,
                        "stages": {"mql": 40, "sql": 80}}


def _with(value: float, part: str) -> dict[str, Any]:
    """The base rules with `value` in the one place `part` names."""
    places: dict[str, dict[str, Any]] = {
        "fit points": {"fit": [{"id": "f", "field": "t", "equals": "x", "points": value}]},
        "engagement points": {"engagement": {"email.opened": {"points": value}}},
        "behaviour points": {"behaviour": [{"id": "b", "events": ["email.opened"],
                                            "points": value}]},
        "per_purchase": {"purchase": {"per_purchase": value}},
        "value band points": {"purchase": {"value_bands": [{"min": 100, "points": value}]}},
        "purchase band points": {"purchase": {"bands": [{"id": "pb", "count": {"min": 1},
                                                         "points": value}]}},
        "mql threshold": {"stages": {"mql": value, "sql": 80}},
        "sql gate": {"stages": {"mql": 40, "sql": {"score": value}}},
        "grade band": {"grades": {"fit": {"A": value, "B": 15, "C": 0},
                                  "engagement": {"1": 60, "2": 30, "3": 10}}},
        "limit": {"limits": {"email": value}},
        "segment min_score": {"segments": {"bands": [{"name": "hot", "min_score": value},
                                                     {"name": "rest"}]}},
        "range min": {"fit": [{"id": "f", "field": "size", "range": {"min": value},
                               "points": 1}]},
        "hysteresis margin": {"stages": {"mql": 40, "sql": 80,
                                         "hysteresis": {"margin": value}}},
    }
    return {**BASE, **places[part]}


NAMED = {
    "fit points": 'fit rule "f": field "points"',
    "engagement points": 'engagement rule "email.opened": field "points"',
    "behaviour points": 'behaviour rule "b": field "points"',
    "per_purchase": 'field "purchase.per_purchase"',
    "value band points": 'field "purchase.value_bands.0.points"',
    "purchase band points": 'purchase band "pb": field "points"',
    "mql threshold": 'field "stages.mql"',
    "sql gate": 'field "stages.sql.score"',
    "grade band": 'field "grades.fit.A"',
    "limit": 'field "limits.email"',
    "segment min_score": 'field "segments.bands.0.min_score"',
    "range min": 'fit rule "f": field "range.min"',
    "hysteresis margin": 'field "stages.hysteresis.margin"',
}
POINTS_AND_THRESHOLDS = [p for p in NAMED if p not in ("range min", "hysteresis margin")]


def _refusal(data: dict[str, Any]) -> list[str]:
    with pytest.raises(RulesError) as raised:
        parse_rules(yaml.safe_dump(data), "mine.yaml")
    return [d["message"] for d in raised.value.details]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("part", list(NAMED))
def test_nan_and_infinity_are_refused_everywhere_naming_rule_and_field(part: str,
                                                                       value: float) -> None:
    # GIVEN a rules file with NaN or an infinity in one place (YAML `.nan`, `.inf`)
    # WHEN it is checked THEN it is refused, naming the rule and the field
    messages = _refusal(_with(value, part))
    assert any(m.startswith(NAMED[part]) and "finite" in m for m in messages), messages


@pytest.mark.parametrize("part", POINTS_AND_THRESHOLDS)
def test_points_and_thresholds_beyond_the_documented_bound_are_refused(part: str) -> None:
    # GIVEN points or a threshold of 1e308 (finite, but sums of them overflow)
    messages = _refusal(_with(1e308, part))
    # THEN refused, naming the place and the bound
    assert any(m.startswith(NAMED[part]) and "1000000" in m for m in messages), messages


@pytest.mark.parametrize("part", ["fit points", "engagement points", "behaviour points",
                                  "per_purchase", "purchase band points"])
def test_points_at_the_bound_are_accepted(part: str) -> None:
    # GIVEN points of exactly -MAX_POINTS WHEN checked THEN the rules parse
    assert parse_rules(yaml.safe_dump(_with(-MAX_POINTS, part))).version == "t"


def test_the_nan_points_from_the_audit_no_longer_reach_scoring() -> None:
    # GIVEN the audit's file, as a person writes it
    text = "version: t\nengagement_half_life_days: 45\nstages: {mql: 40, sql: 80}\n" \
           "fit:\n  - {id: nan-rule, field: job_title, contains: [ceo], points: .nan}\n"
    # WHEN it is checked THEN it is refused before any lead is scored with it
    with pytest.raises(RulesError, match='fit rule "nan-rule": field "points"'):
        parse_rules(text, "mine.yaml")
