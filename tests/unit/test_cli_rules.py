"""`leadscore rules check FILE`: ok for a good file, every problem listed for a bad one."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from leadscore.cli import main
from leadscore.domain.rules import default_rules_text


def test_rules_check_accepts_the_default_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_text())
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 0 and "ok (version default-2026.11" in result.output


def test_rules_check_lists_each_problem_with_its_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_text().replace(
        "{id: student, field: job_title, contains: [student, estudiante, intern, becario], "
        "points: -25",
        "{id: student, field: job_title, contains: [], points: -25"))
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert "fit.10 (id=student).contains" in result.output


def test_rules_check_explains_new_constructs_with_rule_and_field(tmp_path: Path) -> None:
    # GIVEN a rules file whose all-condition holds a reversed range
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_text().replace(
        "- {field: company_size, range: {min: 1000}}",
        "- {field: company_size, range: {min: 1000, max: 10}}"))
    # WHEN it is checked THEN the line names the rule, the field and the problem
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert ('fit rule "enterprise-decision-maker": field "all.0.range": min is greater than '
            "max") in result.output


def test_rules_check_names_the_purchase_band_and_field(tmp_path: Path) -> None:
    # GIVEN the default rules with a reversed spend band and a band with two measures
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_text().replace(
        "total_spend: {min: 5000}", "total_spend: {min: 5000, max: 50}").replace(
        "{id: repeat-buyer, count: {min: 3},", "{id: repeat-buyer, count: {min: 3}, "
        "days_since_last: {max: 9},"))
    # WHEN it is checked THEN each line names the band, the field and the problem
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert ('purchase band "big-spender": field "total_spend": min is greater than max'
            in result.output)
    assert 'purchase band "repeat-buyer": give exactly one of count' in result.output


def test_a_rules_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    # GIVEN the default rules saved as UTF-16 (an audit saw a UnicodeDecodeError traceback)
    path = tmp_path / "rules.yaml"
    path.write_bytes(default_rules_text().encode("utf-16"))
    # WHEN it is checked THEN the file is named and said to be not UTF-8, no traceback
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 1 and "is not UTF-8 text" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
