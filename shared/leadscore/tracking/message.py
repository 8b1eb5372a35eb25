"""One Segment message read without marshmallow, when that gives what the wire schema gives.

An exception to the house rule (marshmallow reads outside wire formats), made for cold
starts (issue 20): importing marshmallow costs `track` about 25 ms of CPU at every cold
start, most of it compiling the regular expression of marshmallow's `Email` validator, which
`marshmallow.fields` imports and no Segment field uses. `MessageSchema` in
`leadscore.tracking.wire` stays the one definition of a message:

- `load_plain` returns exactly `MESSAGE.load(data)` for a message whose every value already
  has its field's JSON type and passes its field's checks (the same ids, lengths, types,
  ISO 8601 times and rules between fields, from the functions below that the schema calls
  too), and None for anything else: then `load` asks the marshmallow schema, so every
  refusal, and every message the plain reading is not sure of, is marshmallow's.
- `tests/tracking/test_plain_message.py` loads every message the tracking tests send, and
  edge cases of each field, both ways and requires the same dict (or None from the plain
  reading), and requires the plain reading to cover exactly the schema's fields.
Batches (`/v1/batch`) still go through marshmallow's `BatchSchema` in the handler.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

TYPES = ("identify", "track", "page", "screen", "group", "alias")
SHORT = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group",
         "a": "alias", "b": "batch"}
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_ID = 256
MAX_TEXT = 200


class Invalid(ValueError):
    """A value or a message breaks a rule of the Segment spec; the message says which."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def segment_id(value: Any) -> str:
    """A user, anonymous or previous id: a non-empty string or a number, as a string."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("must be a string or a number")
    text = str(value).strip()
    if not text or len(text) > MAX_ID:
        raise Invalid(f"must be 1-{MAX_ID} characters")
    return text


IDS = ("userId", "anonymousId", "previousId", "groupId")


def absent(name: str, value: Any) -> bool:
    """Null, or an empty id: RudderStack's JavaScript SDK 1.x sends `"userId": ""` for an
    anonymous visitor, which means no user id (as null does), not a bad one."""
    return value is None or (name in IDS and isinstance(value, str) and not value.strip())


def with_zone(moment: datetime) -> datetime:
    """A time without a zone is UTC (as Segment reads it)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_semantics(data: dict[str, Any]) -> None:
    """The rules between fields, on a message whose fields are each valid."""
    kind = data.get("type")
    if kind == "alias":
        if not data.get("previousId") or not data.get("userId"):
            raise Invalid("alias needs previousId and userId")
    elif not data.get("userId") and not data.get("anonymousId"):
        raise Invalid("every message needs userId or anonymousId")
    if kind == "track" and not data.get("event"):
        raise Invalid("track needs an event name", "event")
    if kind == "group" and not data.get("groupId"):
        raise Invalid("group needs a groupId", "groupId")


def _text(low: int | None = None, high: int | None = None,
          choices: tuple[str, ...] | None = None) -> Callable[[Any], str | None]:
    def read(value: Any) -> str | None:
        if type(value) is not str or (choices is not None and value not in choices):
            return None
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return None
        return value
    return read


def cut_name(value: str) -> str:
    """A page or screen name is only a label: a long one is cut, not refused with its view."""
    return value[:MAX_TEXT]


def _name(value: Any) -> str | None:
    return cut_name(value) if type(value) is str else None


def _id(value: Any) -> str | None:
    try:
        return segment_id(value)
    except Invalid:
        return None


def _object(value: Any) -> dict[str, Any] | None:
    if type(value) is not dict or any(type(key) is not str for key in value):
        return None
    return dict(value)


def _moment(value: Any) -> datetime | None:
    if type(value) is not str:
        return None
    try:
        return with_zone(datetime.fromisoformat(value))
    except ValueError:
        return None


# field -> its plain reading (None: not sure, ask marshmallow); the schema's fields exactly
FIELDS: dict[str, Callable[[Any], Any]] = {
    "type": _text(choices=TYPES), "messageId": _text(1, MAX_TEXT), "userId": _id,
    "anonymousId": _id, "previousId": _id, "groupId": _id, "event": _text(1, MAX_TEXT),
    "name": _name, "category": _text(), "properties": _object,
    "traits": _object, "context": _object, "timestamp": _moment,
    "originalTimestamp": _moment, "sentAt": _moment, "receivedAt": _moment,
    "writeKey": _text()}
# missing fields the schema fills in (`load_default=dict`)
DEFAULTS = ("properties", "traits", "context")


def load_plain(data: dict[str, Any]) -> dict[str, Any] | None:
    """`MESSAGE.load(data)` when every present value reads plainly (see the module), else
    None. Nulls and empty ids count as absent, unknown fields are dropped, as in the
    schema."""
    out: dict[str, Any] = {}
    for name, read in FIELDS.items():
        value = data.get(name)
        if absent(name, value):
            continue
        loaded = read(value)
        if loaded is None:
            return None
        out[name] = loaded
    for name in DEFAULTS:
        out.setdefault(name, {})
    try:
        check_semantics(out)
    except Invalid:
        return None
    return out


class Refused(ValueError):
    """The wire schema refused a message; `messages` are marshmallow's, field by field."""

    def __init__(self, messages: Any) -> None:
        super().__init__(str(messages))
        self.messages = messages


def load(data: dict[str, Any]) -> dict[str, Any]:
    """One message as the wire schema loads it, or `Refused` with the schema's messages
    (marshmallow is imported only when the plain reading is not sure)."""
    plain = load_plain(data)
    if plain is not None:
        return plain
    from marshmallow import ValidationError

    from leadscore.tracking.wire import MESSAGE

    try:
        loaded: dict[str, Any] = MESSAGE.load(data)
    except ValidationError as exc:
        raise Refused(exc.messages) from None
    return loaded
