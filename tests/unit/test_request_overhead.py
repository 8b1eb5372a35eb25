"""Per-request work outside the domain (issue 20, helper `server`): the shortcuts taken on
every request answer exactly what the long way answers.

- `Container.handover_configured` (asked by every request that changes a stage) agrees with
  building the sinks and counting them, for every kind of sink and for none;
- a log line made without `Logger.log`'s stack walk still leaves out disabled levels, still
  replaces addresses in the message and in fields, and still reaches other handlers;
- the one JSON encoder kept for answers writes what `json.dumps` with the same `default` does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import unquote

import pytest
from pydantic import SecretStr

from leadscore import jsonfmt, logs
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.store.memory import MemoryStore

SINK_SETTINGS = [
    {},
    {"handover_topic": "handovers"},
    {"handover_webhook_urls": "https://crm.example/hook"},
    {"handover_webhook_urls": " , ,"},
    {"handover_webhook_urls": "https://a.example/h, ,https://b.example/h"},
    {"slack_webhook_url": SecretStr("https://hooks.slack.example/T/B/x")},
    {"handover_topic": "t", "slack_webhook_url": SecretStr("https://hooks.slack.example/x")},
]


@pytest.mark.parametrize("values", SINK_SETTINGS)
def test_handover_configured_agrees_with_the_sinks_it_would_build(
        values: dict[str, object]) -> None:
    # GIVEN a container whose settings name these handover targets (or none)
    app = Container(Settings(store="memory", **values), store=MemoryStore())
    # WHEN it is asked whether a handover has anywhere to go
    configured = app.handover_configured()
    # THEN the answer is the one building every sink and counting them gives
    assert configured == bool(app.handover_sinks())


@pytest.fixture
def other_handler() -> Iterator[list[logging.LogRecord]]:
    """What another handler on the leadscore logger receives."""
    logs.configure("INFO")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logging.getLogger(logs.LOGGER_NAME).addHandler(keep)
    yield records
    logging.getLogger(logs.LOGGER_NAME).removeHandler(keep)


def test_a_log_line_hides_addresses_and_respects_the_level(
        other_handler: list[logging.LogRecord], capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the INFO level, WHEN a debug line and an info line naming an address are logged
    logs.log(logging.DEBUG, "not shown", lead="ana@example.com")
    logs.info("seen ana@example.com", contact={"email": "Ana.Perez@Example.org"}, n=3)
    # THEN only the info line is written, as JSON, with lead ids in place of addresses
    written = capsys.readouterr().out
    lines = [json.loads(line) for line in written.splitlines()]
    assert [line["message"].split()[0] for line in lines] == ["seen"]
    assert "@" not in written and lines[0]["n"] == 3
    assert lines[0]["severity"] == "INFO" and lines[0]["logger"] == "leadscore"
    # AND other handlers (a test's capture, Cloud Logging's) receive the same one record
    assert [r.getMessage() for r in other_handler] == ["seen ana@example.com"]
    assert other_handler[0].levelno == logging.INFO


@pytest.mark.parametrize("written", [
    "ana.secret@example.com",
    "/leads_api/leads/ana.secret%40example.com",  # encodeURIComponent's path
    "/leads_api/leads/ana%2Bsecret%40example.com",
    "josé.secret@example.com", "ana.secret@exämple.com",
    "/leads_api/leads/jos%C3%A9.secret@example.com",
])
def test_an_address_in_any_spelling_becomes_its_lead_id(written: str) -> None:
    # GIVEN an address as text, encoded in a path, or with letters outside ASCII
    # WHEN a log line or the access log carries it
    line = logs.scrub(f'127.0.0.1 "GET {written} HTTP/1.1" 404')
    # THEN nothing of it is readable, and the lead id is the decoded address's
    assert "secret" not in line and "example" not in line and "xämple" not in line
    assert lead_id_for(unquote(written.rsplit("/", 1)[-1])) in line


def test_the_kept_encoder_writes_what_json_dumps_writes() -> None:
    # GIVEN a body with times, a date, nested lists and text outside ASCII
    body = {"at": datetime(2026, 11, 22, 10, 0, tzinfo=UTC), "day": datetime(2026, 1, 2).date(),
            "list": [1, 2.5, None, True], "name": "Zoë", "other": Decimal("12.50")}
    # WHEN it is encoded the quick way and the long way
    # THEN both texts are the same
    assert jsonfmt.dumps(body) == json.dumps(body, default=jsonfmt.default)
    # AND options (which bypass the kept encoder) still apply
    assert jsonfmt.dumps(body, indent=2).startswith('{\n  "at": "2026-11-22T10:00:00Z"')
