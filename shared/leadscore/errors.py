"""The one error hierarchy. Errors say what went wrong, not how HTTP says it: the status of
each class is in one table in `leadscore.http`.

4xx errors are the caller's fault and must never be retried by a sender; 5xx errors are
transient (the store timed out, a commit failed) and a webhook sender should retry.
"""

from __future__ import annotations

from typing import Any


class LeadscoreError(Exception):
    """Base of every error we raise on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(LeadscoreError):
    code = "bad_request"


class ValidationFailed(LeadscoreError):
    """The body parsed but its fields are wrong; `details` names each bad field."""

    code = "validation_failed"


class Unauthorized(LeadscoreError):
    code = "unauthorized"


class Forbidden(LeadscoreError):
    code = "forbidden"


class NotFound(LeadscoreError):
    code = "not_found"


class MethodNotAllowed(LeadscoreError):
    code = "method_not_allowed"


class PayloadTooLarge(LeadscoreError):
    code = "payload_too_large"


class UnsupportedMediaType(LeadscoreError):
    code = "unsupported_media_type"


class RulesError(LeadscoreError):
    """A rules file that cannot be used; nothing from it is applied."""

    code = "rules_invalid"


class ConfigError(LeadscoreError):
    code = "config_invalid"


class TransientError(LeadscoreError):
    """The store or a dependency failed; nothing was applied and the sender should retry."""

    code = "temporarily_unavailable"


class StoreUnavailable(TransientError):
    """The store did not answer within its deadline (Firestore down or unreachable): one
    clear error, answered 503 with Retry-After; the CLI prints its message on one line."""

    code = "store_unavailable"


# Header values a refusal may repeat (refusals are logged): a caller's header is free text,
# and only these well-known words are named back; anything else is "another one"
KNOWN_MIMETYPES = frozenset({
    "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
    "text/plain", "text/html", "text/xml", "application/xml", "application/octet-stream",
    "application/cloudevents+json", "application/x-ndjson"})


def named_mimetype(mimetype: str) -> str:
    """A request's media type as a refusal may name it."""
    if not mimetype:
        return "none"
    return mimetype if mimetype in KNOWN_MIMETYPES else "another one"
