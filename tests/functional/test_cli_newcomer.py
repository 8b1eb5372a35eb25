"""What a newcomer following the README met at the `leadscore` command (a session-9 audit):
erasing an address with no lead, JSON output a parser can read, readable exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from builders import form, opened
from click.testing import CliRunner, Result
from conftest import NOW

from leadscore.cli import main
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules, default_rules_text
from leadscore.service.erasure import erase_address
from leadscore.service.reports import BAND_ORDER
from leadscore.service.writes import apply_events
from leadscore.store.sqlite import SqliteStore

NEVER_SEEN = "never.seen@example.com"


@pytest.fixture
def installed(store: Any) -> Iterator[Any]:
    """The command runs on `store` (memory, SQLite, the Firestore emulator)."""
    install(Container(Settings(store="memory"), store=store, clock=lambda: NOW))
    yield store
    install(None)


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_erasing_an_address_with_no_lead_records_the_erasure(installed: Any) -> None:
    # GIVEN an address the store has never seen (the person asked before any event came)
    store = installed
    # WHEN the operator erases it, as the README's "Personal data" says
    result = cli("lead", "erase", NEVER_SEEN, "--yes")
    # THEN the command succeeds and says the address is recorded as erased
    assert result.exit_code == 0, result.output
    assert "no lead stored; the address is recorded as erased" in result.stdout
    assert "future events are dropped" in result.stdout
    # AND a tombstone is kept, as `POST /leads_api/leads/erase` keeps one
    lead_id = lead_id_for(NEVER_SEEN)
    assert store.tombstone(lead_id) is not None
    # AND a later engagement event for that address creates no lead
    later = NOW.replace(hour=13)
    apply_events(store, lead_id, NEVER_SEEN, [opened(NEVER_SEEN, "o-after", later)],
                 default_rules(), later)
    assert store.get_lead(lead_id) is None


def test_erasing_asks_first_and_says_what_it_will_record(installed: Any) -> None:
    # GIVEN an address with no lead; WHEN the operator answers no to the question
    result = cli("lead", "erase", NEVER_SEEN, stdin="n\n")
    # THEN the question said no lead is stored, and nothing was recorded
    assert "No lead is stored for this address" in result.output
    assert result.exit_code == 1 and installed.tombstone(lead_id_for(NEVER_SEEN)) is None


def test_erasing_an_id_with_no_lead_is_a_clear_error(installed: Any) -> None:
    # GIVEN a lead id that names nothing stored (an id has no address to record)
    # WHEN it is erased THEN one clear error line, and no tombstone under it
    result = cli("lead", "erase", "l_" + "0" * 32, "--yes")
    assert result.exit_code == 1
    assert "no lead with that id" in result.stderr
    assert installed.tombstone("l_" + "0" * 32) is None


def test_erasing_text_that_is_no_address_records_nothing(installed: Any) -> None:
    result = cli("lead", "erase", "not-an-address", "--yes")
    assert result.exit_code == 1 and "not an email address or a lead id" in result.stderr
    assert installed.tombstone(lead_id_for("not-an-address")) is None


def test_erasing_a_stored_lead_still_names_it(installed: Any) -> None:
    # GIVEN a stored lead; WHEN erased by address THEN its id is printed and it is gone
    email = "stored@example.com"
    apply_events(installed, lead_id_for(email), email, [form(email, "f1", NOW)],
                 default_rules(), NOW)
    result = cli("lead", "erase", email, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"erased {lead_id_for(email)}"
    assert installed.get_lead(lead_id_for(email)) is None


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An embedded store with three leads and one erased address."""
    monkeypatch.setenv("LEADSCORE_HOME", str(tmp_path))
    store, rules = SqliteStore(tmp_path / "leads.db"), default_rules()
    for i, kind in enumerate(["newsletter", "webinar", "demo_request"]):
        email = f"op{i}@acme.com"
        apply_events(store, lead_id_for(email), email, [
            form(email, f"f{i}", NOW, kind=kind, job_title="CTO", industry="SaaS")],
            rules, NOW)
    apply_events(store, lead_id_for(GONE), GONE, [form(GONE, "g", NOW)], rules, NOW)
    erase_address(store, GONE, NOW)
    store.close()
    return f"sqlite:///{tmp_path / 'leads.db'}"


GONE = "gone@acme.com"
OUTCOMES = ("email,outcome,occurred_at,amount,currency,id\n"
            "op2@acme.com,deal_won,2026-11-21T10:00:00Z,1250.00,EUR,d1\n"
            f"{GONE},deal_won,2026-11-21T10:00:00Z,,,d2\n")


def on(store_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--store", store_url, *args])
    install(None)
    return result


def json_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command that has a `--json` option, by its words (`("lead", "show")`)."""
    found: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= json_commands(command, (*prefix, name))
        elif any("--json" in p.opts for p in command.params):
            found.add((*prefix, name))
    return found


def test_every_json_output_is_json_alone(store_url: str, tmp_path: Path) -> None:
    # GIVEN a store with leads, and an outcomes file whose import changes a stage
    outcomes = tmp_path / "deals.csv"
    outcomes.write_text(OUTCOMES)
    asked = {
        ("lead", "show"): ["op2@acme.com"],
        ("decay",): ["--dry-run"],
        ("rescore",): ["--dry-run"],
        ("report",): [],
        ("providers",): [],
        ("leads", "list"): [],
        ("import", "outcomes"): [str(outcomes)],
        ("calibrate",): ["--bootstrap", "0"],
        ("dashboard", "recount"): [],
        ("rekey",): ["--dry-run"],
    }
    # suggest-rules needs scikit-learn and 100 conversions; its --json is the same dump
    assert json_commands(main) - {("suggest-rules",)} == set(asked)
    applied = ["rescore"]  # under the rules in force: it writes, and logs what it does
    for command in [[*words, *extra] for words, extra in asked.items()] + [applied]:
        # WHEN it is run with --json
        result = on(store_url, *command, "--json")
        # THEN its stdout is one JSON document (log lines, if any, went to stderr)
        assert result.exit_code == 0, (command, result.output)
        try:
            json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"{' '.join(command)}: stdout is not JSON: {result.stdout[:300]}")


def test_plain_outputs_carry_no_log_lines(store_url: str, tmp_path: Path) -> None:
    # GIVEN an outcomes file; WHEN imported, then a lead erased, without --json
    outcomes = tmp_path / "deals.csv"
    outcomes.write_text(OUTCOMES)
    imported = on(store_url, "import", "outcomes", str(outcomes))
    erased = on(store_url, "lead", "erase", "op1@acme.com", "--yes")
    # THEN stdout holds only the commands' own lines; the log lines are on stderr
    for result in (imported, erased):
        assert result.exit_code == 0, result.output
        assert '"severity"' not in result.stdout
    assert '"severity"' in imported.stderr + erased.stderr


def test_import_counts_rows_for_erased_addresses(store_url: str, tmp_path: Path) -> None:
    # GIVEN an outcomes file with a row for an erased address
    outcomes = tmp_path / "deals.csv"
    outcomes.write_text(OUTCOMES)
    # WHEN it is imported
    plain = on(store_url, "import", "outcomes", str(outcomes))
    # THEN the row is counted and named, not silently lost
    assert plain.exit_code == 0, plain.output
    assert ("2 rows: 1 outcomes recorded, 0 already known, 0 bad, "
            "1 for erased addresses, not recorded") in plain.stdout
    again = json.loads(on(store_url, "import", "outcomes", str(outcomes), "--json").stdout)
    assert again["erased"] == 1 and again["duplicates"] == 1


def candidate_rules(path: Path) -> Path:
    """The default rules with an easy MQL: a candidate, not the rules in force."""
    data = yaml.safe_load(default_rules_text())
    data["version"] = "cand-1"
    data["stages"] = {"mql": 20, "sql": 40}
    path.write_text(yaml.safe_dump(data))
    return path


def test_rescore_refuses_to_write_rules_that_are_not_in_force(store_url: str,
                                                              tmp_path: Path) -> None:
    # GIVEN candidate rules that are not the rules in force
    cand = candidate_rules(tmp_path / "cand.yaml")
    # WHEN the operator rescores with them for real
    result = on(store_url, "rescore", "--rules", str(cand))
    # THEN it is refused, saying to deploy them first, and no lead was written under them
    assert result.exit_code == 1
    assert "deploy these rules first (LEADSCORE_RULES" in result.stderr
    assert "--dry-run shows the effect" in result.stderr
    store = SqliteStore(Path(store_url.removeprefix("sqlite:///")))
    assert {lead.rules_version for lead in store.iter_leads(limit=10)} == {
        default_rules().version}
    store.close()
    # AND the dry run still previews them
    assert on(store_url, "rescore", "--rules", str(cand), "--dry-run").exit_code == 0


def test_rescore_applies_a_rules_file_once_it_is_in_force(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the candidate deployed (LEADSCORE_RULES names it)
    cand = candidate_rules(tmp_path / "cand.yaml")
    monkeypatch.setenv("LEADSCORE_RULES", str(cand))
    # WHEN rescored with that same file THEN it applies
    result = on(store_url, "rescore", "--rules", str(cand), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rules_version"] == "cand-1"


def test_score_bands_are_listed_in_numeric_order(store_url: str, tmp_path: Path) -> None:
    # GIVEN leads in the bands 0-20, 80-100 and 100+ under generous rules
    data = yaml.safe_load(default_rules_text())
    data["version"] = "generous"
    data["fit"] = [{"id": "cto", "field": "job_title", "contains": ["cto"], "points": 90},
                   {"id": "saas", "field": "industry", "one_of": ["saas"], "points": 30}]
    generous = tmp_path / "generous.yaml"
    generous.write_text(yaml.safe_dump(data))
    store = SqliteStore(Path(store_url.removeprefix("sqlite:///")))
    for email, profile in (("low@acme.com", {}), ("mid@acme.com", {"job_title": "CTO"})):
        apply_events(store, lead_id_for(email), email, [form(email, email, NOW, **profile)],
                     default_rules(), NOW)
    store.close()
    # WHEN the rescore is previewed, as a table and as JSON
    preview = json.loads(on(store_url, "rescore", "--rules", str(generous), "--dry-run",
                            "--json").stdout)
    table = on(store_url, "rescore", "--rules", str(generous), "--dry-run").stdout
    # THEN the bands come in numeric order, as `report` lists them
    bands = list(preview["distribution"])
    assert len(bands) >= 3 and bands == [b for b in BAND_ORDER if b in bands]
    shown = [b for b in BAND_ORDER if b in table]
    assert sorted(shown, key=table.index) == [b for b in BAND_ORDER if b in bands]


def test_csv_export_writes_the_text_forms_of_the_jsonl_export(store_url: str) -> None:
    # GIVEN leads with a flag and times
    # WHEN exported as CSV and as JSONL
    rows = list(csv.DictReader(io.StringIO(on(store_url, "export", "leads").stdout)))
    lines = [json.loads(x) for x in on(store_url, "export", "leads", "--format",
                                       "jsonl").stdout.splitlines()]
    # THEN both write the same text for every cell: `false`, ISO 8601 times with Z
    assert rows and len(rows) == len(lines)
    for row, line in zip(rows, lines, strict=True):
        assert row["non_opener"] == "false"
        assert row["last_activity_at"] == line["last_activity_at"]
        assert row["last_activity_at"].endswith("Z") and "T" in row["last_activity_at"]
        for key, value in line.items():
            expected = "" if value is None else json.dumps(value) if not isinstance(
                value, str) else value
            assert row[key] == expected, key


def test_csv_export_keeps_spreadsheet_formulas_out(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a lead whose address and profile begin as a formula would
    monkeypatch.setenv("LEADSCORE_HOME", str(tmp_path))
    store = SqliteStore(tmp_path / "leads.db")
    email = "=cmd@acme.com"
    apply_events(store, lead_id_for(email), email,
                 [form(email, "f", NOW, company="+SUM(A1)", job_title="Student")],
                 default_rules(), NOW)
    store.close()
    # WHEN exported as CSV
    out = on(f"sqlite:///{tmp_path / 'leads.db'}", "export", "leads").stdout
    row = next(csv.DictReader(io.StringIO(out)))
    # THEN text a spreadsheet would run starts with an apostrophe; numbers stay numbers
    assert row["email"] == "'=cmd@acme.com" and row["profile.company"] == "'+SUM(A1)"
    assert row["score"].startswith("-") and float(row["score"]) < 0  # a student's score
