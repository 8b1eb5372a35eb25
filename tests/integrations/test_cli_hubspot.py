"""`leadscore hubspot setup | sync` against the HubSpot fake, on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import form
from click.testing import CliRunner, Result
from conftest import NOW
from fakes.hubspot_api import HubSpotFake

from integrations.conftest import HUBSPOT_TOKEN
from leadscore.cli import main
from leadscore.container import install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.service.writes import apply_events
from leadscore.store.sqlite import SqliteStore

READERS = ("a@example.org", "b@example.org", "c@example.org")


@pytest.fixture
def store_url(tmp_path: Path, hubspot_api: HubSpotFake, monkeypatch: pytest.MonkeyPatch) -> str:
    store = SqliteStore(tmp_path / "leads.db")
    for email in READERS:
        apply_events(store, lead_id_for(email), email, [form(email, f"f-{email}", NOW)],
                     default_rules(), NOW)
    store.close()
    monkeypatch.setenv("LEADSCORE_HOME", str(tmp_path))
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", HUBSPOT_TOKEN)
    monkeypatch.setenv("LEADSCORE_HUBSPOT_API_URL", hubspot_api.url)
    monkeypatch.setenv("LEADSCORE_HUBSPOT_ATTEMPTS", "1")
    return f"sqlite:///{tmp_path / 'leads.db'}"


def run(store_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--store", store_url, "hubspot", *args])
    install(None)
    return result


def test_setup_then_sync_sends_every_lead_once(store_url: str,
                                               hubspot_api: HubSpotFake) -> None:
    assert "created  leadscore_score" in run(store_url, "setup").output
    first = run(store_url, "sync")
    assert first.exit_code == 0, first.output
    assert "examined 3, sent 3" in first.output
    assert "examined 3, sent 0" in run(store_url, "sync").output
    assert "examined 3, sent 3" in run(store_url, "sync", "--force").output
    assert sorted(hubspot_api.contacts) == sorted(READERS)


def test_a_sync_hubspot_stops_says_how_to_resume(store_url: str,
                                                 hubspot_api: HubSpotFake) -> None:
    run(store_url, "setup")
    hubspot_api.fail_next(502, {"status": "error", "message": "Bad gateway"})
    stopped = run(store_url, "sync", "--page", "1")
    assert stopped.exit_code == 1, stopped.output
    assert "stopped: hubspot upsert: 502; resume with `leadscore hubspot sync" in stopped.output
    assert "examined 3, sent 3" in run(store_url, "sync").output
    assert set(hubspot_api.stored.values()) == {1}


def test_lead_erase_deletes_the_hubspot_contact_too(store_url: str,
                                                    hubspot_api: HubSpotFake) -> None:
    # GIVEN three leads synced to HubSpot
    run(store_url, "setup")
    assert "sent 3" in run(store_url, "sync").output
    # WHEN one is erased from the command line
    erased = CliRunner().invoke(main, ["--store", store_url, "lead", "erase", READERS[0],
                                       "--yes"])
    install(None)
    # THEN its HubSpot contact is gone, and only that one
    assert erased.exit_code == 0, erased.output
    assert hubspot_api.gdpr_deleted == [READERS[0]]
    assert sorted(hubspot_api.contacts) == sorted(READERS[1:])
