"""The provider registry: entry points name no provider, a new provider needs only the
registry, and /healthz and `leadscore providers` say which providers are configured."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import NOW

from functional.conftest import MAIN, SECRETS, client_for
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.canonical import verify_bearer
from leadscore.providers.email_events import canonical
from leadscore.providers.registry import REGISTRY
from leadscore.providers.wire import parse_json

FUNCTIONS = Path(MAIN).parent


@pytest.mark.parametrize("module", ["email_webhook.py", "purchase_webhook.py"])
def test_webhook_entry_points_name_no_provider(module: str) -> None:
    # GIVEN the source of an entry point and every registered provider's name and module
    source = (FUNCTIONS / module).read_text().lower()
    names = {p.name for p in REGISTRY} | {type(p).__module__.rsplit(".", 1)[1]
                                          for p in REGISTRY}
    # THEN none of them appears in it
    assert len(names) >= 12
    assert [n for n in names if re.search(rf"\b{re.escape(n.lower())}\b", source)] == []


class AcmeMail(WebhookProvider):
    """A throw-away ESP: bearer token, JSON `{"email", "opened_at", "id"}`."""

    name, function, path = "acme-mail", "email_webhook", "/acme-mail"
    settings = ("api_token",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify_bearer(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        body = parse_json(request.raw)
        return ParseResult(events=[canonical(
            "body", "email_opened", body["email"], self.name, body["id"],
            datetime.fromisoformat(body["opened_at"]))])


@pytest.fixture
def acme() -> Iterator[AcmeMail]:
    provider = AcmeMail()
    REGISTRY.add(provider)  # the only registration: no entry point is edited
    yield provider
    REGISTRY.remove(provider.function, provider.path)


def test_a_provider_added_through_the_registry_alone_is_served_end_to_end(
        acme: AcmeMail, app_container: Container) -> None:
    client = client_for("email_webhook")
    body = json.dumps({"email": "new.esp@example.org", "id": "acme-1",
                       "opened_at": NOW.isoformat()}).encode()
    # WHEN the new ESP posts an open, first unsigned, then with a valid token
    refused = client.post("/acme-mail", data=body, content_type="application/json")
    answer = client.post("/acme-mail", data=body, content_type="application/json",
                         headers={"Authorization": "Bearer current-token-123"})
    # THEN the unsigned one is refused and the signed one lands on the lead in the store
    assert refused.status_code == 401
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1, answer.get_json()
    lead = app_container.store.get_lead(lead_id_for("new.esp@example.org"))
    assert lead is not None and lead.counters == {"email_opened": 1}
    # AND an unknown path names the known ones, the new one among them
    missing = client.post("/hotmail", data=b"{}", content_type="application/json")
    assert missing.status_code == 404 and "acme-mail" in missing.get_json()["message"]


def test_after_removal_the_provider_is_gone(app_container: Container) -> None:
    assert REGISTRY.lookup("email_webhook", "/acme-mail") is None
    answer = client_for("email_webhook").post("/acme-mail", data=b"{}",
                                              content_type="application/json")
    assert answer.status_code == 404


def test_a_get_to_a_provider_that_only_posts_is_a_404(app_container: Container) -> None:
    answer = client_for("email_webhook").get("/sendgrid")
    assert answer.status_code == 404 and "only POSTs" in answer.get_json()["message"]


def test_every_registry_line_loads_the_provider_it_names() -> None:
    providers = list(REGISTRY)
    assert len({(p.function, p.path) for p in providers}) == len(providers) >= 12
    for provider in providers:
        assert provider.settings, provider
        assert all(name in Settings.model_fields for name in provider.settings), provider


def test_healthz_lists_providers_and_whether_configured_never_a_secret(
        app_container: Container) -> None:
    from werkzeug.test import Client

    from leadscore.server import build_app

    body = Client(build_app(MAIN)).get("/healthz").get_json()
    listed = {p["name"]: p for p in body["providers"]}
    assert listed["stripe"] == {"name": "stripe", "function": "purchase_webhook",
                                "path": "/stripe", "settings": ["LEADSCORE_STRIPE_SECRET"],
                                "configured": True}
    assert listed["typeform"]["configured"] is False
    text = json.dumps(body)
    assert not [s for s in SECRETS.values() if s in text]


def test_cli_lists_providers_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.cli import main

    monkeypatch.setenv("LEADSCORE_STRIPE_SECRET", "whsec_do_not_print_me")
    monkeypatch.delenv("LEADSCORE_SHOPIFY_SECRET", raising=False)
    try:
        result = CliRunner().invoke(main, ["--store", "memory", "providers", "--json"])
        table = CliRunner().invoke(main, ["--store", "memory", "providers"])
    finally:
        install(None)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    by_name = {r["name"]: r for r in rows}
    assert by_name["stripe"]["configured"] and not by_name["shopify"]["configured"]
    assert "whsec_do_not_print_me" not in result.output + table.output
    assert "LEADSCORE_SHOPIFY_SECRET" in table.output


def test_importing_the_webhook_functions_imports_no_provider_module() -> None:
    # GIVEN a fresh interpreter (cold start) that imports every HTTP entry point
    import subprocess
    import sys

    code = ("import sys, email_webhook, purchase_webhook, form_submission, leads_api\n"
            "print(sorted(m for m in sys.modules if m in ('cryptography', 'boto3') or "
            "m.split('.')[-1] in ('sendgrid', 'ses', 'stripe', 'mailgun', 'shopify')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=FUNCTIONS, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    # THEN no provider module and no heavy library was loaded: the first request loads one
    assert out.strip() == "[]"
