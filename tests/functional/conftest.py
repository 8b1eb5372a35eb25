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


@pytest.fixture
def app_container(durable_store: Any) -> Iterator[Container]:
    built = Container(Settings(api_token=TOKENS, ingest_max_bytes=64 * 1024),
                      store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def client_for(target: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, str(MAIN), "http").test_client()
