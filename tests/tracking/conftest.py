"""The `track` function on a real store: write keys, origins and a fixed clock."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW

from leadscore.config import Settings
from leadscore.container import Container, install

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
SERVER_KEY = "srv_live_8f2c41d0"
CLIENT_KEY = "pub_3b9e77"
ORIGIN = "https://www.example-shop.com"


def track_settings(**extra: Any) -> Settings:
    return Settings(track_server_keys=f"srv_old_1,{SERVER_KEY}", track_client_keys=CLIENT_KEY,
                    track_allowed_origins=f"{ORIGIN},https://staging.example-shop.com",
                    **extra)


@pytest.fixture
def track_app(durable_store: Any) -> Iterator[Container]:
    built = Container(track_settings(), store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def client_for(target: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, str(MAIN), "http").test_client()


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
