"""A newcomer's first hour locally: every configuration mistake is one clear line, quickly;
the embedded store is found from any folder; browsers get pages; JSON has one time format."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from builders import form
from click.testing import CliRunner
from conftest import NOW
from rich.console import Console
from rich.progress import Progress

from functional.conftest import client_for
from leadscore import jsonfmt
from leadscore.cli import main
from leadscore.cli_views import progress_columns
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.service.writes import apply_events
from leadscore.store.sqlite import SqliteStore


def cli(args: list[str], env: dict[str, str], cwd: Path,
        timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    """The installed `leadscore` command in a clean environment (no Google credentials)."""
    clean = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8", **env}
    if "PYTHONPATH" in os.environ:  # the checkout under test, when it is not the installed one
        clean["PYTHONPATH"] = os.environ["PYTHONPATH"]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "leadscore.cli", *args], env=clean, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return done, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_read_command_never_creates_a_store(tmp_path: Path) -> None:
    # GIVEN a data folder with no database yet
    home = tmp_path / "data"
    # WHEN a newcomer asks for a lead
    done, _ = cli(["lead", "show", "ana@example.com"], {"LEADSCORE_HOME": str(home)}, tmp_path)
    # THEN one line says where it looked, and nothing was created
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "no leadscore database at" in done.stderr and str(home) in done.stderr
    assert not (home / "leads.db").exists()


def test_the_embedded_store_is_found_from_any_folder(tmp_path: Path) -> None:
    # GIVEN a lead written into LEADSCORE_HOME's database
    home = tmp_path / "data"
    settings = Settings(home=home)
    path = settings.sqlite_path()
    assert path == home / "leads.db"
    store = SqliteStore(path)
    email = "ana@example.com"
    apply_events(store, lead_id_for(email), email, [form(email, "f1", NOW, kind="webinar")],
                 default_rules(), NOW)
    store.close()
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    # WHEN the CLI runs in another folder with the same home
    done, _ = cli(["leads", "list", "--json"], {"LEADSCORE_HOME": str(home)}, elsewhere)
    # THEN it reads that database, and created none in the current folder
    assert done.returncode == 0, done.stderr
    assert [row["email"] for row in json.loads(done.stdout)] == [email]
    assert list(elsewhere.iterdir()) == []


def test_an_absolute_sqlite_path_takes_four_slashes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ignored", store=f"sqlite:///{tmp_path}/abs.db")
    assert settings.sqlite_path() == tmp_path / "abs.db"


def test_firestore_without_credentials_is_one_line_within_seconds(tmp_path: Path) -> None:
    # GIVEN no Google credentials and no emulator
    done, took = cli(["--store", "firestore", "leads", "list"],
                     {"GOOGLE_CLOUD_PROJECT": "demo-project"}, tmp_path)
    # THEN one line names the fix, with no traceback (beside the command's log lines, which
    # go to stderr too: here the warning that LEADSCORE_ID_KEY is not set)
    assert done.returncode == 1
    told = "\n".join(line for line in done.stderr.strip().splitlines()
                     if not line.startswith('{"severity": '))
    assert "Traceback" not in done.stderr and told.count("\n") == 0, done.stderr
    assert "credentials" in told and "FIRESTORE_EMULATOR_HOST" in told
    assert took < 30


def test_an_emulator_address_that_does_not_answer_is_one_line_within_seconds(
        tmp_path: Path) -> None:
    # GIVEN FIRESTORE_EMULATOR_HOST pointing at a port nobody listens on
    dead = f"127.0.0.1:{free_port()}"
    done, took = cli(["--store", "firestore", "leads", "list"],
                     {"FIRESTORE_EMULATOR_HOST": dead}, tmp_path)
    # THEN it says so at once instead of retrying for minutes
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert f"FIRESTORE_EMULATOR_HOST={dead} does not answer" in done.stderr
    assert took < 20


def test_leads_list_says_when_nothing_matches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'leads.db'}"
    SqliteStore(tmp_path / "leads.db").close()  # an existing, empty database
    result = CliRunner().invoke(main, ["--store", url, "leads", "list"])
    install(None)
    assert result.exit_code == 0 and "no leads yet" in result.output
    result = CliRunner().invoke(main, ["--store", url, "leads", "list", "--stage", "sql"])
    install(None)
    assert "no leads match stage sql (0 leads in the store)" in result.output


def test_progress_bars_show_the_count_and_the_time_left() -> None:
    # GIVEN a bar over a known total, drawn on a terminal
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with Progress(*progress_columns(known_total=True), console=console) as bar:
        task = bar.add_task("rescoring", total=10)
        bar.advance(task, 3)
        bar.refresh()
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    # THEN it shows how many of how many, and an estimate of the time left
    assert "3/10" in text and "eta" in text
    # AND without a total it still counts
    out = io.StringIO()
    with Progress(*progress_columns(known_total=False),
                  console=Console(file=out, force_terminal=True, width=120)) as bar:
        task = bar.add_task("decaying", total=None)
        bar.advance(task, 7)
        bar.refresh()
    assert "7 done" in re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())


def test_every_json_time_is_iso_8601_utc_with_z() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    madrid = timezone(timedelta(hours=1))
    text = jsonfmt.dumps({"a": datetime(2026, 11, 20, 11, 0, tzinfo=madrid),
                          "b": datetime(2026, 11, 20, 10, 0, 0, 500, tzinfo=UTC)})
    assert json.loads(text) == {"a": "2026-11-20T10:00:00Z", "b": "2026-11-20T10:00:00.000500Z"}


def test_cli_and_api_answers_use_one_time_format(tmp_path: Path) -> None:
    # GIVEN a scored lead
    url = f"sqlite:///{tmp_path / 'leads.db'}"
    store = SqliteStore(tmp_path / "leads.db")
    email = "ana@example.com"
    apply_events(store, lead_id_for(email), email, [form(email, "f1", NOW, kind="webinar")],
                 default_rules(), NOW)
    store.close()
    # WHEN the CLI prints it as JSON
    result = CliRunner().invoke(main, ["--store", url, "lead", "show", email, "--json"])
    install(None)
    assert result.exit_code == 0, result.output
    # THEN every time in it is ISO 8601 with a T and a Z
    times = re.findall(r'"(\d{4}-\d\d-\d\d[ T][^"]*)"', result.output)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", t)
                         for t in times), times


@pytest.fixture
def form_app(durable_store: Any) -> Any:
    built = Container(Settings(form_max_bytes=4096), store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_browser_form_post_without_a_redirect_sees_a_thank_you_page(form_app: Any) -> None:
    client = client_for("form_submission")
    answer = client.post("/", data={"email": "ana@example.com", "form": "newsletter"},
                         headers=BROWSER)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    assert "Thank you" in answer.get_data(as_text=True)
    assert form_app.store.get_lead(lead_id_for("ana@example.com")) is not None
    # AND a script (Accept */*) still gets JSON
    answer = client.post("/", data={"email": "ben@example.com", "form": "newsletter"},
                         headers={"Accept": "*/*"})
    assert answer.status_code == 200 and answer.is_json


def test_a_browser_form_error_is_a_page_with_the_same_status(form_app: Any) -> None:
    client = client_for("form_submission")
    answer = client.post("/", data={"email": "not-an-address", "form": "newsletter"},
                         headers=BROWSER)
    assert 400 <= answer.status_code < 500 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "Please check the form" in page and "<script" not in page
    assert client.post("/", data={"email": "not-an-address"},
                       headers={"Accept": "application/json"}).is_json
