"""The one error hierarchy. Each error knows its HTTP status; `leadscore.http` maps them.

4xx errors are the caller's fault and must never be retried by a sender; 5xx errors are
transient (the store timed out, a commit failed) and a webhook sender should retry.
"""

from __future__ import annotations

from typing import Any


class LeadscoreError(Exception):
    """Base of every error we raise on purpose."""

    status = 500
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
    status = 400
    code = "bad_request"


class ValidationFailed(LeadscoreError):
    """The body parsed but its fields are wrong; `details` names each bad field."""

    status = 422
    code = "validation_failed"


class Unauthorized(LeadscoreError):
    status = 401
    code = "unauthorized"


class Forbidden(LeadscoreError):
    status = 403
    code = "forbidden"


class NotFound(LeadscoreError):
    status = 404
    code = "not_found"


class MethodNotAllowed(LeadscoreError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(LeadscoreError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(LeadscoreError):
    status = 415
    code = "unsupported_media_type"


class RulesError(LeadscoreError):
    """A rules file that cannot be used; nothing from it is applied."""

    status = 500
    code = "rules_invalid"


class ConfigError(LeadscoreError):
    status = 500
    code = "config_invalid"


class TransientError(LeadscoreError):
    """The store or a dependency failed; nothing was applied and the sender should retry."""

    status = 503
    code = "temporarily_unavailable"
