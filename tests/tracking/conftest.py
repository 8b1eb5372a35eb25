"""The `track` function on a real store: write keys, origins and a fixed clock."""

from __future__ import annotations

import base64
import threading
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
    values: dict[str, Any] = {
        "track_server_keys": f"srv_old_1,{SERVER_KEY}", "track_client_keys": CLIENT_KEY,
        "track_allowed_origins": f"{ORIGIN},https://staging.example-shop.com", **extra}
    return Settings(**values)


@pytest.fixture(autouse=True)
def plain_reading_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message these tests send is read by marshmallow's wire schema too: the plain
    reading that spares `track` marshmallow's import (leadscore.tracking.message) must give
    the schema's dict or step aside, so the whole suite checks it, not only its own tests."""
    from leadscore.tracking import message
    from leadscore.tracking.wire import MESSAGE

    plain = message.load_plain

    def checked(data: dict[str, Any]) -> dict[str, Any] | None:
        read = plain(data)
        if read is not None:
            assert read == MESSAGE.load(data), data
        return read

    monkeypatch.setattr(message, "load_plain", checked)


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


class LoseResponses:
    """A WSGI middleware that serves the chosen requests fully (their writes happen), then
    answers 503 as if the response were lost on the way: the client must retry."""

    def __init__(self, app: Any) -> None:
        self.app, self.lose, self.seen = app, set[int](), 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.seen += 1
            number = self.seen
        if number not in self.lose:
            return self.app(environ, start_response)
        for _ in self.app(environ, lambda *args, **kwargs: None):
            pass
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"error": "temporarily_unavailable"}']


@pytest.fixture
def live_server(durable_store: Any) -> Iterator[dict[str, Any]]:
    """`leadscore serve`'s app on a real local port, in a thread, on a real store."""
    from werkzeug.serving import make_server

    from leadscore.server import build_app

    built = Container(track_settings(form_allowed_origins="*"), store=durable_store)
    install(built)
    lossy = LoseResponses(build_app())
    server = make_server("127.0.0.1", 0, lossy, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}", "app": built, "lossy": lossy}
    finally:
        server.shutdown()
        thread.join(timeout=10)
        install(None)
