"""Segments by score: bands from the rules file, matched in order (pure)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from leadscore.domain.rules import default_rules, default_rules_text, parse_rules
from leadscore.domain.segments import DEFAULT_SEGMENTS, Segments, segments_of
from leadscore.errors import RulesError


def test_the_default_bands_put_non_openers_first_then_by_score() -> None:
    band = DEFAULT_SEGMENTS.band_for
    assert band(95, "A1", "sql", True).name == "dormant"
    assert band(95, "A1", "sql", False).name == "hot"
    assert band(50, "B2", "mql", False).name == "warm"
    assert band(-5, "D4", "lead", False).name == "cold"
    assert DEFAULT_SEGMENTS.bands[1].target("mailchimp") == "leadscore-hot"
    assert DEFAULT_SEGMENTS.bands[1].target("brevo") is None


def test_a_rules_file_names_bands_by_grade_and_stage_with_targets_per_tool() -> None:
    # GIVEN the built-in rules with a segments section
    text = default_rules_text() + """
segments:
  bands:
    - {name: vip, grades: [A], stages: [sql, customer], frequency: daily,
       targets: {mailchimp: VIP, brevo: "17", sendgrid: list-vip}}
    - {name: rest, frequency: monthly}
"""
    segments = segments_of(parse_rules(text))
    assert segments.band_for(10, "A3", "customer", False).name == "vip"
    assert segments.band_for(99, "B1", "sql", False).name == "rest"
    assert segments.bands[0].target("brevo") == "17"
    assert segments_of(default_rules()) is DEFAULT_SEGMENTS


@pytest.mark.parametrize("bands, problem", [
    ("[{name: hot, min_score: 80}]", "last band must match every lead"),
    ("[{name: a}, {name: a}]", "duplicate band names"),
    ("[{name: a, targets: {mailjet: x}}]", "unknown tools"),
])
def test_bad_segments_are_refused_with_the_rules_file(bands: str, problem: str) -> None:
    with pytest.raises(RulesError, match=problem):
        parse_rules(default_rules_text() + f"\nsegments:\n  bands: {bands}\n")


def test_the_readme_shows_the_default_bands() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```yaml\n(segments:\n.*?)```", readme, re.S)
    assert block is not None
    shown = Segments.model_validate(yaml.safe_load(block.group(1))["segments"])
    assert shown == DEFAULT_SEGMENTS
