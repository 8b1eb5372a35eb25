"""Building canonical email events from provider payloads, with errors that name the field."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema
from marshmallow.exceptions import MarshmallowError
from pydantic import ValidationError

from leadscore.domain.events import EVENT_ADAPTER, Event
from leadscore.errors import ValidationFailed
from leadscore.providers.base import ParseResult
from leadscore.providers.wire import load_plain, parse_json

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


# The shape of every event type a provider documents ("delivered", "hard_bounce",
# "blacklist:add", "suppress-bounce"). A type of any other shape is logged as "other": a
# signed body's type is still free text, and replacing characters instead ("@" by "?") left
# an address readable, and out of the scrubber's sight, in the "webhook items ignored" line.
_SAFE_LABEL = re.compile(r"[a-z0-9_.:\-]{1,40}")


def kind_label(value: Any) -> str:
    """A provider's event type as a short log-safe label (types are strings we never trust)."""
    if value is None or value == "":
        return "(none)"
    if not isinstance(value, str):
        return type(value).__name__  # "int", "dict": ours, not the sender's
    return value if _SAFE_LABEL.fullmatch(value) else "other"


@dataclass
class Batch:
    """Events of one signed request, built item by item: an item we do not score, or one
    whose fields are wrong (a missing address, a wrong JSON type), is acknowledged and
    named in `ignored` while the rest of the batch is still applied."""

    source: str
    events: list[Event] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def ignore(self, kind: Any, why: str = "") -> None:
        """`why` is one of our words ("invalid", "bot"), or a provider's documented reason
        code; anything else of the provider's is not put into the label."""
        self.ignored.append(kind_label(kind) + (f" ({kind_label(why)})" if why else ""))

    def add(self, where: str, label: Any, kind: str, email: Any, key: str, at: datetime,
            **extra: Any) -> None:
        """`canonical(...)` for one item; an invalid item is ignored, not a failed batch."""
        try:
            self.events.append(canonical(where, kind, email, self.source, key, at, **extra))
        except ValidationFailed:
            self.ignore(label, "invalid")

    def each(self, items: list[Any], one: Callable[[Batch, int, dict[str, Any]], None]
             ) -> ParseResult:
        """Every item through `one`; an item that is not an object, or an empty batch, is
        acknowledged as ignored (Mandrill and Mailjet send such test batches)."""
        for i, item in enumerate(items):
            if isinstance(item, dict):
                one(self, i, item)
            else:
                self.ignore(None, "invalid")
        if not items:
            self.ignored.append("(empty batch)")
        return self.result()

    def result(self, **more: Any) -> ParseResult:
        return ParseResult(events=self.events, ignored=self.ignored, **more)


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time with its zone (bounded length), or None for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def load_item(schema: Schema, item: Any) -> dict[str, Any] | None:
    """One batch item through its wire schema, or None when it is not what the schema says."""
    if not isinstance(item, dict):
        return None
    plain = load_plain(schema, item)  # the same dict, for the usual well-formed item
    if plain is not None:
        return plain
    try:
        loaded: dict[str, Any] = schema.load(item)
    except MarshmallowError:
        return None
    return loaded


def json_items(raw: bytes) -> list[Any]:
    """A JSON body that is one object or an array of them, as a list (400 if not JSON)."""
    data = parse_json(raw)
    return data if isinstance(data, list) else [data]


def unix_time(value: Any) -> datetime | None:
    """Unix seconds (int, float, Decimal or digits) as an aware datetime, or None."""
    if isinstance(value, bool):
        return None
    try:
        return from_unix(value)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
