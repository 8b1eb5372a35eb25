"""HTTP plumbing shared by every entry point: body limits, JSON answers, error mapping.

This is the one place where errors become status codes (`STATUS`). Our own errors map to their
status with a JSON body naming the problem; anything unexpected is logged with its trace
and answered 500 without one, so the sender retries and the caller learns nothing inside.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Collection
from typing import Any, TypeAlias

from flask import Request, Response

from leadscore import jsonfmt, logs, pages
from leadscore.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    LeadscoreError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RulesError,
    StoreUnavailable,
    TransientError,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    named_mimetype,
)

Handler: TypeAlias = Callable[[Request], Response]
READ_PIECE = 64 * 1024

# The one table from error classes to HTTP statuses. A subclass not listed here takes its
# nearest listed ancestor's status; 4xx tell a sender not to retry, 5xx that it should.
STATUS: dict[type[LeadscoreError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    RulesError: 500,
    ConfigError: 500,
    TransientError: 503,
    LeadscoreError: 500,
}


def status_of(error: LeadscoreError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonfmt.dumps(body), status=status,
                    mimetype="application/json", headers=headers)


RETRY_AFTER_S = "5"  # a 503 tells the sender when to come back (most retry anyway)


# What a caller is told when the store cannot be reached: its error text names the setting
# and host it tried ("FIRESTORE_EMULATOR_HOST=10.0.0.7:8080 does not answer"), which is for
# the log line and the operator's CLI, not for whoever posted a form
STORE_UNAVAILABLE = "the store is unavailable, try again"


def public_message(error: LeadscoreError) -> str:
    return STORE_UNAVAILABLE if isinstance(error, StoreUnavailable) else error.message


def error_response(error: LeadscoreError) -> Response:
    status = status_of(error)
    body = error.to_json()
    body["message"] = public_message(error)
    return json_response(status, body,
                         headers={"Retry-After": RETRY_AFTER_S} if status == 503 else None)


def failure_response(name: str, exc: Exception, request: Request | None = None,
                     pages_for_browsers: bool = False) -> Response:
    """The answer to a failed request, and its one log line: our own errors with their
    status, a corrupt or locked SQLite file 503, anything else 500 with its trace logged."""
    if isinstance(exc, LeadscoreError):
        status = status_of(exc)
        level = logs.warning if status < 500 else logs.error
        level("request refused", function=name, status=status, error=exc.code,
              problem=exc.message)
        if pages_for_browsers and request is not None and pages.wants_html(request):
            return pages.error_page(status, public_message(exc))
        return error_response(exc)
    if _store_failure(exc):  # corrupt, read-only or locked file
        logs.error("store unavailable", function=name, problem=type(exc).__name__)
        return json_response(503, {"error": "store_unavailable", "message":
                                   "the store cannot be used; retry later"},
                             headers={"Retry-After": RETRY_AFTER_S})
    logs.exception("unexpected failure", function=name)
    return json_response(500, {"error": "internal_error",
                               "message": "unexpected failure; retry later"})


def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 before reading when it is declared or found too big."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    # small pieces: a body found too big part-way never sits in one large buffer
    pieces, size = [], 0
    while size <= limit:
        piece = request.stream.read(min(READ_PIECE, limit + 1 - size))
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    if size > limit:
        raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
    return b"".join(pieces)


def lower_headers(request: Request) -> dict[str, str]:
    """Headers with lower-case names, for provider modules (HTTP names are case-blind)."""
    return {name.lower(): value for name, value in request.headers.items()}


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                           "TRACE", "CONNECT"})  # a refusal names no other (it is logged)


def require_json(request: Request) -> None:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("expected Content-Type application/json, got "
                                   + named_mimetype(request.mimetype))


def _store_failure(error: Exception) -> bool:
    """A corrupt, read-only or locked SQLite file. Looked up, not imported: a function on
    Firestore never loads sqlite3, and then no error can be one of its."""
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(error, sqlite3.DatabaseError)


def endpoint(name: str, methods: Collection[str],
             pages_for_browsers: bool = False) -> Callable[[Handler], Handler]:
    """Wrap an entry point: method check, error mapping, one structured log line.

    With `pages_for_browsers`, a browser's own form post (see `pages.wants_html`) gets its
    error as a small HTML page with the same status; scripts still get JSON."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(request: Request) -> Response:
            bound = logs.bind_request(request.headers)  # each line names its request's trace
            try:
                if request.method not in methods:
                    method = request.method if request.method in KNOWN_METHODS else "this"
                    raise MethodNotAllowed(f"{method} is not allowed here; use "
                                           + " or ".join(sorted(methods)))
                return handler(request)
            except Exception as exc:  # noqa: BLE001 - the one catch-all: mapped, 503 or 500
                return failure_response(name, exc, request, pages_for_browsers)
            finally:
                logs.unbind_request(bound)

        return run

    return wrap
