"""Our own wire format, for `POST /ingest`: canonical events as JSON, one or a list.

Authentication is a bearer token (`Authorization: Bearer <token>`), compared in constant
time against every active token so tokens can be rotated.
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import ValidationError

from leadscore.domain.events import EVENT_LIST_ADAPTER, Event
from leadscore.errors import Unauthorized, ValidationFailed
from leadscore.providers import signing
from leadscore.providers.json_body import parse_json

MAX_EVENTS = 1000


def verify_bearer(authorization: str | None, tokens: list[str]) -> None:
    """Check an `Authorization` header value against every active token. With none set,
    every request gets a wrong token's answer (the setting goes to the log)."""
    tokens = signing.require_configured(tokens, "LEADSCORE_API_TOKEN")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    candidate = presented.strip().encode()
    matched = False
    for token in tokens:  # no early exit: the time taken says nothing about which matched
        matched |= hmac.compare_digest(candidate, token.encode())
    if not matched:
        raise Unauthorized("invalid bearer token")


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(body)"


def parse(raw: bytes) -> list[Event]:
    data: Any = parse_json(raw)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ValidationFailed("no events: send one event object or a non-empty list")
    if len(items) > MAX_EVENTS:
        raise ValidationFailed(f"{len(items)} events in one request; the limit is {MAX_EVENTS}")
    try:
        return EVENT_LIST_ADAPTER.validate_python(items)
    except ValidationError as exc:
        details = [{"field": _field(tuple(e["loc"])), "problem": e["msg"]}
                   for e in exc.errors(include_url=False, include_input=False)]
        raise ValidationFailed(f"{len(details)} invalid field(s) in the events",
                               details=details) from None
