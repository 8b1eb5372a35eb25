"""Building canonical email events from provider payloads, with errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from leadscore.domain.events import EVENT_ADAPTER, Event
from leadscore.errors import ValidationFailed

LATEST_UNIX = 4_102_444_800  # 2100-01-01: anything later (or an exponent) is not a time


def from_unix(value: float | int | str) -> datetime:
    """A unix time, bounded before conversion (`1e10000000` must not cost CPU seconds)."""
    if isinstance(value, str) and not (0 < len(value) <= 20):
        raise ValueError("not a unix timestamp")
    seconds = float(value)
    if not 0 <= seconds <= LATEST_UNIX:  # also refuses nan and inf
        raise ValueError("unix timestamp out of range")
    return datetime.fromtimestamp(seconds, UTC)


def canonical(where: str, kind: str, email: Any, source: str, key: str, at: datetime,
              **extra: Any) -> Event:
    """One canonical event, or a 422 naming `where` (e.g. `3.email`) and the problem."""
    try:
        return EVENT_ADAPTER.validate_python({
            "type": kind, "email": email, "source": source, "idempotency_key": key[:256],
            "occurred_at": at, **extra})
    except ValidationError as exc:
        details = [{"field": f"{where}.{'.'.join(str(p) for p in e['loc'][1:])}",
                    "problem": e["msg"]} for e in exc.errors(include_url=False)]
        raise ValidationFailed(f"invalid event at {where}", details=details) from None
