"""Entry points through the functions-framework's own test client, on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW

from leadscore.config import Settings
from leadscore.container import Container, install

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
TOKENS = "current-token-123,previous-token-456"
SECRETS = {"stripe": "whsec_test_5f2b9c", "shopify": "shpss_test_0c1d",
           "woocommerce": "wc-secret", "generic": "generic-secret"}


@pytest.fixture
def app_container(durable_store: Any) -> Iterator[Container]:
    settings = Settings(  # each secret behind an older one still active: rotation works
        api_token=TOKENS, ingest_max_bytes=64 * 1024,
        stripe_secret=f"whsec_old,{SECRETS['stripe']}",
        shopify_secret=f"old,{SECRETS['shopify']}",
        woocommerce_secret=f"old,{SECRETS['woocommerce']}",
        purchase_secret=f"old,{SECRETS['generic']}")
    built = Container(settings,
                      store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def client_for(target: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, str(MAIN), "http").test_client()
