"""An email tool whose removal lacks its list or group (a newcomer audit): the command says
so in one line naming the setting, and the scheduled job still syncs the other tools."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from builders import form
from click.testing import CliRunner
from conftest import NOW
from fakes.mailchimp_api import MailchimpFake

from esp.conftest import AUDIENCE, MAILCHIMP_KEY
from leadscore.cli import main
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.service.writes import apply_events

HALF_CONFIGURED = {
    "brevo": ({"LEADSCORE_BREVO_API_KEY": "xkeysib-test"}, "LEADSCORE_BREVO_NON_OPENER_LIST"),
    "sendgrid": ({"LEADSCORE_SENDGRID_API_KEY": "SG.test", "LEADSCORE_SENDGRID_REMOVAL":
                  "suppress"}, "LEADSCORE_SENDGRID_SUPPRESSION_GROUP"),
}
COMMANDS = [["setup", "{tool}"], ["resync", "{tool}"], ["cleanup", "--dry-run", "--tool", "{tool}"]]


@pytest.mark.parametrize("tool", sorted(HALF_CONFIGURED))
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_removal_without_its_list_is_one_line_naming_the_setting(
        tool: str, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a tool's key, and its removal at a mode that needs a list or group not given
    variables, missing = HALF_CONFIGURED[tool]
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEADSCORE_HOME", str(tmp_path))
    # WHEN an `esp` command is run for it
    args = [part.format(tool=tool) for part in command]
    result = CliRunner().invoke(main, ["--store", f"sqlite:///{tmp_path}/leads.db", "esp", *args])
    install(None)
    # THEN one error line names the missing setting, and no traceback
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert missing in result.stderr and "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_one_misconfigured_tool_does_not_stop_the_others(
        durable_store: Any, rules: Any, mailchimp_api: MailchimpFake,
        caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN Mailchimp configured, and Brevo's key set without the list its removal needs
    email = "reader@example.org"
    apply_events(durable_store, lead_id_for(email), email, [form(email, "f1", NOW)], rules, NOW)
    mailchimp = {"mailchimp_api_key": MAILCHIMP_KEY, "mailchimp_list_id": AUDIENCE,
                 "mailchimp_api_url": f"{mailchimp_api.url}/3.0",
                 "mailchimp_status_if_new": "subscribed"}
    Container(Settings(**mailchimp), store=durable_store, rules=rules).esp_syncs()[0].setup()
    app = Container(Settings(**mailchimp, brevo_api_key="xkeysib-test"), store=durable_store,
                    rules=rules, clock=lambda: NOW)
    # WHEN the scheduled job syncs the email tools
    with caplog.at_level(logging.INFO, logger="leadscore"):
        app.sync_esp()
    # THEN Mailchimp got the lead, and the log names Brevo's problem
    assert mailchimp_api.member(email) is not None
    problems = [r for r in caplog.records if r.getMessage() == "email tool misconfigured; "
                "not synced"]
    assert [r.fields["tool"] for r in problems] == ["brevo"]  # type: ignore[attr-defined]
    assert "LEADSCORE_BREVO_NON_OPENER_LIST" in problems[0].fields["problem"]  # type: ignore[attr-defined]
