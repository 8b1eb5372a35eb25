"""Segment's HTTP Tracking API messages, as marshmallow schemas (segment.com/docs/connections/
sources/catalog/libraries/server/http-api/): identify, track, page, screen, group, alias and
batch. Unknown fields are dropped; ids may be strings or numbers (Segment accepts both).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validates_schema
from marshmallow.validate import Length, OneOf

from leadscore.providers.wire import WireSchema

TYPES = ("identify", "track", "page", "screen", "group", "alias")
SHORT = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group",
         "a": "alias", "b": "batch"}
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500


class Id(fields.Field[str]):
    """A user, anonymous or previous id: a non-empty string or a number, as a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError("must be a string or a number")
        text = str(value).strip()
        if not text or len(text) > 256:
            raise ValidationError("must be 1-256 characters")
        return text


class Moment(fields.DateTime):
    """ISO 8601; a time without a zone is UTC (as Segment reads it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MessageSchema(WireSchema):
    type = fields.String(validate=OneOf(TYPES))
    messageId = fields.String(validate=Length(min=1, max=200))
    userId = Id()
    anonymousId = Id()
    previousId = Id()
    groupId = Id()
    event = fields.String(validate=Length(min=1, max=200))
    name = fields.String(allow_none=True, validate=Length(max=200))
    category = fields.String(allow_none=True)
    properties = fields.Dict(keys=fields.String(), load_default=dict)
    traits = fields.Dict(keys=fields.String(), load_default=dict)
    context = fields.Dict(keys=fields.String(), load_default=dict)
    timestamp = Moment()
    originalTimestamp = Moment()
    sentAt = Moment()
    writeKey = fields.String()

    @pre_load
    def _nulls(self, data: Any, **kwargs: Any) -> Any:
        """Libraries send null for what they do not know: treat it as absent."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @validates_schema
    def _semantics(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("type")
        if kind == "alias":
            if not data.get("previousId") or not data.get("userId"):
                raise ValidationError("alias needs previousId and userId")
        elif not data.get("userId") and not data.get("anonymousId"):
            raise ValidationError("every message needs userId or anonymousId")
        if kind == "track" and not data.get("event"):
            raise ValidationError("track needs an event name", "event")
        if kind == "group" and not data.get("groupId"):
            raise ValidationError("group needs a groupId", "groupId")


class BatchSchema(WireSchema):
    batch = fields.List(fields.Raw(), required=True,
                        validate=Length(min=1, max=MAX_BATCH_EVENTS))
    context = fields.Dict(keys=fields.String(), load_default=dict)
    sentAt = Moment()
    writeKey = fields.String()


MESSAGE = MessageSchema()
BATCH = BatchSchema()
