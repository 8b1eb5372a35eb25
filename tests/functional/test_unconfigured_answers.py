"""An endpoint whose credential is not set answers a stranger exactly as a configured one
answers a wrong credential: "no token is configured (LEADSCORE_API_TOKEN)" told anybody
which parts of a deployment are switched off. The operator's hint goes to the log."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import NOW

from functional.conftest import client_for
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.integrations.slack_actions import action_link

EVENT = {"type": "email.opened", "email": "ana@tiendassol.example",
         "occurred_at": "2026-11-20T10:00:00Z", "idempotency_key": "o-1"}
BASIC = "Basic " + base64.b64encode(b"wk_not_a_key:").decode()


def _slack_link() -> str:
    url = action_link("https://leads.example.com/crm_webhook/slack-action", "anybody's",
                      lead_id_for("ana@tiendassol.example"), "h_change1", "accept",
                      int((NOW + timedelta(days=7)).timestamp()))
    return "/slack-action?" + urlsplit(url).query


# (target, setting, the configured value, the request a stranger sends)
CASES: dict[str, tuple[str, str, str, Callable[[Any], Any]]] = {
    "ingest": ("ingest", "api_token", "a-real-token-123",
               lambda c: c.post("/", json=EVENT, headers={"Authorization": "Bearer guess"})),
    "leads_api": ("leads_api", "api_token", "a-real-token-123",
                  lambda c: c.get("/leads", headers={"Authorization": "Bearer guess"})),
    "track": ("track", "track_server_keys", "wk_server_real",
              lambda c: c.post("/v1/t", json={"type": "track", "event": "Demo",
                                              "anonymousId": "anon-1"},
                               headers={"Authorization": BASIC})),
    "slack_action": ("crm_webhook", "slack_action_secret", "slack-secret-31",
                     lambda c: c.post(_slack_link(), data={"reason": "x"})),
}


def _answer(durable_store: Any, target: str, settings: Settings,
            send: Callable[[Any], Any]) -> tuple[int, Any, int]:
    built = Container(settings, store=durable_store, clock=lambda: NOW)
    install(built)
    try:
        answer = send(client_for(target))
        body = answer.get_json(silent=True) or answer.get_data(as_text=True)
        return answer.status_code, body, durable_store.count_leads()
    finally:
        install(None)


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING):
        yield caplog


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unset_credential_answers_like_a_wrong_one(durable_store: Any, case: str,
                                                      warnings: pytest.LogCaptureFixture
                                                      ) -> None:
    target, setting, value, send = CASES[case]
    # GIVEN the same stranger's request to a server without the setting and to one with it
    unset = _answer(durable_store, target, Settings(), send)
    hints = [getattr(r, "fields", {}).get("setting", "") for r in warnings.records
             if "not configured" in r.getMessage()]
    configured = _answer(durable_store, target, Settings(**{setting: value}), send)
    # THEN both are refused alike, nothing is written, and only the log names the setting
    assert unset == configured and unset[0] == 401, (unset, configured)
    assert "LEADSCORE_" not in str(unset[1]) and "configured" not in str(unset[1])
    assert unset[2] == 0
    assert hints and all(h.startswith("LEADSCORE_") for h in hints)
