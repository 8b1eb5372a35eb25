"""A hanging CRM receiver never holds the provider's request (issue 21: 31.6 s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW
from functional.conftest import client_for
from functional.test_handover import HOT
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from leadscore.config import Settings
from leadscore.container import HANDOVER_WAIT_S, Container, install
from leadscore.store.memory import MemoryStore

HANG_S = 8.0


@pytest.fixture
def hanging_receiver() -> Iterator[str]:
    def app(environ: Any, start_response: Any) -> Any:
        time.sleep(HANG_S)
        return Response("late")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_a_hanging_receiver_does_not_hold_the_request(hanging_receiver: str) -> None:
    # GIVEN a receiver that answers after 8 s, and an event that makes a lead hot
    store = MemoryStore()
    install(Container(Settings(api_token="t", handover_webhook_urls=hanging_receiver,
                               handover_secret="s", handover_attempts=1),
                      store=store, clock=lambda: NOW))
    try:
        started = time.perf_counter()
        answer = client_for("ingest").post("/", json=HOT, headers={"Authorization": "Bearer t"})
        took = time.perf_counter() - started
    finally:
        install(None)
    # THEN the provider gets its answer within the budget, and the change waits in the
    # outbox for the background sweep or the scheduled job
    print(f"\nanswered in {took:.1f} s with the receiver hanging {HANG_S:.0f} s")
    assert answer.status_code == 200
    assert took < HANDOVER_WAIT_S + 2.0
    assert [c.stage_after for c in store.pending_handovers(NOW + timedelta(days=1))] == ["sql"]
