"""Mandrill (Mailchimp Transactional) webhooks: a form POST whose one field,
`mandrill_events`, is a JSON array of up to 1,000 events, batched about once a minute.

`X-Mandrill-Signature` is base64(HMAC-SHA1(webhook key, URL + every POST parameter sorted
by name, each as name + value)), where URL is the webhook URL exactly as entered in Mandrill
(`LEADSCORE_MANDRILL_WEBHOOK_URL`: scheme, host, path, query, trailing slash all count) and
the key is the webhook's own key from Mandrill's Webhooks page, not the API key
(`LEADSCORE_MANDRILL_WEBHOOK_KEY`; several, comma-separated, rotate). The scheme has no
timestamp, so there is no replay window: redeliveries are de-duplicated instead.

When a webhook is added Mandrill checks the URL with a HEAD (answered 200) and may fall
back to a POST of an empty batch signed with the public key `test-webhook`: an empty batch
writes nothing, so it is acknowledged before any check.

Mandrill has no event id: `_id` is the message's, shared by its send, opens and clicks, so
an event is known by `event:_id:ts` (and the URL for clicks); sync events by
`type:action:email:ts`.

What each documented event means here (sources: Mandrill's webhook docs [MD-DOCS], message
event format [MD-MSGFMT], sync events [MD-SYNC], django-anymail's parser tests [ANYMAIL];
see tests/events/email/mandrill/SOURCES.md):

- `send` -> acknowledged, ignored: "sent successfully" to the receiving server is not a
  delivery [MD-DOCS]
- `delivered` -> `email_delivered`: the recipient's server accepted it [MD-DOCS]
- `deferral` -> acknowledged, ignored: temporary; Mandrill retries [MD-DOCS]
- `hard_bounce` -> `email_bounced(hard=True)` [MD-DOCS]
- `soft_bounce` -> `email_bounced(hard=False)` [MD-DOCS]
- `open` -> `email_opened(machine_open=False)`: Mandrill documents no machine-open flag
  [MD-MSGFMT]
- `click` -> `email_clicked(url)` [MD-MSGFMT]
- `spam` -> `email_complained` [MD-DOCS]
- `unsub` -> `email_unsubscribed` [MD-DOCS]
- `reject` -> acknowledged, ignored: never sent (denylisted); the bounce, complaint or
  unsubscribe behind it was its own event [MD-DOCS]
- sync events (`type` blacklist/denylist or whitelist/safelist, no `event`) -> acknowledged,
  ignored: account list maintenance [MD-SYNC]
- `inbound` -> acknowledged, ignored: inbound mail, not tracking [MD-DOCS]
- an empty batch, any other event -> acknowledged, ignored ("new keys may be added")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.errors import BadRequest, PayloadTooLarge, Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, Reply, WebhookProvider
from leadscore.providers.email_events import Batch, unix_time
from leadscore.providers.form_body import parse_form

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "mandrill"
HEADER = "x-mandrill-signature"
FIELD = "mandrill_events"
MAX_BATCH = 5000  # Mandrill sends at most 1,000; this bounds one request's work
SIMPLE = {"delivered": "email_delivered", "spam": "email_complained",
          "unsub": "email_unsubscribed"}
BOUNCES = {"hard_bounce": True, "soft_bounce": False}


def form(raw: bytes) -> list[tuple[str, str]]:
    return parse_form(raw)


def signed_data(url: str, params: list[tuple[str, str]]) -> bytes:
    """The documented signed string: the URL, then each parameter's name and value, sorted."""
    return (url + "".join(k + v for k, v in sorted(params, key=lambda p: p[0]))).encode()


def verify(raw: bytes, signature: str | None, keys: list[str], urls: list[str]) -> None:
    keys = signing.require_configured(keys, "LEADSCORE_MANDRILL_WEBHOOK_KEY")
    urls = signing.require_configured(urls, "LEADSCORE_MANDRILL_WEBHOOK_URL")
    if not signature:
        raise Unauthorized("missing X-Mandrill-Signature header")
    try:
        presented = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("X-Mandrill-Signature is not base64") from None
    params = form(raw)
    expected = [hmac.new(k.encode(), signed_data(u, params), hashlib.sha1).digest()
                for k in keys for u in urls]
    if not signing.any_matches([presented], expected):
        raise Unauthorized("X-Mandrill-Signature does not match (is "
                           "LEADSCORE_MANDRILL_WEBHOOK_URL the URL exactly as entered?)")


def events_of(raw: bytes) -> list[Any]:
    value = dict(form(raw)).get(FIELD)
    if value is None:
        return []
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        raise BadRequest(f"{FIELD} is not valid JSON") from None
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"{len(items)} events in one batch; the limit is {MAX_BATCH}")
    return items


def _one(batch: Batch, i: int, item: dict[str, Any]) -> None:
    kind, at = item.get("event"), unix_time(item.get("ts"))
    if kind is None and "type" in item:  # sync event: denylist / safelist maintenance
        batch.ignore(f"{item.get('type')}:{item.get('action')}"[:48])
        return
    if kind not in SIMPLE and kind not in BOUNCES and kind not in ("open", "click"):
        batch.ignore(kind)  # send, deferral, reject, inbound and types added later
        return
    msg = item.get("msg")
    if at is None or not isinstance(msg, dict):
        batch.ignore(kind, "invalid")
        return
    key = f"{kind}:{item.get('_id') or msg.get('_id')}:{item.get('ts')}"
    where, email = f"{FIELD}.{i}", msg.get("email")
    if kind in SIMPLE:
        batch.add(where, kind, SIMPLE[kind], email, key, at)
    elif kind in BOUNCES:
        batch.add(where, kind, "email_bounced", email, key, at, hard=BOUNCES[kind])
    elif kind == "open":
        batch.add(where, kind, "email_opened", email, key, at)
    else:
        url = item.get("url") if isinstance(item.get("url"), str) else None
        batch.add(where, kind, "email_clicked", email, f"{key}:{url}", at, url=url)


def parse(raw: bytes) -> ParseResult:
    batch = Batch(SOURCE)
    items = events_of(raw)
    return batch.each(items, _one)


class Mandrill(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/mandrill"
    settings = ("mandrill_webhook_key", "mandrill_webhook_url")
    methods = frozenset({"POST", "HEAD"})  # HEAD: Mandrill's check when a webhook is added
    json_body = False  # form-encoded

    def handshake(self, request: Inbound) -> Reply | None:
        if request.method == "HEAD":
            return Reply(200, {"status": "ok"})
        # the empty test batch is signed with the public key "test-webhook": it proves
        # nothing and writes nothing, so it is acknowledged before any key is configured
        if dict(form(request.raw)).get(FIELD, "").strip() == "[]":  # no JSON parsed unsigned
            return Reply(200, {"status": "ignored", "message": "empty batch"})
        return None

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        urls = signing.secrets(edges.settings.mandrill_webhook_url)  # the URLs Mandrill signs
        verify(request.raw, request.headers.get(HEADER), list(secrets), urls)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse(request.raw)


PROVIDER = Mandrill()
