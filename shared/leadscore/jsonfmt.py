"""One JSON encoding for everything we print or answer: times as ISO 8601 in UTC with `Z`.

Pydantic's JSON mode already writes `2026-11-20T10:00:00Z`; `json.dumps(default=str)` would
write `2026-11-20 10:00:00+00:00` for the same moment. Every JSON we emit goes through here so
a reader parses one format.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any


def iso(value: datetime) -> str:
    """An aware moment as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; a naive one is taken as UTC."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# `json.dumps` with `default` builds an encoder per call: every answer's, so one is kept
_ENCODE = json.JSONEncoder(default=default).encode


def dumps(data: Any, **options: Any) -> str:
    return json.dumps(data, default=default, **options) if options else _ENCODE(data)
