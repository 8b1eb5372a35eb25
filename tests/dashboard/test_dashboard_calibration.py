"""The calibration section: `leadscore calibrate` (the real command) saves its back-test and
the dashboard shows that one, conversion by band and the threshold table, without running
a back-test (which reads every history) on page view."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from calibration.generator import all_events, generate
from click.testing import CliRunner
from conftest import NOW
from functional.conftest import client_for

from leadscore.cli import main
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.rules import default_rules
from leadscore.service.ingest import ingest
from leadscore.store.sqlite import SqliteStore

TOKEN = "calibration-dash-token"


def _signed_in_page(store: SqliteStore) -> str:
    install(Container(Settings(dashboard_tokens=TOKEN), store=store, clock=lambda: NOW))
    try:
        client = client_for("dashboard")
        form = client.get("/dashboard/login").get_data(as_text=True)
        csrf = re.search(r"name='csrf' value='([^']+)'", form)
        assert csrf
        client.post("/dashboard/login", data={"token": TOKEN, "csrf": csrf.group(1)})
        return str(client.get("/dashboard").get_data(as_text=True))
    finally:
        install(None)


def _leads_with_outcomes(tmp_path: Path) -> tuple[Path, SqliteStore]:
    path = tmp_path / "leads.db"
    store = SqliteStore(path)
    events = all_events(generate(300, NOW - timedelta(days=90), seed=3))
    for start in range(0, len(events), 500):
        ingest(store, default_rules(), events[start:start + 500], NOW)
    return path, store


def test_the_last_back_test_is_on_the_page(tmp_path: Path) -> None:
    # GIVEN leads with known outcomes
    path, store = _leads_with_outcomes(tmp_path)
    # THEN before any back-test the page says how to get one
    assert "run <code>leadscore calibrate</code>" in _signed_in_page(store)
    # WHEN the operator runs the back-test
    result = CliRunner().invoke(main, ["--store", f"sqlite:///{path}", "calibrate", "--json",
                                       "--at", (NOW - timedelta(days=90)).isoformat(),
                                       "--bootstrap", "5"])
    install(None)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["conversions"] > 10
    # THEN the dashboard shows its conversion by band and thresholds
    html = _signed_in_page(store)
    section = html[html.index("data-calibration="):]
    current = report["results"][0]
    for band in current["stage_bands"]:
        assert f"<td>{band['label']}</td><td>{band['leads']}</td><td>{band['conversions']}" \
               "</td>" in section.replace("&lt;", "<")
    for row in current["thresholds"]:
        assert f"<td>{row['threshold']:g}</td><td>{row['volume']}</td>" in section
    assert f"{report['conversions']} converted" in section
    store.close()


def test_an_undefined_roc_auc_shows_as_a_dash_not_zero(tmp_path: Path) -> None:
    # GIVEN a back-test whose ROC AUC is undefined (every counted lead won: an audit saw the
    # page print "ROC AUC 0.000", as if the score ranked every win last)
    path, store = _leads_with_outcomes(tmp_path)
    result = CliRunner().invoke(main, ["--store", f"sqlite:///{path}", "calibrate", "--json",
                                       "--at", (NOW - timedelta(days=90)).isoformat(),
                                       "--bootstrap", "0"])
    install(None)
    report = json.loads(result.output)
    report["results"][0]["auc"] = None
    from leadscore.cli_calibrate import _save_for_the_dashboard

    _save_for_the_dashboard(store, report)
    # WHEN the dashboard shows it THEN it reads "ROC AUC -"
    section = _signed_in_page(store)
    assert "ROC AUC -." in section and "ROC AUC 0.000" not in section
    store.close()
