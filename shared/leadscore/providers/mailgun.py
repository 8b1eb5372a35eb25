"""Mailgun webhooks: one JSON event per request, signed inside the body.

`signature.signature` is hex HMAC-SHA256 of `timestamp + token` with the webhook signing
key (`LEADSCORE_MAILGUN_SIGNING_KEY`); a timestamp more than 15 minutes from our clock is
stale. The signature covers only the timestamp and token, not the event, so the token is
claimed once for a hash of the whole event: Mailgun's redelivery of the same event is
accepted (and de-duplicated), while a captured signature replayed with any change (another
recipient, another type) is refused 401. Events are de-duplicated on `id:event:timestamp`
(Mailgun's `id` is only unique within a day).

What each documented event means here (sources: Mailgun's user manual [MG-UM] sections
"Events", "Open and Click Bot Detection" and "Tracking Failures", and its events API
reference [MG-EV]; see tests/events/email/mailgun/SOURCES.md):

- `accepted` -> acknowledged, ignored: queued for delivery [MG-EV]
- `rejected` -> acknowledged, ignored: Mailgun refused to send; carries no recipient [MG-EV]
- `delivered` -> `email_delivered`: accepted by the recipient's server [MG-EV]
- `failed`, `severity: temporary` -> acknowledged, ignored: Mailgun retries; the outcome arrives
  later as `delivered` or a permanent `failed` [MG-EV], so each retry is not a bounce
- `failed`, permanent, `reason: bounce` -> `email_bounced(hard=True)`: recipient not found,
  added to the bounce list [MG-UM]
- `failed`, permanent, `flags.is-delayed-bounce` -> `email_bounced(hard=True)`: an asynchronous
  hard bounce [MG-EV]
- `failed`, permanent, `reason: suppress-bounce` / `suppress-unsubscribe` / `suppress-complaint`
  -> acknowledged, ignored: not attempted: the address bounced, unsubscribed or complained
  earlier, which was its own event [MG-EV]
- `failed`, permanent, `reason: old` -> `email_bounced(hard=False)`: the retry limit was reached
  (e.g. MX unreachable): the mailbox may exist [MG-EV]
- `failed`, permanent, other reasons -> `email_bounced`, hard only when the enhanced status
  code says the address is bad (5.1.x, RFC 3463); blocks of the sender or its content
  (5.7.1 "rejected due to local policy", Mailgun's ESPBLOCK and BLACKLISTED classes in its
  Classified Bounces list) are soft [MG-UM]
- `opened`, `client-info.bot` empty -> `email_opened(machine_open=False)`: [MG-UM]
- `opened`, `client-info.bot` `apple` / `gmail` / `generic` ->
  `email_opened(machine_open=True)`: Apple MPP, Gmail's proxy or a scanner [MG-UM]
- `clicked`, `client-info.bot` empty -> `email_clicked(url)`: [MG-EV]
- `clicked`, `client-info.bot` set -> acknowledged, ignored: a link scanner, not the person
  [MG-UM]
- `unsubscribed` -> `email_unsubscribed`: [MG-EV]
- `complained` -> `email_complained`: [MG-EV]
- `stored`, `list_*`, any other -> acknowledged, ignored: inbound mail or list tasks, no
  recipient

Legacy (pre-2018) form-encoded webhooks carry the same signature as top-level fields and
`timestamp` is also the event's time: `delivered`, `opened`, `clicked`, `complained` and
`unsubscribed` mean the same as above (no bot flag exists there), `bounced` is a hard
bounce with a 5xx `code` (else soft), `dropped` with `reason: old` a soft bounce (as
`failed`/`old`), and any other `dropped` (605 earlier bounce, 607 earlier complaint) is
acknowledged and ignored [ANYMAIL].
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.errors import Unauthorized, UnsupportedMediaType
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, TokenClaim, WebhookProvider
from leadscore.providers.email_events import Batch, load_item, unix_time
from leadscore.providers.form_body import parse_form
from leadscore.providers.wire import WireSchema, parse_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

TOLERANCE_S = 900
SOURCE = "mailgun"
SUPPRESSED = frozenset({"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"})
FORM = "application/x-www-form-urlencoded"
SIGNED = ("timestamp", "token", "signature")


class _EventData(WireSchema):
    id = fields.String(required=True)
    event = fields.String(required=True)
    timestamp = fields.Raw(required=True)
    recipient = fields.Raw(load_default=None)
    severity = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True)
    url = fields.String(load_default=None, allow_none=True)
    flags = fields.Dict(load_default=dict, allow_none=True)
    client_info = fields.Dict(load_default=dict, allow_none=True, data_key="client-info")
    delivery_status = fields.Dict(load_default=dict, allow_none=True,
                                  data_key="delivery-status")


def signature_of(request: Inbound) -> Any:
    """The signature object: inside the JSON body, or top-level fields of a legacy form."""
    if is_legacy(request):
        return legacy_fields(request.raw)
    if mimetype(request) != "application/json":
        raise UnsupportedMediaType(f"expected Content-Type application/json (or {FORM} "
                                   f"for legacy webhooks), got {mimetype(request) or 'none'}")
    body = parse_json(request.raw)
    return body.get("signature") if isinstance(body, dict) else None


def verify(sig: Any, keys: list[str], now: datetime) -> str:
    """Check a signature object; return the token for the replay check."""
    keys = signing.require_configured(keys, "LEADSCORE_MAILGUN_SIGNING_KEY")
    if not isinstance(sig, dict) or not all(isinstance(sig.get(k), str) for k in SIGNED):
        raise Unauthorized("missing signature object (timestamp, token, signature)")
    stamp, token = sig["timestamp"], sig["token"]
    seconds = signing.unix_stamp(stamp)
    if seconds is None or abs(now.timestamp() - seconds) > TOLERANCE_S:
        raise Unauthorized(f"signature timestamp is outside the {TOLERANCE_S} s tolerance")
    try:
        presented = bytes.fromhex(sig["signature"])
    except ValueError:
        raise Unauthorized("signature is not hex") from None
    message = (stamp + token).encode()
    if not signing.any_matches([presented], [signing.hmac_sha256(k, message) for k in keys]):
        raise Unauthorized("signature does not match")
    return str(token)


def event_hash(event_data: Any) -> str:
    """A fingerprint of the whole event: the same for a redelivery, different after any edit."""
    text = json.dumps(event_data, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# RFC 3463 enhanced status 5.1.x: the address itself is bad (5.1.1 no such user, 5.1.2 no
# such domain...). Other 5xx refusals (5.7.1 "rejected due to local policy", Mailgun's
# ESPBLOCK and BLACKLISTED classes) refuse the sender or the content, not the address.
BAD_ADDRESS = re.compile(r"5\.1\.[0-9]{1,3}")


def _hard(data: dict[str, Any]) -> bool:
    """A hard bounce: Mailgun's own `bounce` reason (the address went on its bounce list),
    a delayed bounce, or any other permanent failure whose enhanced code says the address
    is bad. A mailbox provider's block of the sender is soft (as SendGrid's `blocked`)."""
    if data["reason"] == "bounce" or (data["flags"] or {}).get("is-delayed-bounce") is True:
        return True
    status = data["delivery_status"] or {}
    enhanced = status.get("enhanced-code")
    if not isinstance(enhanced, str) or not enhanced.strip():  # the code leads the message
        message = status.get("message")
        enhanced = message.split(" ", 1)[0] if isinstance(message, str) else ""
    return BAD_ADDRESS.fullmatch(enhanced.strip()) is not None


def _bot(data: dict[str, Any]) -> str:
    bot = (data["client_info"] or {}).get("bot")
    return bot if isinstance(bot, str) else ""


def _one(batch: Batch, data: dict[str, Any], at: datetime) -> None:
    kind = data["event"]
    key = f"{data['id']}:{kind}:{data['timestamp']}"

    def add(mapped: str, **extra: Any) -> None:
        batch.add("event-data", kind, mapped, data["recipient"], key, at, **extra)

    if kind == "delivered":
        add("email_delivered")
    elif kind == "opened":
        add("email_opened", machine_open=bool(_bot(data)))
    elif kind == "clicked" and _bot(data):
        batch.ignore(kind, "bot")
    elif kind == "clicked":
        add("email_clicked", url=data["url"])
    elif kind == "failed" and data["severity"] != "permanent":
        batch.ignore(kind, "temporary")
    elif kind == "failed" and data["reason"] in SUPPRESSED:
        batch.ignore(kind, data["reason"])
    elif kind == "failed":
        add("email_bounced", hard=data["reason"] != "old" and _hard(data))
    elif kind == "complained":
        add("email_complained")
    elif kind == "unsubscribed":
        add("email_unsubscribed")
    else:  # accepted, rejected, stored, list tasks and types added later
        batch.ignore(kind)


def parse(raw: bytes) -> ParseResult:
    body = parse_json(raw)
    raw_data = body.get("event-data") if isinstance(body, dict) else None
    batch = Batch(SOURCE)
    data = load_item(schema_for(_EventData), raw_data)  # one per thread: its plan is kept
    at = unix_time(data["timestamp"]) if data else None
    if data is None or at is None:
        batch.ignore(raw_data.get("event") if isinstance(raw_data, dict) else None,
                     "invalid")
    else:
        _one(batch, data, at)
    return batch.result()


# --- legacy (pre-2018) form webhooks: the same signature, as top-level form fields ----------
def mimetype(request: Inbound) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_legacy(request: Inbound) -> bool:
    return mimetype(request) == FORM


def legacy_fields(raw: bytes) -> dict[str, str]:
    return dict(parse_form(raw))


def parse_legacy(form: dict[str, str]) -> ParseResult:
    """`event`, `recipient`, `timestamp` (the event's time), `code`, `reason`, `url`."""
    kind, batch = form.get("event", ""), Batch(SOURCE)
    at = unix_time(form.get("timestamp"))
    if at is None:
        batch.ignore(kind or None, "invalid")
        return batch.result()
    message = form.get("Message-Id") or form.get("message-id") or ""
    key = f"legacy:{kind}:{message}:{form.get('recipient')}:{form.get('timestamp')}"
    code = form.get("code", "")
    add = functools.partial(batch.add, "recipient", kind, email=form.get("recipient"),
                            key=key, at=at)
    if kind in LEGACY_SIMPLE:
        add(LEGACY_SIMPLE[kind])
    elif kind == "clicked":
        url = form.get("url")
        batch.add("recipient", kind, "email_clicked", form.get("recipient"), f"{key}:{url}",
                  at, url=url)
    elif kind == "bounced":
        add("email_bounced", hard=code.isdigit() and 500 <= int(code) < 600)
    elif kind == "dropped" and form.get("reason") == "old":
        add("email_bounced", hard=False)  # gave up retrying, as `failed` with `old`
    else:  # dropped for an earlier bounce or complaint (605, 607), and anything else
        # a fixed label per documented reason: `reason` is the provider's free text, and a
        # label holding it put whatever it said into the "webhook items ignored" line
        reason = form.get("reason", "")
        batch.ignore(kind or None, (reason if reason in LEGACY_DROPPED else "other")
                     if kind == "dropped" else "")
    return batch.result()


# Mailgun's documented reasons for a legacy `dropped` event ("old" is counted above)
LEGACY_DROPPED = frozenset({"hardfail", "maxfails"})
LEGACY_SIMPLE = {"delivered": "email_delivered", "opened": "email_opened",
                 "complained": "email_complained", "unsubscribed": "email_unsubscribed"}


class Mailgun(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/mailgun"
    settings = ("mailgun_signing_key",)
    json_body = False  # JSON, or a legacy form: checked in `parse`
    # the signature is inside the body, which must be parsed to find it: a stranger's
    # body is read no further than this (one event, a few KB; the function allows 4 MiB)
    max_body = 512 * 1024

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(signature_of(request), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        # verify checked the token; it may sign this exact event only (a redelivery), never
        # a changed one: the signature covers no event field, so we bind them here
        if is_legacy(request):
            form = legacy_fields(request.raw)
            result = parse_legacy(form)
            token, event = form["token"], {k: v for k, v in form.items() if k not in SIGNED}
        else:
            result = parse(request.raw)
            body = parse_json(request.raw)
            token, event = str(body["signature"]["token"]), body.get("event-data")
        result.claims = [TokenClaim(f"mailgun:{token}", event_hash(event))]
        return result


PROVIDER = Mailgun()
