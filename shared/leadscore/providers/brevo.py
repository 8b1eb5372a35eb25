# ruff: noqa: E501  (the meaning table in the docstring has long rows; code lines stay short)
"""Brevo (formerly Sendinblue) transactional and marketing email webhooks.

Brevo does not sign webhooks; it can send a bearer token you choose (the webhook's `auth`
setting), checked against `LEADSCORE_BREVO_TOKEN` in constant time. A body is one event, or
a list of them when the webhook is `batched`. Both families post to the same URL:
transactional events carry `message-id`, marketing (campaign) events `camp_id`.

What each documented event means here (sources: developers.brevo.com/docs/transactional-webhooks
and /docs/marketing-webhooks, the proxy-open changelogs; django-anymail's
tests/test_brevo_webhooks.py):

| event (either family; camelCase spellings too) | canonical event |
|---|---|
| delivered | email_delivered |
| opened, unique_opened ("First Opening") | email_opened, once per open (below) |
| proxy_open, unique_proxy_open(ed) | email_opened, machine_open (a privacy proxy loaded the pixel) |
| click (`link`, marketing `URL`) | email_clicked |
| hard_bounce, invalid_email | email_bounced hard |
| soft_bounce | email_bounced soft |
| spam, complaint | email_complained |
| unsubscribed, unsubscribe (marketing) | email_unsubscribed |
| request (sent), deferred, blocked, error | acknowledged, ignored (not an outcome for the person) |
| list_addition, contact_updated, contact_deleted, unique coupon, SMS and inbound events | acknowledged, ignored (list membership is not consent) |

**One open counts once.** Brevo sends `unique_opened` for a message's first open and
`opened` for opens (sources disagree on which one arrives for the first open, and Brevo has
sent both for it). Both share one key, `open:<message>:<address>:<time>`, so the same open
reported twice, in one batch or two, counts once; later opens have later times and count.

**Time.** `ts_epoch` is documented in milliseconds, but Brevo's own examples send seconds:
a value below 10^11 is seconds (10^11 ms is 1973, 10^11 s is the year 5138). Then `s_epoch`
(milliseconds; proxy opens carry only this), `ts_event`, `ts` (seconds). The local-time
`date` strings are never used. An event without a usable time is ignored.

Brevo sends no event id: an event is known by its kind, message (or campaign), address, time
and link.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.providers import canonical as bearer
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.email_events import Batch, load_item
from leadscore.providers.wire import WireSchema, parse_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "brevo"
OPEN: tuple[str, dict[str, Any]] = ("email_opened", {})
MACHINE_OPEN: tuple[str, dict[str, Any]] = ("email_opened", {"machine_open": True})
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "delivered": ("email_delivered", {}),
    "opened": OPEN,
    "unique_opened": OPEN,
    "proxy_open": MACHINE_OPEN,
    "unique_proxy_open": MACHINE_OPEN,
    "unique_proxy_opened": MACHINE_OPEN,
    "click": ("email_clicked", {}),
    "hard_bounce": ("email_bounced", {"hard": True}),
    "invalid_email": ("email_bounced", {"hard": True}),
    "soft_bounce": ("email_bounced", {"hard": False}),
    "spam": ("email_complained", {}),
    "complaint": ("email_complained", {}),
    "unsubscribed": ("email_unsubscribed", {}),
    "unsubscribe": ("email_unsubscribed", {}),
}
CAMEL = {"hardBounce": "hard_bounce", "softBounce": "soft_bounce", "proxyOpen": "proxy_open",
         "uniqueProxyOpen": "unique_proxy_open", "uniqueOpened": "unique_opened",
         "invalidEmail": "invalid_email", "clicked": "click"}
# The key's first part: every kind of open shares one, so one open counts once.
KEY_KIND = {"unique_opened": "open", "opened": "open", "unique_proxy_open": "proxy-open",
            "unique_proxy_opened": "proxy-open", "proxy_open": "proxy-open",
            "invalid_email": "hard_bounce", "complaint": "spam", "unsubscribe": "unsubscribed"}
DOCUMENTED = {*KINDS, "request", "deferred", "blocked", "error", "list_addition",
              "contact_updated", "contact_deleted", "unique_coupon_sent"}
MS_THRESHOLD = 10**11  # epoch values below this are seconds, above milliseconds
MAX_EPOCH_MS = 10**13  # about the year 2286: anything larger is not a time


class EventSchema(WireSchema):
    event = fields.String(required=True)
    email = fields.Raw(load_default=None, allow_none=True)  # a list on contact_deleted
    message_id = fields.String(data_key="message-id", load_default=None, allow_none=True)
    camp_id = fields.Raw(load_default=None, allow_none=True)
    ts_epoch = fields.Raw(load_default=None, allow_none=True)
    s_epoch = fields.Raw(load_default=None, allow_none=True)
    ts_event = fields.Raw(load_default=None, allow_none=True)
    ts = fields.Raw(load_default=None, allow_none=True)
    link = fields.String(load_default=None, allow_none=True)
    URL = fields.String(load_default=None, allow_none=True)


def verify(authorization: str | None, tokens: list[str]) -> None:
    bearer.verify_bearer(authorization, signing.require_configured(tokens,
                                                                   "LEADSCORE_BREVO_TOKEN"))


def epoch(value: Any, milliseconds: bool | None = None) -> datetime | None:
    """An epoch number as a time; seconds or milliseconds told apart by size when unsure."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None  # Brevo sends integers; anything else is not a time we trust
    if value <= 0 or value >= MAX_EPOCH_MS:
        return None
    if milliseconds is None:
        milliseconds = value >= MS_THRESHOLD
    return datetime.fromtimestamp(value / 1000 if milliseconds else value, UTC)


def when(item: dict[str, Any]) -> datetime | None:
    return (epoch(item["ts_epoch"]) or epoch(item["s_epoch"]) or epoch(item["ts_event"])
            or epoch(item["ts"]))


def parse(raw: bytes) -> ParseResult:
    """Every item loaded and built on its own (as SendGrid's): one we cannot read, or whose
    address is not one, is acknowledged as invalid and the rest of the batch still counts."""
    body = parse_json(raw)
    batch, schema = Batch(SOURCE), schema_for(EventSchema)
    seen: set[str] = set()
    for i, raw_item in enumerate(body if isinstance(body, list) else [body]):
        item = load_item(schema, raw_item)
        if item is None:
            batch.ignore(raw_item.get("event") if isinstance(raw_item, dict) else None,
                         "invalid")
            continue
        kind = CAMEL.get(item["event"], item["event"])
        at, email = when(item), item["email"]
        if kind not in KINDS or at is None or not isinstance(email, str):
            batch.ignored.append(kind if kind in DOCUMENTED else "unknown")
            continue  # sent, deferred, blocked, list and contact changes, new kinds: ignored
        mapped, extra = KINDS[kind]
        link = item["link"] or item["URL"]
        if mapped == "email_clicked":
            extra = {"url": link}
        message = item["message_id"] or f"campaign-{item['camp_id']}"
        key = (f"{KEY_KIND.get(kind, kind)}:{message}:{email.lower()}:{at.timestamp()}"
               f":{link or ''}")
        if key in seen:
            continue  # unique_opened and opened for the same open, in one batch
        seen.add(key)
        batch.add(str(i), kind, mapped, email, key, at, **extra)
    return batch.result()


class Brevo(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/brevo"
    settings = ("brevo_token",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse(request.raw)


PROVIDER = Brevo()
