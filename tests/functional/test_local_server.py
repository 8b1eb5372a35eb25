"""`leadscore serve` over real HTTP, then the CLI reads what it stored (as a user would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import event_json
from emulator import free_port, wait_until_serving

BIN = Path(sys.executable).parent / "leadscore"
TOKEN = "serve-test-token"


def run_cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "--store", store, *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    # HOME is this test's folder, so the default data folder is ~/.local/share/leadscore here
    env = {**os.environ, "LEADSCORE_API_TOKEN": TOKEN, "HOME": str(folder)}
    env.pop("LEADSCORE_STORE", None)
    env.pop("LEADSCORE_HOME", None)
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        # the default store is leads.db in the user's data folder (LEADSCORE_HOME's default)
        yield {"base": base, "store": f"sqlite:///{folder}/.local/share/leadscore/leads.db",
               "process": process}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_health_names_the_store_and_functions(server: dict[str, Any]) -> None:
    body = requests.get(f"{server['base']}/healthz", timeout=5).json()
    assert body["status"] == "ok" and body["store"] == "sqlite" and "ingest" in body["functions"]


def test_an_ingested_event_shows_up_in_lead_show(server: dict[str, Any]) -> None:
    # GIVEN a running local server on the embedded store
    # WHEN events are posted to /ingest over HTTP
    answer = requests.post(f"{server['base']}/ingest", timeout=10,
                           json=event_json("ingest_demo_request_and_opens.json"),
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    # THEN `leadscore lead show EMAIL --json` shows the lead, its score and its history
    shown = run_cli("lead", "show", "Maria.Lopez@acme-analytics.io", "--json",
                    store=server["store"])
    assert shown.returncode == 0, shown.stderr
    lead = json.loads(shown.stdout)
    for key in ("lead_id", "email", "score", "fit_score", "engagement_score", "stage", "grade",
                "email_status", "non_opener", "last_open_at", "last_activity_at", "purchases",
                "history"):
        assert key in lead
    assert lead["email"] == "maria.lopez@acme-analytics.io" and lead["stage"] == "sql"
    assert lead["score"] == pytest.approx(lead["fit_score"] + lead["engagement_score"], abs=0.02)
    assert set(lead["purchases"]) >= {"count", "total_minor", "currency"}
    assert len(lead["history"]) == 6
    assert set(lead["history"][0]) >= {"at", "event_id", "kind", "delta", "reason",
                                       "rules_version"}
    # AND the table view and the list show it too
    table = run_cli("lead", "show", "maria.lopez@acme-analytics.io", store=server["store"])
    assert "demo_request" in table.stdout
    listed = json.loads(run_cli("leads", "list", "--stage", "sql", "--json",
                                store=server["store"]).stdout)
    assert [row["email"] for row in listed] == ["maria.lopez@acme-analytics.io"]


def test_an_unknown_email_exits_non_zero_with_one_line(server: dict[str, Any]) -> None:
    shown = run_cli("lead", "show", "nobody@example.com", "--json", store=server["store"])
    assert shown.returncode == 1
    assert shown.stderr.strip() == "error: no lead with that email or id"


def test_unknown_paths_get_a_json_404(server: dict[str, Any]) -> None:
    answer = requests.post(f"{server['base']}/nope", timeout=5)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_a_plain_form_post_over_http_creates_the_lead(server: dict[str, Any]) -> None:
    # GIVEN the HTML form of the README, posted by a real HTTP client
    answer = requests.post(f"{server['base']}/form_submission", timeout=10, data={
        "form": "newsletter", "email": "reader@example.org", "nombre": "Lee",
        "_gotcha": ""}, headers={"Accept": "application/json"})
    # THEN it is acknowledged and the lead exists with the mapped profile
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    shown = json.loads(run_cli("lead", "show", "reader@example.org", "--json",
                               store=server["store"]).stdout)
    assert shown["profile"] == {"first_name": "Lee"}
    assert shown["history"][0]["kind"] == "form_submitted"


def test_the_access_log_never_shows_an_address(server: dict[str, Any]) -> None:
    requests.get(f"{server['base']}/leads_api/leads/secret.person@example.org", timeout=5)
    # as a browser's encodeURIComponent sends it, and with a letter outside ASCII
    requests.get(f"{server['base']}/leads_api/leads/secret.other%40example.org", timeout=5)
    requests.get(f"{server['base']}/leads_api/leads/jos%C3%A9.secret@example.org", timeout=5)
    # a plain HTML form without `method` submits by GET: names in the query (an audit saw
    # them printed in clear)
    requests.get(f"{server['base']}/form_submission?form=newsletter&email=jane%40victim"
                 ".example&first_name=Janette&last_name=Quuxley", timeout=5)
    time.sleep(0.3)
    log = server["process"].stdout
    assert log is not None
    server["process"].terminate()
    output = log.read()
    assert "/leads_api/leads/" in output and "secret" not in output
    assert "/form_submission" in output and "Janette" not in output and "Quuxley" not in output
