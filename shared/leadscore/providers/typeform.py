"""Typeform webhooks: `form_response` events.

Signature: `Typeform-Signature: sha256=<base64 HMAC-SHA256 of the raw body>` with the
webhook's secret (`LEADSCORE_TYPEFORM_SECRET`). Answers map to profile fields by each
field's `ref` (through the same field map as plain forms); hidden fields (UTM parameters)
are kept. The form kind is the hidden field `form_kind`, else the form id's entry in
`LEADSCORE_TYPEFORM_FORMS`, else `LEADSCORE_TYPEFORM_DEFAULT_KIND`. Retries carry the same
`form_response.token`, which is the idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.field_map import build
from leadscore.errors import Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.form_events import answered_form, form_event
from leadscore.providers.wire import WireSchema, load_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

HEADER = "typeform-signature"


class _Field(WireSchema):
    id = fields.String(load_default="")
    ref = fields.String(load_default="")
    type = fields.String(load_default="")


class _Answer(WireSchema):
    type = fields.String(required=True)
    field = fields.Nested(_Field, required=True)
    text = fields.String(load_default=None)
    email = fields.String(load_default=None)
    number = fields.Raw(load_default=None)
    boolean = fields.Boolean(load_default=None)
    url = fields.String(load_default=None)
    phone_number = fields.String(load_default=None)
    date = fields.String(load_default=None)
    choice = fields.Dict(load_default=None)
    choices = fields.Dict(load_default=None)


class _Response(WireSchema):
    form_id = fields.String(required=True)
    token = fields.String(required=True)
    submitted_at = fields.AwareDateTime(required=True)
    hidden = fields.Dict(load_default=dict)
    answers = fields.List(fields.Nested(_Answer), load_default=list)


class WebhookSchema(WireSchema):
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    form_response = fields.Nested(_Response, required=True)


def verify(raw: bytes, headers: dict[str, str], active: list[str]) -> None:
    """Typeform's scheme is Shopify's and Tally's behind a `sha256=` prefix."""
    active = signing.require_configured(active, "LEADSCORE_TYPEFORM_SECRET")
    header = headers.get(HEADER, "")
    if not header.startswith("sha256="):
        raise Unauthorized("missing Typeform-Signature (sha256=...)")
    signing.verify_base64_hmac(raw, header.removeprefix("sha256="), active,
                               "LEADSCORE_TYPEFORM_SECRET", "Typeform-Signature")


def _value(answer: dict[str, Any]) -> str | None:
    kind = answer["type"]
    if kind == "choice" and answer["choice"]:
        return str(answer["choice"].get("label") or answer["choice"].get("other") or "")
    if kind == "choices" and answer["choices"]:
        return ", ".join(str(x) for x in answer["choices"].get("labels", []))
    value = answer.get(kind)
    return None if value is None else str(value)


def parse(raw: bytes, mapping: dict[str, str], kinds: dict[str, str],
          default_kind: str) -> tuple[str, str, dict[str, Any], datetime, str] | None:
    """(email, form kind, profile, submitted at, token), or None for other event types."""
    data: dict[str, Any] = load_json(schema_for(WebhookSchema), raw)
    if data["event_type"] != "form_response":
        return None
    response = data["form_response"]
    answers = {}
    for answer in response["answers"]:
        name = answer["field"]["ref"] or answer["field"]["id"]
        value = _value(answer)
        if answer["type"] == "email":
            name = "email"
        if value is not None:
            answers[name] = value
    hidden = {str(k): str(v) for k, v in response["hidden"].items() if v is not None}
    email, kind, profile = answered_form(
        {**hidden, **answers}, mapping, response["form_id"], kinds, default_kind, "",
        {"field": "form_response.answers", "problem": "no answer of type email"})
    return email, kind, profile, response["submitted_at"], response["token"]


class Typeform(WebhookProvider):
    name, function, path = "typeform", "form_submission", "/typeform"
    settings = ("typeform_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        parsed = parse(request.raw, build(settings.form_field_map), settings.typeform_forms,
                       settings.typeform_default_kind)
        if parsed is None:
            return ParseResult()
        email, kind, profile, at, token = parsed
        return ParseResult(events=[form_event(self.name, token, email, kind, profile, at)])


PROVIDER = Typeform()
