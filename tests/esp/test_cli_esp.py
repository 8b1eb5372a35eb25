"""`leadscore esp setup | resync | cleanup` against the Mailchimp fake, on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from builders import event, form
from click.testing import CliRunner, Result
from conftest import NOW
from fakes.mailchimp_api import MailchimpFake

from esp.conftest import AUDIENCE, MAILCHIMP_KEY
from leadscore.cli import main
from leadscore.container import install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.service.decay import run_decay
from leadscore.service.writes import apply_events
from leadscore.store.sqlite import SqliteStore

QUIET = "quiet@example.org"


@pytest.fixture
def store_url(tmp_path: Path, mailchimp_api: MailchimpFake,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """Three readers: two recent, one mailed 200 days ago who never opened (flagged)."""
    store, rules = SqliteStore(tmp_path / "leads.db"), default_rules()
    for email, at in (("a@example.org", NOW), ("b@example.org", NOW),
                      (QUIET, NOW - timedelta(days=200))):
        apply_events(store, lead_id_for(email), email, [
            form(email, f"f-{email}", at),
            event("email_delivered", email, f"d-{email}", at, source="esp")], default_rules(), at)
    run_decay(store, rules, NOW)
    store.close()
    monkeypatch.setenv("LEADSCORE_MAILCHIMP_API_KEY", MAILCHIMP_KEY)
    monkeypatch.setenv("LEADSCORE_MAILCHIMP_LIST_ID", AUDIENCE)
    monkeypatch.setenv("LEADSCORE_MAILCHIMP_API_URL", f"{mailchimp_api.url}/3.0")
    monkeypatch.setenv("LEADSCORE_ESP_ATTEMPTS", "1")
    return f"sqlite:///{tmp_path / 'leads.db'}"


def run(store_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--store", store_url, "esp", *args])
    install(None)
    return result


def test_setup_then_resync_sends_every_lead_once(store_url: str,
                                                 mailchimp_api: MailchimpFake) -> None:
    assert "created  LS_SCORE" in run(store_url, "setup", "mailchimp").output
    assert "exists   LS_SCORE" in run(store_url, "setup", "mailchimp").output
    first = run(store_url, "resync", "mailchimp")
    assert first.exit_code == 0, first.output
    assert "examined 3, sent 3" in first.output
    assert "examined 3, sent 0" in run(store_url, "resync", "mailchimp").output
    assert "examined 3, sent 3" in run(store_url, "resync", "mailchimp", "--force").output
    assert len(mailchimp_api.active()) == 3


def test_a_resync_that_the_tool_stops_says_how_to_resume(store_url: str,
                                                         mailchimp_api: MailchimpFake) -> None:
    run(store_url, "setup", "mailchimp")
    mailchimp_api.fail_next(503, {"title": "Service Unavailable", "status": 503})
    stopped = run(store_url, "resync", "mailchimp", "--page", "1")
    assert stopped.exit_code == 1 and "resume with `leadscore esp resync mailchimp" in (
        stopped.output)
    assert "examined 3, sent 3" in run(store_url, "resync", "mailchimp").output


def test_cleanup_dry_run_counts_without_emails_then_removes(
        store_url: str, mailchimp_api: MailchimpFake) -> None:
    run(store_url, "setup", "mailchimp")
    dry = run(store_url, "cleanup", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "mailchimp: 1 non-openers would be removed (tag)" in dry.output
    assert "@" not in dry.output
    assert QUIET in run(store_url, "cleanup", "--dry-run", "--show-emails").output
    assert mailchimp_api.members == {}  # a dry run sends nothing
    done = run(store_url, "cleanup")
    assert "mailchimp: removed 1" in done.output
    member = mailchimp_api.member(QUIET)
    assert member is not None and "leadscore-non-opener" in member["tags"]
    assert "0 non-openers would be removed" in run(store_url, "cleanup", "--dry-run").output


def test_an_unconfigured_tool_names_its_settings(store_url: str) -> None:
    result = run(store_url, "setup", "brevo")
    assert result.exit_code == 1 and "LEADSCORE_BREVO_API_KEY" in result.output
