"""Segments a rules check used to pass and sync then tripped on (audit): a last band with
`non_opener: false` (band_for raised StopIteration for every non-opener during the email
tools' sync), `stages: [SQL]` and `grades: [a]` (never matched)."""

from __future__ import annotations

import pytest

from leadscore.domain.rules import default_rules_text, parse_rules
from leadscore.domain.segments import segments_of
from leadscore.errors import RulesError


def _with_bands(bands: str) -> str:
    return default_rules_text() + f"\nsegments:\n  bands: {bands}\n"


@pytest.mark.parametrize("last", ["{name: rest, non_opener: false}",
                                  "{name: rest, non_opener: true}",
                                  "{name: rest, min_score: -1000}"])
def test_a_last_band_with_any_condition_is_refused(last: str) -> None:
    # GIVEN a last band with a condition (even one most leads meet)
    # WHEN checked THEN refused: some lead would find no band at all
    with pytest.raises(RulesError, match="the last band must match every lead: no min_score"):
        parse_rules(_with_bands(f"[{{name: hot, min_score: 80}}, {last}]"))


def test_every_lead_finds_a_band_when_the_last_has_no_condition() -> None:
    segments = segments_of(parse_rules(_with_bands(
        "[{name: quiet, non_opener: false, min_score: 50}, {name: rest}]")))
    for non_opener in (True, False):
        for score in (-10.0, 10.0, 90.0):
            assert segments.band_for(score, "C3", "lead", non_opener).name in ("quiet", "rest")


def test_stages_and_grades_are_read_in_any_case() -> None:
    # GIVEN `stages: [SQL]` and `grades: [a, b1]`
    segments = segments_of(parse_rules(_with_bands(
        "[{name: hot, stages: [SQL, Customer], grades: [a, b1]}, {name: rest}]")))
    # THEN they match the stages and grades leads have
    assert segments.band_for(0, "A4", "sql", False).name == "hot"
    assert segments.band_for(0, "B1", "customer", False).name == "hot"
    assert segments.band_for(0, "B2", "sql", False).name == "rest"


@pytest.mark.parametrize(("band", "problem"), [
    ("{name: hot, stages: [qualified]}", "unknown stages qualified: the stages are lead, mql, "
                                         "sql, customer"),
    ("{name: hot, grades: [E]}", "unknown grades E: a grade is a fit letter A-D"),
    ("{name: hot, grades: [A5]}", "unknown grades A5"),
    ("{name: hot, grades: ['1']}", "unknown grades 1"),
])
def test_unknown_stages_and_grades_are_refused_naming_the_allowed_values(
        band: str, problem: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(_with_bands(f"[{band}, {{name: rest}}]"))
    assert problem in str(raised.value)
    assert "segments.bands.0" in raised.value.details[0]["field"]
