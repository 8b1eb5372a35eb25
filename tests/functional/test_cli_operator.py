"""The operator commands: lead history, rescore, report, export leads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import event, form
from click.testing import CliRunner
from conftest import NOW

from leadscore.cli import main
from leadscore.container import install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules, default_rules_text
from leadscore.service.writes import apply_events
from leadscore.store.sqlite import SqliteStore


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    store, rules = SqliteStore(tmp_path / "leads.db"), default_rules()
    for i, kind in enumerate(["newsletter", "webinar", "demo_request"]):
        email = f"op{i}@acme.com"
        apply_events(store, lead_id_for(email), email, [
            form(email, f"f{i}", NOW, kind=kind, job_title="Student" if i == 0 else "CTO"),
            event("email_delivered", email, f"d{i}", NOW, source="esp")], rules, NOW)
    store.close()
    return f"sqlite:///{tmp_path / 'leads.db'}"


def run(store_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--store", store_url, *args])
    install(None)
    assert result.exit_code == 0, result.output
    return result.output


def test_lead_history_is_a_readable_timeline(store_url: str) -> None:
    out = run(store_url, "lead", "history", "op0@acme.com")
    assert "form_submitted" in out and "fit.student" in out and "students rarely buy" in out
    assert "email_delivered" in out and "rules default-2026.11" in out


def strict_rules(path: Path, version: str, dump: Callable[[Any], str]) -> Path:
    """The default rules with an easy MQL and an unreachable SQL, written with `dump`."""
    data = yaml.safe_load(default_rules_text())
    data["version"] = version
    data["stages"] = {"mql": 20, "sql": 200}
    path.write_text(dump(data))
    return path


def test_rescore_previews_then_applies_a_rules_change(store_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rules_file = strict_rules(tmp_path / "strict.yaml", "strict-2026.12", yaml.safe_dump)
    preview = json.loads(run(store_url, "rescore", "--rules", str(rules_file), "--dry-run",
                             "--json"))
    assert preview["dry_run"] is True and preview["stage_moves"]
    human = run(store_url, "rescore", "--rules", str(rules_file), "--dry-run")
    assert "stage moves" in human and "biggest movers" in human
    monkeypatch.setenv("LEADSCORE_RULES", str(rules_file))  # deployed: now it may apply
    applied = json.loads(run(store_url, "rescore", "--rules", str(rules_file), "--json"))
    assert applied["stage_moves"] == preview["stage_moves"]
    again = json.loads(run(store_url, "rescore", "--rules", str(rules_file), "--json"))
    assert again["skipped"] == 3 and again["changed"] == 0



def test_rescore_reads_a_json_rules_file_as_the_functions_do(store_url: str,
                                                             tmp_path: Path) -> None:
    # GIVEN stricter rules written as JSON (what `rules check --json-out` gives a deploy)
    rules_file = strict_rules(tmp_path / "strict.json", "strict-json-2026.12", json.dumps)
    # WHEN the operator previews a rescore with them
    preview = json.loads(run(store_url, "rescore", "--rules", str(rules_file), "--dry-run",
                             "--json"))
    # THEN they are read (through the one rules-file reader) and the stage moves show
    assert preview["dry_run"] is True and preview["stage_moves"]

def test_report_tables_and_json(store_url: str) -> None:
    report = json.loads(run(store_url, "report", "--json"))
    assert report["leads"] == 3 and sum(report["funnel"].values()) == 3
    out = run(store_url, "report")
    assert "stage funnel" in out and "grade matrix" in out and "calibration" in out


def test_lead_erase(store_url: str) -> None:
    assert "erased l_" in run(store_url, "lead", "erase", "op1@acme.com", "--yes")
    result = CliRunner().invoke(main, ["--store", store_url, "lead", "show", "op1@acme.com"])
    install(None)
    assert result.exit_code == 1


def test_export_leads_for_a_crm(store_url: str) -> None:
    rows = list(csv.DictReader(io.StringIO(run(store_url, "export", "leads"))))
    assert sorted(r["email"] for r in rows) == ["op0@acme.com", "op1@acme.com", "op2@acme.com"]
    assert "profile.job_title" in rows[0]
    mqls = run(store_url, "export", "leads", "--stage", "mql", "--format", "jsonl")
    assert mqls.splitlines() and all(json.loads(line)["stage"] == "mql"
                                     for line in mqls.splitlines())


def test_configuration_mistakes_end_in_one_clear_line(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nstages: {mql: 9, sql: 1}\n")
    monkeypatch.setenv("LEADSCORE_RULES", str(bad))
    result = CliRunner().invoke(main, ["--store", f"sqlite:///{tmp_path}/x.db", "report"])
    install(None)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "sql threshold" in result.output
    result = CliRunner().invoke(main, ["--store", "postgres://nope", "leads", "list"])
    install(None)
    assert result.exit_code == 1 and "use sqlite:///PATH, firestore or memory" in result.output
