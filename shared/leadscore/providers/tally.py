"""Tally form webhooks: `FORM_RESPONSE` events.

Signature: `Tally-Signature`, base64 HMAC-SHA256 of the raw body with the webhook's signing
secret (`LEADSCORE_TALLY_SECRET`); Tally has no timestamp in the scheme. Each field has a
`label` (hidden fields: their name), mapped to profile fields with the same field map as
plain forms; the email field is the lead's address; choices are turned from option ids into
their text. The form kind is a hidden field `form_kind`, else the form id's entry in
`LEADSCORE_TALLY_FORMS`, else `LEADSCORE_TALLY_DEFAULT_KIND`. Retries carry the same
`responseId`, which is the idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.field_map import build
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.form_events import answered_form, form_event
from leadscore.providers.wire import WireSchema, load_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings


class _Field(WireSchema):
    key = fields.String(required=True)
    label = fields.String(load_default="", allow_none=True)
    type = fields.String(required=True)
    value = fields.Raw(load_default=None, allow_none=True)
    options = fields.List(fields.Dict(), load_default=list)


class _Data(WireSchema):
    responseId = fields.String(required=True)
    formId = fields.String(required=True)
    createdAt = fields.AwareDateTime(required=True)
    answers = fields.List(fields.Nested(_Field), load_default=list, data_key="fields")


class WebhookSchema(WireSchema):
    eventId = fields.String(required=True)
    eventType = fields.String(required=True)
    data = fields.Nested(_Data, required=True)


def verify(raw: bytes, headers: dict[str, str], active: list[str]) -> None:
    signing.verify_base64_hmac(raw, headers.get("tally-signature"), active,
                               "LEADSCORE_TALLY_SECRET", "Tally-Signature")


def _text(field: dict[str, Any]) -> str | None:
    value = field["value"]
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):  # choices: option ids -> their text
        names = {str(o.get("id")): str(o.get("text", "")) for o in field["options"]}
        return ", ".join(names.get(str(v), str(v)) for v in value)
    return str(value)


def parse(raw: bytes, mapping: dict[str, str], kinds: dict[str, str],
          default_kind: str) -> tuple[str, str, dict[str, Any], datetime, str] | None:
    """(email, form kind, profile, submitted at, response id), or None for other events."""
    body: dict[str, Any] = load_json(schema_for(WebhookSchema), raw)
    if body["eventType"] != "FORM_RESPONSE":
        return None
    data = body["data"]
    answers: dict[str, str] = {}
    email = ""
    for field in data["answers"]:
        text = _text(field)
        if text is None:
            continue
        if field["type"] == "INPUT_EMAIL" and not email:
            email = text
            continue
        answers[field["label"] or field["key"]] = text
    email, kind, profile = answered_form(
        answers, mapping, data["formId"], kinds, default_kind, email,
        {"field": "data.fields", "problem": "no field of type INPUT_EMAIL"})
    return email, kind, profile, data["createdAt"], data["responseId"]


class Tally(WebhookProvider):
    name, function, path = "tally", "form_submission", "/tally"
    settings = ("tally_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        parsed = parse(request.raw, build(settings.form_field_map), settings.tally_forms,
                       settings.tally_default_kind)
        if parsed is None:
            return ParseResult()
        email, kind, profile, at, token = parsed
        return ParseResult(events=[form_event(self.name, token, email, kind, profile, at)])


PROVIDER = Tally()
