"""Segment's HTTP Tracking API messages, as marshmallow schemas (segment.com/docs/connections/
sources/catalog/libraries/server/http-api/): identify, track, page, screen, group, alias and
batch. Unknown fields are dropped; ids may be strings or numbers (Segment accepts both).

The limits and the rules a message's values follow live in `leadscore.tracking.message`,
which also reads a plain message the way `MESSAGE.load` does without importing this module
(issue 20's cold start); both read them from there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validates_schema
from marshmallow.exceptions import SCHEMA
from marshmallow.validate import Length, OneOf

from leadscore.providers.wire import WireSchema
from leadscore.tracking.message import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT,
    SHORT,
    TYPES,
    Invalid,
    absent,
    check_semantics,
    cut_name,
    segment_id,
    with_zone,
)

__all__ = ["BATCH", "MAX_BATCH_BYTES", "MAX_BATCH_EVENTS", "MAX_MESSAGE_BYTES", "MESSAGE",
           "SHORT", "TYPES", "BatchSchema", "MessageSchema"]


class Id(fields.Field[str]):
    """A user, anonymous or previous id: a non-empty string or a number, as a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return segment_id(value)
        except Invalid as exc:
            raise ValidationError(str(exc)) from None


class Moment(fields.DateTime):
    """ISO 8601; a time without a zone is UTC (as Segment reads it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        return with_zone(super()._deserialize(value, attr, data, **kwargs))


class Name(fields.String):
    """A page or screen name, cut to its first MAX_TEXT characters (`cut_name`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return cut_name(super()._deserialize(value, attr, data, **kwargs))


class MessageSchema(WireSchema):
    type = fields.String(validate=OneOf(TYPES))
    messageId = fields.String(validate=Length(min=1, max=MAX_TEXT))
    userId = Id()
    anonymousId = Id()
    previousId = Id()
    groupId = Id()
    event = fields.String(validate=Length(min=1, max=MAX_TEXT))
    name = Name(allow_none=True)
    category = fields.String(allow_none=True)
    properties = fields.Dict(keys=fields.String(), load_default=dict)
    traits = fields.Dict(keys=fields.String(), load_default=dict)
    context = fields.Dict(keys=fields.String(), load_default=dict)
    timestamp = Moment()
    originalTimestamp = Moment()
    sentAt = Moment()
    receivedAt = Moment()  # set by Segment when it relays a message (mapping.occurred_at)
    writeKey = fields.String()

    @pre_load
    def _nulls(self, data: Any, **kwargs: Any) -> Any:
        """Libraries send null (or an empty id) for what they do not know: absent."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not absent(k, v)}
        return data

    @validates_schema
    def _semantics(self, data: dict[str, Any], **kwargs: Any) -> None:
        try:
            check_semantics(data)
        except Invalid as exc:
            raise ValidationError(str(exc), exc.field or SCHEMA) from None


class BatchSchema(WireSchema):
    batch = fields.List(fields.Raw(allow_none=True), required=True,  # a null: refused alone
                        validate=Length(min=1, max=MAX_BATCH_EVENTS))
    context = fields.Dict(keys=fields.String(), load_default=dict)
    sentAt = Moment()
    writeKey = fields.String()


MESSAGE = MessageSchema()
BATCH = BatchSchema()
