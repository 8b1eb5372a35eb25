"""Rules without PyYAML (issue 20's cold start): the functions read the built-in rules from
their JSON twin, and a `.json` LEADSCORE_RULES file is read by the standard library, with the
same rules and the same named problems as the YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from leadscore.cli import main
from leadscore.config import Settings
from leadscore.container import load_rules
from leadscore.domain.rules import (
    default_rules,
    default_rules_json,
    default_rules_text,
    parse_rules,
    parse_rules_json,
)
from leadscore.errors import RulesError


def test_the_json_twin_is_the_built_in_yaml() -> None:
    # GIVEN the built-in rules as people read them (YAML) and as the functions read them
    twin = resources.files("leadscore.domain").joinpath("default_rules.json").read_text("utf-8")
    # THEN the twin is exactly what the YAML makes (edit the YAML, then regenerate the twin:
    # python -c "from leadscore.domain.rules import write_default_json; write_default_json()")
    assert twin == default_rules_json(default_rules_text())
    # AND both give the same rules, to the hash the history records
    from_yaml = parse_rules(default_rules_text(), "default rules")
    assert default_rules().model_dump() == from_yaml.model_dump()
    assert default_rules().content_hash == from_yaml.content_hash


def test_a_json_rules_file_gives_the_same_rules_as_its_yaml(tmp_path: Path) -> None:
    # GIVEN one set of rules written as YAML and as JSON
    data = yaml.safe_load(default_rules_text())
    data["version"] = "mine-1"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "rules.json").write_text(json.dumps(data))
    # WHEN LEADSCORE_RULES names either
    as_yaml = load_rules(Settings(store="memory", rules=tmp_path / "rules.yaml"))
    as_json = load_rules(Settings(store="memory", rules=tmp_path / "rules.json"))
    # THEN the rules are the same
    assert as_json.version == "mine-1"
    assert as_json.model_dump() == as_yaml.model_dump()
    assert as_json.content_hash == as_yaml.content_hash


def test_a_json_rules_file_names_its_problems_as_yaml_does(tmp_path: Path) -> None:
    # GIVEN one mistake, in a YAML and in a JSON rules file
    data = yaml.safe_load(default_rules_text())
    data["engagement_half_life_days"] = 3651
    (tmp_path / "bad.json").write_text(json.dumps(data))
    # WHEN each is read
    with pytest.raises(RulesError) as from_json:
        load_rules(Settings(store="memory", rules=tmp_path / "bad.json"))
    with pytest.raises(RulesError) as from_yaml:
        parse_rules(yaml.safe_dump(data), str(tmp_path / "bad.json"))
    # THEN both name the same place and problem
    assert from_json.value.details == from_yaml.value.details
    assert from_json.value.details[0]["field"] == "engagement_half_life_days"


@pytest.mark.parametrize(("text", "problem"), [
    ('{"version": ', "not valid JSON"),
    ("[1, 2]", "must be a mapping"),
])
def test_a_broken_json_document_is_refused_whole(text: str, problem: str) -> None:
    with pytest.raises(RulesError, match=problem):
        parse_rules_json(text, "rules.json")


@pytest.mark.parametrize("rules", ["", "rules.json"])
def test_a_function_with_built_in_or_json_rules_never_loads_pyyaml(
        tmp_path: Path, rules: str) -> None:
    # GIVEN a fresh interpreter: the built-in rules, or a JSON rules file
    path = ""
    if rules:
        (tmp_path / rules).write_text(json.dumps(yaml.safe_load(default_rules_text())))
        path = str(tmp_path / rules)
    probe = ("import sys\nfrom pathlib import Path\n"
             "from leadscore.config import Settings\nfrom leadscore.container import Container\n"
             f"app = Container(Settings(store='memory', rules=Path({path!r}) if {path!r} "
             "else None))\n"
             "print(app.rules.version, 'yaml' in sys.modules)")
    # WHEN the rules are loaded
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    # THEN PyYAML was never imported
    version, yaml_loaded = done.stdout.split()
    assert version and yaml_loaded == "False"


@pytest.mark.parametrize("changes", [
    {},  # the built-in rules as an operator copies them
    {"website": {"default_page_activity": None},  # a null that differs from the default
     "stages": {"mql": {"score": 40, "fit_at_least": "C"}, "sql": 80,
                "hysteresis": {"margin": 5}}},  # the gate form of a stage
])
def test_rules_check_writes_json_that_reads_back_to_the_same_rules(
        tmp_path: Path, changes: dict[str, object]) -> None:
    # GIVEN an operator's YAML rules file
    data = yaml.safe_load(default_rules_text())
    data.update(changes)
    source = tmp_path / "rules.yaml"
    source.write_text(yaml.safe_dump(data))
    # WHEN it is checked with --json-out
    out = tmp_path / "deploy" / "rules.json"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["rules", "check", str(source), "--json-out", str(out)])
    # THEN the JSON is written, and a function reading it gets the very same rules
    assert result.exit_code == 0, result.output
    assert f"{out}: written" in result.output
    deployed = load_rules(Settings(store="memory", rules=out))
    original = parse_rules(source.read_text(), str(source))
    assert deployed.content_hash == original.content_hash
    assert deployed.model_dump() == original.model_dump()


def test_rules_check_reads_a_json_file_and_writes_nothing_for_a_bad_one(tmp_path: Path) -> None:
    # GIVEN a JSON rules file with a mistake
    data = yaml.safe_load(default_rules_text())
    data["engagement_half_life_days"] = 3651
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    # WHEN it is checked
    result = CliRunner().invoke(main, ["rules", "check", str(bad), "--json-out", str(out)])
    # THEN the problem is named and no JSON is written
    assert result.exit_code == 1
    assert "engagement_half_life_days" in result.output
    assert not out.exists()
