"""Shared pieces for outside wire formats: lenient marshmallow schemas, JSON loading, and
marshmallow's nested messages flattened into our named-field errors."""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from marshmallow import EXCLUDE, Schema, ValidationError

from leadscore.errors import ValidationFailed
from leadscore.providers.json_body import parse_json

__all__ = ["WireSchema", "load_json", "parse_json", "schema_errors", "schema_for"]

S = TypeVar("S", bound=Schema)
_SCHEMAS = threading.local()


class WireSchema(Schema):
    """Providers add fields over time: keep what we know, drop the rest (never fail on it)."""

    class Meta:
        unknown = EXCLUDE


def schema_for(cls: type[S]) -> S:
    """This thread's instance of a wire schema. Building one deep-copies its declared fields
    (about 0.1 ms, a tenth of a small webhook's request in the issue 20 profile); one per
    thread and class, so no instance is ever shared between concurrent requests."""
    made: dict[type[Schema], Schema] | None = getattr(_SCHEMAS, "made", None)
    if made is None:
        made = _SCHEMAS.made = {}
    found = made.get(cls)
    if found is None:
        found = made[cls] = cls()
    return found  # type: ignore[return-value]


def schema_errors(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    details: list[dict[str, Any]] = []

    def walk(messages: Any, path: str) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
            details.append({"field": path or "(body)", "problem": " ".join(messages)})
        elif isinstance(messages, list):
            for i, value in enumerate(messages):
                walk(value, f"{path}.{i}")
        else:
            details.append({"field": path or "(body)", "problem": str(messages)})

    walk(exc.messages, prefix)
    return ValidationFailed(f"{len(details)} invalid field(s) in the payload", details=details)


def load_json(schema: Schema, raw: bytes, many: bool = False) -> Any:
    """Parse and validate a JSON body against a wire schema: 400 or 422 on failure."""
    data = parse_json(raw)
    try:
        return schema.load(data, many=many)
    except ValidationError as exc:
        raise schema_errors(exc) from None
