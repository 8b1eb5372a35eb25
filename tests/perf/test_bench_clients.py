"""The benchmarks' two HTTP clients (bench/clients.py) send every planned request exactly
once, with its method, headers and body, and fail loudly on a response outside 2xx: issue
20's rates divide the planned count by the elapsed time, so a lost or repeated request would
be a wrong rate, not a slow one. wrk is Debian's package (`make test` installs it)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from bench.clients import CLIENTS, Client, Planned
from bench.harness import local_server


class Recorder:
    """A WSGI app that remembers each request and answers 500 to bodies saying so."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str, str, bytes]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self._lock:
            self.seen[(environ["REQUEST_METHOD"], environ["PATH_INFO"],
                       environ.get("HTTP_X_PLAN", ""), body)] += 1
        status = "500 Internal Server Error" if body == b"fail" else "200 OK"
        start(status, [("Content-Type", "application/json")])
        return [b'{"status": "ok"}']


def planned(count: int) -> list[Planned]:
    return [Planned("/ingest" if i % 2 else "/", "POST" if i % 2 else "GET",
                    {"X-Plan": f"p{i}", "Content-Type": "application/json"},
                    json.dumps({"n": i, "text": "line\nbreak é"}).encode() if i % 2 else b"")
            for i in range(count)]


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_every_planned_request_arrives_exactly_once(name: str) -> None:
    # GIVEN 101 distinct requests (GETs without a body, POSTs whose JSON has a line break)
    plan, recorder = planned(101), Recorder()
    client: Client = CLIENTS[name]
    # WHEN the client sends them over 8 connections
    with local_server(recorder) as base:
        driven = client(base, plan, 8)
    # THEN the server saw each one once, as planned, and the client counted all of them
    expected = Counter((r.method, r.path, r.headers["X-Plan"], r.body) for r in plan)
    assert recorder.seen == expected
    assert driven.requests == 101
    assert driven.rate > 0 and 0 < driven.p50_ms <= driven.p99_ms


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_a_response_outside_2xx_fails_the_run(name: str) -> None:
    # GIVEN a plan with one request the server answers 500
    plan = [*planned(10), Planned("/x", "POST", {"X-Plan": "bad"}, b"fail")]
    # WHEN it is driven THEN the run fails instead of reporting a rate
    with local_server(Recorder()) as base, pytest.raises(Exception, match="500"):
        CLIENTS[name](base, plan, 4)
