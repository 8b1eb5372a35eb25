"""What the three email-tool modules share: one way to map an HTTP answer to our errors."""

from __future__ import annotations

from leadscore.integrations.http_out import Answer, retry_after_s
from leadscore.integrations.ports import PermanentDelivery, RetryableDelivery

RESET_HEADERS = ("Retry-After", "X-RateLimit-Reset", "x-sib-ratelimit-reset")


def rate_wait(answer: Answer, default_s: float) -> float:
    """Seconds to wait after a 429: Retry-After, else the tool's reset header (Brevo's
    x-sib-ratelimit-reset and SendGrid's X-RateLimit-Reset), else `default_s`. A reset value
    bigger than a day is an epoch time (SendGrid documents a Unix timestamp)."""
    import time

    for name in RESET_HEADERS:
        value = answer.header(name)
        if value is None:
            continue
        seconds = retry_after_s(value)
        if seconds is not None:
            return max(0.0, seconds - time.time()) if seconds > 86400 else seconds
    return default_s


def raise_for(answer: Answer, what: str, default_wait_s: float = 1.0) -> None:
    """RetryableDelivery for 429, 408 and 5xx; PermanentDelivery for any other refusal.
    The body's title or message is kept short and never holds the request's emails."""
    if answer.status == 429:
        raise RetryableDelivery(f"{what}: rate limited", rate_wait(answer, default_wait_s))
    if answer.status >= 500 or answer.status == 408:
        raise RetryableDelivery(f"{what}: {answer.status}")
    body = answer.json()
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("title") or body.get("code") or body.get("message") or "")
    raise PermanentDelivery(f"{what}: {answer.status} {detail[:120]}".strip())
