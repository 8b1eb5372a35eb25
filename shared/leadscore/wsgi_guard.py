"""A WSGI guard that refuses oversized bodies before anything reads them.

The functions-framework reads the whole request after every response (`read_request`, an
`after_request` hook that calls `get_data()`, so that early answers do not break
connections): a 413 from the handler alone still pulls 30 MiB into memory. This guard sits
in front of the Flask app, so:

- a declared `Content-Length` over the function's limit is answered 413 at once, with
  `Connection: close`, and nothing reads the body;
- a body without a length (chunked) is wrapped in a reader that stops after limit + 1
  bytes: the handler sees "too big" (413) and the framework's drain reads no further.

`functions/main.py` installs it on the app the framework is building (`install()`, one
line), so it protects each deployed function and every mount of `leadscore serve` alike.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any

MIB = 1024 * 1024
DIGITS = re.compile(r"[0-9]{1,18}")  # a length longer than this is too big anyway
SMALL = 64 * 1024  # functions without a body setting of their own (the leads API)
TRACK_BATCH_BYTES = 500 * 1024  # Segment's batch limit (tracking/wire.py; not imported here:
#                                 this module is on every function's cold-start path)


def limit_for(function: str) -> int:
    """The function's body limit from the settings (read lazily, at the first request)."""
    from leadscore.container import container

    settings = container().settings
    return {
        "ingest": settings.ingest_max_bytes,
        "purchase_webhook": settings.purchase_max_bytes,
        "email_webhook": settings.email_max_bytes,
        "form_submission": settings.form_max_bytes,
        "inactivity_decay": MIB,
        "crm_webhook": MIB,
        "track": TRACK_BATCH_BYTES,
    }.get(function, SMALL)


class CappedInput:
    """`wsgi.input` that ends after `cap` bytes, whatever the client still sends."""

    def __init__(self, stream: Any, cap: int) -> None:
        self._stream, self._left = stream, cap

    def read(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data: bytes = self._stream.read(want)
        self._left -= len(data)
        return data

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    def readline(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data: bytes = self._stream.readline(want)
        self._left -= len(data)
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class BodyGuard:
    """WSGI middleware: 413 before reading, or reading capped (see the module docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: Callable[[], int]) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        limit = self.limit()
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if declared:
            if not DIGITS.fullmatch(declared):
                return _refuse(start_response, 400 if not declared.isascii()
                               or not declared.isdigit() else 413, declared, limit)
            if int(declared) > limit:
                _stop_reading(environ)
                return _refuse(start_response, 413, declared, limit)
            return self.app(environ, start_response)
        capped = CappedInput(environ["wsgi.input"], limit + 1)  # chunked or unknown length
        environ["wsgi.input"] = capped
        answer = self.app(environ, start_response)
        if capped.exhausted:  # refused for its size: the rest stays unread
            _stop_reading(environ)
        return answer


def _stop_reading(environ: dict[str, Any]) -> None:
    """Tell a local werkzeug server not to drain the body (it reads it 10 MB at a time to
    show the client its 413); gunicorn, which deployed functions run on, closes instead."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass


def _refuse(start_response: Any, status: int, declared: str, limit: int) -> list[bytes]:
    if status == 413:
        body = {"error": "payload_too_large",
                "message": f"body of {declared[:20]} bytes exceeds the limit of {limit} bytes"}
        line = "413 Request Entity Too Large"
    else:
        body = {"error": "bad_request", "message": "Content-Length is not a number"}
        line = "400 Bad Request"
    data = json.dumps(body).encode()
    start_response(line, [("Content-Type", "application/json"),
                          ("Content-Length", str(len(data))), ("Connection", "close")])
    return [data]


def install() -> None:
    """Put the guard in front of the Flask app the functions-framework is building.

    Called from functions/main.py, which the framework executes inside that app's context;
    outside one (a plain import) it does nothing."""
    import flask

    if not flask.has_app_context():
        return
    if os.environ.get("LOG_EXECUTION_ID"):  # the framework has just configured logging
        from leadscore import logs

        logs.after_framework_logging()
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    name = app.name
    if not isinstance(app.wsgi_app, BodyGuard):
        app.wsgi_app = BodyGuard(app.wsgi_app, lambda: limit_for(name))
