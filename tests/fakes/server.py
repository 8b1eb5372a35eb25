"""A werkzeug app on 127.0.0.1 with a free port, in a thread: the shared base of the fakes."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class FakeApi:
    """Subclasses answer in `handle`; tests queue forced answers with `fail_next`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forced: deque[tuple[int, Any, dict[str, str]]] = deque()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.url = ""

    def fail_next(self, status: int, body: Any = "", headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        for _ in range(times):
            self.forced.append((status, body, headers or {}))

    @staticmethod
    def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        if isinstance(body, str | bytes):
            return Response(body, status=status, headers=headers, mimetype="text/plain")
        return Response(json.dumps(body), status=status, headers=headers,
                        mimetype="application/json")

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.requests.append((request.method, request.path))
            forced = self.forced.popleft() if self.forced else None
            response = self.answer(*forced) if forced else self.handle(request)
        return response(environ, start_response)


class _NoDelayHandler(WSGIRequestHandler):
    """Answers leave at once: werkzeug writes the headers and the body separately, and
    with Nagle's algorithm against the client's delayed ACK each answer would wait ~40 ms
    (a year of email-tool syncs makes many calls)."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextmanager
def serving(app: FakeApi) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_NoDelayHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield app.url
    finally:
        server.shutdown()
        thread.join(5)
