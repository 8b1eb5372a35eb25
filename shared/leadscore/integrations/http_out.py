"""The one outbound HTTP call of the integrations, on the standard library (urllib).

No new runtime dependency for two JSON POSTs: like service/handover.py. Every non-2xx
answer comes back as an `Answer` (urllib raises them; we catch and read them), so each
integration maps status codes in one place. Network failures and timeouts are retryable,
and so is a redirect, which is never followed (see `NoRedirects`).
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from leadscore.integrations.ports import RetryableDelivery

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect comes back as the 3xx it is. urllib follows a 301/302/303 of a POST as a
    GET without the body, whose 200 would count as delivered (the receiver saw nothing) or
    whose 405 as a refusal for good; and a followed redirect would carry our API keys'
    headers to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirects)


def request_json(method: str, url: str, payload: Any | None, headers: Mapping[str, str],
                 timeout_s: float = 10) -> Answer:
    """Send JSON and return the answer; RetryableDelivery for a network failure or a
    redirect (an address to fix, with the 3xx as its status: the next attempt may find it
    fixed, and the integration's log shows the status)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("only http(s) URLs")  # urllib would also open file:// URLs
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={  # noqa: S310
        "Content-Type": "application/json; charset=utf-8", **headers})
    try:
        with OPENER.open(request, timeout=timeout_s) as answer:
            return Answer(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        with error:
            if 300 <= error.code < 400:
                raise RetryableDelivery(f"redirect {error.code}, not followed",
                                        status=error.code) from None
            return Answer(error.code, dict(error.headers.items()), error.read())
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RetryableDelivery(f"network: {type(exc).__name__}") from None


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110); a date
    without a zone (`-0000`) is read as UTC, and "inf", "1e400" or "nan" mean nothing (None,
    like "soon"). Not capped here (an email tool's reset header may be an epoch time, see
    esp/common.py): whoever builds a timedelta from it caps it first (timedelta overflows
    near 8.64e13 s)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def with_retries(call: Callable[[], T], attempts: int = 3, base_s: float = 0.5,
                 max_wait_s: float = 30, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call, retrying RetryableDelivery: wait what the receiver asked (Retry-After), else
    exponential backoff. A wait longer than `max_wait_s` is not slept here: the error goes
    up so the outbox schedules the next attempt instead of holding a function instance."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except RetryableDelivery as exc:
            wait = exc.retry_after_s if exc.retry_after_s is not None else (
                base_s * 2 ** (attempt - 1))
            if attempt == attempts or wait > max_wait_s:
                raise
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
