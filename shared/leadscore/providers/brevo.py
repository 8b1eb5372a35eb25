"""Brevo (formerly Sendinblue) transactional email webhooks.

Brevo does not sign webhooks; it can send a bearer token you choose (the webhook's `auth`
setting), checked against `LEADSCORE_BREVO_TOKEN` in constant time. A body is one event, or
a list of them when the webhook is `batched`. Brevo sends no event id, so an event is known
by its kind, message id and time. `opened` counts (Brevo's extra `unique_opened` for the
first open would count it twice, so it is ignored); `proxy_open` is a machine open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError, fields

from leadscore.domain.events import Event
from leadscore.errors import Unauthorized
from leadscore.providers import canonical as bearer
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.email_events import canonical, from_unix
from leadscore.providers.wire import WireSchema, parse_json, schema_errors

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "brevo"
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "delivered": ("email_delivered", {}),
    "opened": ("email_opened", {}),
    "proxy_open": ("email_opened", {"machine_open": True}),
    "click": ("email_clicked", {}),
    "hard_bounce": ("email_bounced", {"hard": True}),
    "soft_bounce": ("email_bounced", {"hard": False}),
    "spam": ("email_complained", {}),
    "unsubscribed": ("email_unsubscribed", {}),
}
CAMEL = {"hardBounce": "hard_bounce", "softBounce": "soft_bounce", "proxyOpen": "proxy_open",
         "clicked": "click"}


class EventSchema(WireSchema):
    event = fields.String(required=True)
    email = fields.String(required=True)
    message_id = fields.String(data_key="message-id", load_default="")
    ts_event = fields.Integer(load_default=None)
    ts_epoch = fields.Integer(load_default=None)
    ts = fields.Integer(load_default=None)
    link = fields.String(load_default=None)


def verify(authorization: str | None, tokens: list[str]) -> None:
    if not tokens:
        raise Unauthorized("this endpoint is not configured: set LEADSCORE_BREVO_TOKEN")
    bearer.verify_bearer(authorization, tokens)


def _when(item: dict[str, Any]) -> datetime | None:
    if item["ts_epoch"]:
        return from_unix(item["ts_epoch"] / 1000)
    stamp = item["ts_event"] or item["ts"]
    return from_unix(stamp) if stamp else None


def parse(raw: bytes) -> list[Event]:
    body = parse_json(raw)
    try:
        items: list[dict[str, Any]] = EventSchema().load(
            body if isinstance(body, list) else [body], many=True)
    except ValidationError as exc:
        raise schema_errors(exc) from None
    events: list[Event] = []
    for i, item in enumerate(items):
        kind = CAMEL.get(item["event"], item["event"])
        at = _when(item)
        if kind not in KINDS or at is None:
            continue  # request, deferred, blocked, unique opens, new kinds: ignored
        mapped, extra = KINDS[kind]
        if mapped == "email_clicked":
            extra = {"url": item["link"]}
        key = f"{kind}:{item['message_id']}:{at.timestamp()}:{item['link'] or ''}"
        events.append(canonical(str(i), mapped, item["email"], SOURCE, key, at, **extra))
    return events


class Brevo(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/brevo"
    settings = ("brevo_token",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(events=parse(request.raw))


PROVIDER = Brevo()
