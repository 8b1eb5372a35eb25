"""`leadscore decay` and `leadscore export non-openers`, run as a person would."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import event, form
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.service.writes import apply_events
from leadscore.store.sqlite import SqliteStore

BIN = Path(sys.executable).parent / "leadscore"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    path = tmp_path / "leads.db"
    store, rules = SqliteStore(path), default_rules()
    for email, days in (("hot@acme.com", 0), ("silent@acme.com", 220)):
        at = NOW - timedelta(days=days)
        apply_events(store, lead_id_for(email), email, [
            form(email, "f", at, kind="demo_request"),
            event("email_delivered", email, "d", at, source="esp")], rules, at)
    store.close()
    return f"sqlite:///{path}"


def cli(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "--store", store_url, *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_decay_json_summary_and_dry_run(store_url: str) -> None:
    dry = cli(store_url, "decay", "--now", "2026-12-01T06:00:00Z", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["dry_run"] is True and preview["decayed"] == 2
    again = json.loads(cli(store_url, "decay", "--now", "2026-12-01T06:00:00Z", "--dry-run",
                           "--json").stdout)
    assert again["decayed"] == 2  # the dry run wrote nothing
    real = json.loads(cli(store_url, "decay", "--now", "2026-12-01T06:00:00Z", "--simulate",
                          "--json").stdout)
    assert {k: real[k] for k in ("decayed", "stages_down", "flagged_non_openers")} == {
        k: preview[k] for k in ("decayed", "stages_down", "flagged_non_openers")}
    assert real["flagged_non_openers"] == 1
    human = cli(store_url, "decay", "--now", "2026-12-01T06:00:00Z", "--simulate")
    assert "examined 0 due leads" in human.stdout


@pytest.mark.parametrize("bad", ["yesterday", "2026-12-01T06:00:00"])
def test_an_invalid_now_is_a_usage_error(store_url: str, bad: str) -> None:
    answer = cli(store_url, "decay", "--now", bad)
    assert answer.returncode == 2 and "--now" in answer.stderr


def test_a_real_run_dated_ahead_of_the_clock_is_refused_and_changes_nothing(
        store_url: str) -> None:
    # GIVEN a store, and a --now a month ahead of the real clock (an audit found such a run
    # stored views for that moment that no later run repaired)
    ahead = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    before = json.loads(cli(store_url, "decay", "--now", ahead, "--dry-run", "--json").stdout)
    # WHEN it is run for real without --simulate
    answer = cli(store_url, "decay", "--now", ahead)
    # THEN it is refused, naming the way out, and the next dry run still sees every change
    assert answer.returncode == 1 and "--simulate" in answer.stderr
    again = json.loads(cli(store_url, "decay", "--now", ahead, "--dry-run", "--json").stdout)
    assert again["decayed"] == before["decayed"] > 0


def test_export_non_openers(store_url: str) -> None:
    cli(store_url, "decay", "--now", "2026-12-01T06:00:00Z", "--simulate")
    rows = list(csv.DictReader(io.StringIO(cli(store_url, "export", "non-openers").stdout)))
    assert [r["email"] for r in rows] == ["silent@acme.com"] and rows[0]["non_opener_since"]
    lines = cli(store_url, "export", "non-openers", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["email"] for line in lines] == ["silent@acme.com"]

