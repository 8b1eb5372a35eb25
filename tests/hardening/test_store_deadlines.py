"""Firestore down (issue 21: requests hung 60-90 s): every call has a short deadline, so a
request fails within seconds with one clear 503 + Retry-After, and the CLI says so in one
line. Tested against real unreachable endpoints: a TCP server that accepts connections and
never answers (a hung or black-holed Firestore), and a port that stopped listening after the
client was built (Firestore went away mid-life). No mocked SDK: the real client's gRPC calls.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import event_json
from functional.conftest import client_for
from functional.test_local_rough_edges import cli
from werkzeug.test import Client

from hardening.figures import record
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.errors import StoreUnavailable
from leadscore.server import build_app
from leadscore.store.port import LeadSnapshot, LeadWrite

DEADLINE_S = 1.5
SLACK_S = 2.5  # the process's own work and a rollback after a failed commit


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts every connection and never sends a byte (the HTTP/2 preface goes unanswered)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _firestore_app(host: str, monkeypatch: pytest.MonkeyPatch) -> Container:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)  # the client reads it itself
    app = Container(Settings(store="firestore", firestore_emulator_host=host,
                             google_cloud_project="deadline-test", api_token="t",
                             firestore_deadline_s=DEADLINE_S))
    install(app)
    return app


def _timed_post(function: str, json: object, **headers: str) -> tuple[Any, float]:
    started = time.monotonic()
    answer = client_for(function).post("/", json=json, headers=headers)
    return answer, time.monotonic() - started


def test_a_form_post_fails_within_the_deadline_when_firestore_never_answers(
        silent_server: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN Firestore at an address that accepts connections and never answers
    _firestore_app(silent_server, monkeypatch)
    try:
        # WHEN a form is posted
        answer, took = _timed_post("form_submission",
                                   {"email": "down@example.com", "form": "contact"})
        health = Client(build_app()).get("/healthz")
    finally:
        install(None)
    record("form post with Firestore not answering",
           f"{took:.1f} s (deadline {DEADLINE_S} s; the client's defaults: 60-90 s)")
    # THEN one clear 503 with Retry-After, within the deadline, and no traceback logged
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"]
    assert answer.get_json()["error"] == "store_unavailable"
    assert took < DEADLINE_S + SLACK_S
    assert "Traceback" not in caplog.text
    assert health.status_code == 503


def test_a_transaction_fails_within_the_deadline_as_store_unavailable(
        silent_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the same silent Firestore, and the transactional path (begin, read, commit)
    store = _firestore_app(silent_server, monkeypatch).store
    install(None)

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, None]:
        return None, None

    # WHEN a transaction runs
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="did not answer within"):
        store.transact("l_x", ["e_1"], plan)
    # THEN it gives up within the deadline (the begin never answered)
    assert time.monotonic() - started < DEADLINE_S + SLACK_S


def test_firestore_going_away_after_start_is_a_503_within_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a client built while Firestore listened, which then stopped (refused connections)
    listener = socket.create_server(("127.0.0.1", 0))
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    app = _firestore_app(host, monkeypatch)
    assert app.store is not None
    listener.close()
    try:
        # WHEN events arrive
        answer, took = _timed_post("ingest", event_json("ingest_demo_request_and_opens.json"),
                                   Authorization="Bearer t")
    finally:
        install(None)
    # THEN the client's retries stop at the deadline and the answer is 503, not a hang
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"]
    assert took < DEADLINE_S + SLACK_S


def test_the_cli_says_firestore_did_not_answer_in_one_line(
        silent_server: str, tmp_path: Path) -> None:
    # WHEN an operator lists leads while Firestore never answers
    done, took = cli(["--store", "firestore", "leads", "list"],
                     {"FIRESTORE_EMULATOR_HOST": silent_server,
                      "GOOGLE_CLOUD_PROJECT": "deadline-test",
                      "LEADSCORE_FIRESTORE_DEADLINE_S": str(DEADLINE_S)}, tmp_path)
    # THEN one line, no traceback, within seconds
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "did not answer within 1.5 s" in done.stderr
    assert took < DEADLINE_S + 10  # the interpreter and the client's imports
