"""Mailjet Event API: a JSON array of the last second's events ("group events", Version 2),
or one bare event object when grouping is off.

Mailjet signs nothing; it recommends HTTPS with basic-auth credentials in the URL
(`https://user:password@HOST/email_webhook/mailjet`), which it sends as an `Authorization:
Basic` header, checked against `LEADSCORE_MAILJET_BASIC_AUTH` (`user:password`, several
comma-separated, rotate). Only `200 OK` counts as delivered for Mailjet (it retries
anything else for 24 hours and can suspend the URL), so every verified request is 200.

Mailjet has no event id: an event is known by `event:Message_GUID (or MessageID):time:email`
(and the URL for clicks). `MessageID` is a 64-bit integer and is kept exact.

What each documented event means here (sources: Mailjet's Event API guide [MJ-EV],
django-anymail's Mailjet parser and tests [ANYMAIL]; see
tests/events/email/mailjet/SOURCES.md):

- `sent` -> `email_delivered`: "the destination SMTP server has accepted the message" [MJ-EV]
- `open` -> `email_opened(machine_open=False)`: Mailjet documents no machine-open flag [MJ-EV]
- `click` -> `email_clicked(url)` [MJ-EV]
- `bounce`, `hard_bounce: true` -> `email_bounced(hard=True)`: a permanent error [MJ-EV]
- `bounce`, `hard_bounce: false`, `error: greylisted` -> acknowledged, ignored: "delivery will
  be re-attempted" [MJ-EV], a deferral [ANYMAIL]
- `bounce`, `hard_bounce: false`, other errors -> `email_bounced(hard=False)` [MJ-EV]
- `blocked` (every `error`) -> acknowledged, ignored: never sent; an earlier bounce, complaint
  or unsubscribe, or a sender problem [MJ-EV]
- `spam` -> `email_complained`: a feedback-loop complaint (`source` names the loop) [MJ-EV]
- `unsub` -> `email_unsubscribed`: the person used the unsubscribe link (of list
  `mj_list_id`; Mailjet sends campaigns to lists, so it is their opt-out) [MJ-EV]
- any other `event` -> acknowledged, ignored
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.errors import PayloadTooLarge
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.basic_auth import verify_basic
from leadscore.providers.email_events import Batch, json_items, unix_time

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "mailjet"
SETTING = "LEADSCORE_MAILJET_BASIC_AUTH"
MAX_BATCH = 20_000  # one second of events; this bounds one request's work
SIMPLE = {"sent": "email_delivered", "open": "email_opened", "spam": "email_complained",
          "unsub": "email_unsubscribed"}


def verify(authorization: str | None, credentials: list[str]) -> None:
    """Mailjet signs nothing: the URL carries user:password@ and arrives as basic auth."""
    verify_basic(authorization, credentials, SETTING)


def _one(batch: Batch, i: int, item: dict[str, Any]) -> None:
    kind, at = item.get("event"), unix_time(item.get("time"))
    if kind == "bounce" and item.get("hard_bounce") is not True \
            and item.get("error") == "greylisted":
        batch.ignore(kind, "greylisted")
        return
    if kind not in SIMPLE and kind not in ("click", "bounce"):
        batch.ignore(kind)  # blocked and types added later
        return
    if at is None:
        batch.ignore(kind, "invalid")
        return
    message = item.get("Message_GUID") or item.get("MessageID")
    key = f"{kind}:{message}:{item.get('time')}:{item.get('email')}"
    where, email = str(i), item.get("email")
    if kind in SIMPLE:
        batch.add(where, kind, SIMPLE[kind], email, key, at)
    elif kind == "click":
        url = item.get("url") if isinstance(item.get("url"), str) else None
        batch.add(where, kind, "email_clicked", email, f"{key}:{url}", at, url=url)
    else:
        batch.add(where, kind, "email_bounced", email, key, at,
                  hard=item.get("hard_bounce") is True)


def parse(raw: bytes) -> ParseResult:
    items = json_items(raw)
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"{len(items)} events in one batch; the limit is {MAX_BATCH}")
    batch = Batch(SOURCE)
    return batch.each(items, _one)


class Mailjet(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/mailjet"
    settings = ("mailjet_basic_auth",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse(request.raw)


PROVIDER = Mailjet()
