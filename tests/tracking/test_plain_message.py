"""The plain reading of a Segment message (`leadscore.tracking.message.load_plain`, issue 20's
cold start) gives what marshmallow's wire schema gives, or steps aside (None) so that the
schema decides: every value of every field, nulls, unknown fields and the rules between
fields, side by side with `MESSAGE.load`."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from leadscore.tracking.message import DEFAULTS, FIELDS, Refused, load, load_plain
from leadscore.tracking.wire import MESSAGE, MessageSchema

REFUSED = "refused by the schema"
PAGE = {"type": "page", "anonymousId": "a-1", "messageId": "m-1", "name": "Pricing",
        "properties": {"url": "https://www.example.com/pricing", "path": "/pricing"},
        "writeKey": "wk"}
# analytics.js's page call as it sends it (context and times from a real browser session)
BROWSER_PAGE = {**PAGE, "context": {"page": {"path": "/pricing", "referrer": "",
                                              "title": "Pricing"},
                                     "userAgent": "Mozilla/5.0", "locale": "en-US",
                                     "library": {"name": "analytics.js", "version": "5.2.1"}},
                "timestamp": "2026-11-20T10:00:00.120Z", "sentAt": "2026-11-20T10:00:00.125Z",
                "originalTimestamp": "2026-11-20T10:00:00.120Z", "userId": None,
                "integrations": {}, "_metadata": {"bundled": ["Segment.io"]}}
IDENTIFY = {"type": "identify", "userId": 4021, "anonymousId": "a-1", "messageId": "m-2",
            "traits": {"email": "ana@example.com", "plan": "pro"},
            "timestamp": "2026-11-20T10:00:00"}
TRACK = {"type": "track", "userId": "u-1", "event": "Signed Up", "messageId": "m-3",
         "properties": {"plan": "pro", "value": 20.5}, "category": "Account"}
ALIAS = {"type": "alias", "userId": "u-1", "previousId": "a-1"}
GROUP = {"type": "group", "userId": "u-1", "groupId": 77, "traits": {"name": "Acme"}}
SCREEN = {"type": "screen", "anonymousId": 3.5, "name": "Home"}
PLAIN = [PAGE, BROWSER_PAGE, IDENTIFY, TRACK, ALIAS, GROUP, SCREEN,
         {**TRACK, "event": "x" * 200, "messageId": "m" * 200}, {**PAGE, "name": ""},
         {**PAGE, "userId": "  u-9 ", "anonymousId": 0}, {**PAGE, "timestamp": "2026-11-20"},
         {**PAGE, "timestamp": "2026-11-20T12:00:00+02:00"}, {**PAGE, "category": None}]


def _varied() -> list[dict[str, Any]]:
    """Each field given values of every kind a sender may send, good and bad."""
    values: dict[str, list[Any]] = {
        "type": ["page", "Page", "batch", "", 5, None],
        "messageId": ["", "m", "m" * 200, "m" * 201, 12, b"m", [], None],
        "userId": ["u", 0, 42, 4.5, True, False, "", "   ", "u" * 256, "u" * 257, [], {},
                   None],
        "event": ["", "Signed Up", "e" * 201, 3, None],
        "name": ["", "Home", "n" * 200, "n" * 201, 7, None],
        "category": ["Docs", "", 3, None],
        "properties": [{}, {"a": 1, "b": [1, {"c": None}]}, {1: "x"}, [], "p", 0, None],
        "context": [{"traits": {"email": "a@b.co"}}, [], None],
        "timestamp": ["2026-11-20T10:00:00Z", "2026-11-20T10:00:00", "2026-11-20",
                      "2026-11-20T10:00:00.123456+05:30", "20 Nov 2026", "", 1700000000,
                      "2026-13-01T00:00:00Z", None],
        "sentAt": ["2026-11-20T10:00:01Z", "yesterday"],
        "writeKey": ["wk", 5, ""],
        "receivedAt": ["2026-11-20T10:00:00Z", 5],  # not a field: dropped either way
    }
    return [{**base, field: value} for base in (PAGE, TRACK, ALIAS, GROUP)
            for field, choices in values.items() for value in choices]


def _schema_load(message: dict[str, Any]) -> Any:
    try:
        return MESSAGE.load(message)
    except ValidationError:
        return REFUSED


@pytest.mark.parametrize("message", PLAIN + _varied() + [
    {"type": "alias", "userId": "u-1"}, {"type": "track", "userId": "u-1"},
    {"type": "group", "userId": "u-1"}, {"type": "page"}, {},
    {"type": "identify", "anonymousId": "a", "traits": None, "context": None}])
def test_the_plain_reading_gives_what_the_schema_gives_or_steps_aside(
        message: dict[str, Any]) -> None:
    # GIVEN a message, WHEN it is read plainly and by marshmallow's wire schema
    plain, schema = load_plain(message), _schema_load(message)
    # THEN the plain reading is the schema's dict, or None (the schema decides)
    assert plain is None or plain == schema, (plain, schema)


@pytest.mark.parametrize("message", PLAIN)
def test_valid_messages_as_libraries_send_them_are_read_without_marshmallow(
        message: dict[str, Any]) -> None:
    # GIVEN a valid message of each call, as Segment's libraries send them
    # THEN the plain reading takes it (no marshmallow needed) and gives the schema's dict
    assert load_plain(message) is not None
    assert load(message) == MESSAGE.load(message)


def test_a_refused_message_is_refused_by_the_schema_with_its_messages() -> None:
    # GIVEN a message the schema refuses (no id, a bad time)
    message = {"type": "page", "timestamp": "yesterday"}
    # THEN `load` refuses it with marshmallow's own messages
    with pytest.raises(Refused) as refused:
        load(message)
    with pytest.raises(ValidationError) as schema:
        MESSAGE.load(message)
    assert refused.value.messages == schema.value.messages
    assert "timestamp" in schema.value.messages


def test_the_plain_reading_covers_exactly_the_schemas_fields() -> None:
    # GIVEN the wire schema's fields and the plain reading's
    fields = MessageSchema().load_fields
    # THEN they are the same fields, with the same defaults filled in
    assert set(FIELDS) == set(fields)
    assert set(DEFAULTS) == {name for name, field in fields.items() if field.load_default is dict}
