"""What the three email-tool modules share: the official clients' answers mapped to our two
errors (429 with its wait, 5xx retryable; other refusals for good), the client imported
only when a sync runs, and the member's values under each tool's field names."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from leadscore import jsonfmt
from leadscore.errors import ConfigError
from leadscore.integrations.crm_sync import CALL_REFUSALS
from leadscore.integrations.esp.port import MemberChange
from leadscore.integrations.http_out import Answer, retry_after_s
from leadscore.integrations.ports import PermanentDelivery, RetryableDelivery

RESET_HEADERS = ("Retry-After", "X-RateLimit-Reset", "x-sib-ratelimit-reset")


def client_module(module: str, package: str) -> ModuleType:
    """The tool's official client, imported when the first call is made (never at a
    function's start). Missing: the `esp` extra is not installed, which no retry fixes."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PermanentDelivery(f"{package} is not installed: pip install "
                                "'leadscore[esp]'") from None


def checked_removal(tool: str, removal: str, allowed: Sequence[str], *, needs: str,
                    target: object, setting: str) -> str:
    """The configured clean-up action, refused at start-up if unknown or if the action
    `needs` a list or group (`target`) that `setting` does not give: a `ConfigError` naming
    the settings, which the command prints as one line and the scheduled job logs for this
    tool alone (`Container.sync_esp`)."""
    variable = f"LEADSCORE_{tool.upper()}_REMOVAL"
    if removal not in allowed:
        raise ConfigError(f"{variable} must be one of {', '.join(allowed)}")
    if removal == needs and target is None:
        raise ConfigError(f"{tool}: {variable}={removal} needs {setting} (or another "
                          f"removal: {', '.join(a for a in allowed if a != needs)})")
    return removal


def member_values(change: MemberChange, names: Sequence[str]) -> dict[str, Any]:
    """The member's score, fit, engagement, stage, grade, segment and frequency hint, under
    the tool's own field names (given in that order)."""
    return dict(zip(names, change.after.fields(), strict=True))


def answer_of(status: int | None, headers: Mapping[str, str] | None, body: Any) -> Answer:
    """A client's refusal as an `Answer`; no status means the request never got one."""
    if status is None:
        raise RetryableDelivery("network: no answer")
    raw = body if isinstance(body, bytes) else jsonfmt.dumps(body).encode()
    return Answer(status, dict(headers or {}), raw)


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
    """RetryableDelivery for 429, 408, 5xx and a redirect (never followed: an address to
    fix, see http_out.NoRedirects); PermanentDelivery for any other refusal. The body's
    title or message is kept short and never holds the request's emails."""
    if 300 <= answer.status < 400:
        raise RetryableDelivery(f"{what}: redirect {answer.status}, not followed",
                                status=answer.status)
    if answer.status == 429:
        raise RetryableDelivery(f"{what}: rate limited", rate_wait(answer, default_wait_s),
                                429)
    if answer.status >= 500 or answer.status == 408:
        raise RetryableDelivery(f"{what}: {answer.status}", status=answer.status)
    body = answer.json()
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("title") or body.get("code") or body.get("message") or "")
    raise PermanentDelivery(f"{what}: {answer.status} {detail[:120]}".strip(), answer.status)


def of_the_member(exc: PermanentDelivery) -> bool:
    """Whether a refusal of a call made for one member names that member: not when the
    key, the audience or the URL is refused (401, 403, 404: every member would be), nor
    when no answer says why (the client is missing). Those fail the whole batch instead,
    which is sent again by the next sweep, so no member is kept back for good by them."""
    return exc.status is not None and exc.status not in CALL_REFUSALS
