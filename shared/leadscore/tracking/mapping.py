"""Segment messages to canonical events, one message at a time.

Each message becomes a `Tracked` (who: visitor keys and maybe an address; what: a canonical
event, or nothing when the message only says who someone is) or a `Refused` naming why. The
address of an anonymous event is not known yet: its event carries `ANONYMOUS`, which the
visitors use case replaces once the visitor is identified.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError as ModelError
from pydantic_core import PydanticCustomError

from leadscore.domain import field_map
from leadscore.domain.behaviour import split_url
from leadscore.domain.events import (
    EARLIEST,
    CustomActivity,
    EmailClicked,
    EmailComplained,
    EmailOpened,
    EmailUnsubscribed,
    Event,
    OutcomeRecorded,
    ProfileValue,
    PurchaseMade,
    PurchaseRefunded,
    checked_email,
)
from leadscore.domain.identity import normalise_email
from leadscore.domain.money import MoneyError, currency_code, to_minor
from leadscore.domain.visitors import ANONYMOUS, Tracked, visitor_key
from leadscore.domain.website_rules import WebsiteRules
from leadscore.tracking import message as wire_message
from leadscore.tracking.auth import Kind
from leadscore.tracking.message import MAX_MESSAGE_BYTES

SOURCE = "track"
MAX_CLOCK_SKEW = timedelta(hours=1)  # as /ingest: later than this is "in the future"
CLIENT_HISTORY = timedelta(days=1)  # client keys cannot date events further back
SEMANTIC_EMAIL = {"Email Opened", "Email Link Clicked", "Unsubscribed", "Email Marked as Spam"}
SEMANTIC_ORDERS = {"Order Completed", "Order Refunded"}
# Sales outcomes (issue 16): what the score is judged against, so only server keys (a CRM or
# a backend) may send them; a browser's client key is public and could forge wins.
OUTCOME_EVENTS = frozenset({"opportunity_created", "deal_won", "deal_lost"})


class Refusal(Exception):
    """One message cannot be accepted; the others of its batch still can."""


@dataclass(frozen=True)
class Policy:
    caller: Kind
    website: WebsiteRules
    client_events: frozenset[str]
    field_mapping: dict[str, str]
    profile_fields: frozenset[str]
    # LEADSCORE_CAPTCHA_SECRET is set: forms need a captcha, so a client key (public, no
    # captcha) may not create a lead or set profile fields either (see `Tracked.creates`)
    captcha_required: bool = False


def message_id(msg: dict[str, Any], received: datetime, position: int = 0) -> str:
    """Segment's `messageId` (its libraries give every message one), or for senders that set
    none a digest of the message as read (`msg`: the same for a call sent singly or in a
    batch, its type included, and its batch's context merged in), without `sentAt` and
    `writeKey`, which a retry changes, and with its own times: so its retries count once
    and two messages that differ in anything, their times included, count apart.

    A message with neither `messageId` nor `timestamp`/`originalTimestamp` cannot be told
    from its own retry: it is digested with its receipt time (and its place in its batch),
    so each request's copy counts (two identical page views a minute apart are two views),
    and a retried copy counts again."""
    if msg.get("messageId"):
        return str(msg["messageId"])
    body = {k: v for k, v in msg.items() if k not in ("sentAt", "writeKey")}
    if not (msg.get("timestamp") or msg.get("originalTimestamp")):
        body["_received"] = [received.isoformat(), position]
    return "h" + hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()
                                ).hexdigest()[:40]


def _utc(moment: datetime, name: str) -> datetime:
    try:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC: no datetime holds it
        return moment.astimezone(UTC)
    except OverflowError:
        raise Refusal(f"{name} is out of range") from None


def occurred_at(msg: dict[str, Any], batch_sent_at: datetime | None, received: datetime,
                caller: Kind) -> datetime:
    """When a message happened (Segment's spec, segment.com/docs/connections/spec/common/
    #timestamps): `timestamp` is when it occurred, already corrected for the device's clock
    skew by whoever received it first, `receivedAt` that receipt.

    - A server key's message that carries `receivedAt` and `timestamp` (Segment's Webhooks
      destination, a replay or an import of stored Segment data) was received and corrected
      before: it is dated by its `timestamp`, not corrected again against our receipt.
    - Otherwise Segment's own correction: `received - (sentAt - originalTimestamp)`, with our
      receipt time; a server key's `timestamp` without `sentAt` is taken as given
      (historical imports). A client key's `receivedAt` is not read: a public key must not
      backdate, so its times are always corrected against our receipt.
    A time out of range (before 1970, or beyond what a datetime holds once corrected) is a
    `Refusal`; so is one more than an hour ahead, and a client key's older than a day."""
    sent = msg.get("sentAt") or batch_sent_at
    original = msg.get("originalTimestamp") or msg.get("timestamp")
    if original is None:
        return received
    original = _utc(original, "originalTimestamp" if msg.get("originalTimestamp")
                    else "timestamp")
    if caller == "server" and msg.get("receivedAt") and msg.get("timestamp"):
        sent, original = None, _utc(msg["timestamp"], "timestamp")
    if sent is not None:
        try:
            at: datetime = received - (_utc(sent, "sentAt") - original)
        except OverflowError:
            raise Refusal("sentAt and the event's timestamp are too far apart") from None
    else:
        at = original if caller == "server" else received
    if at > received + MAX_CLOCK_SKEW:
        raise Refusal("timestamp is more than an hour in the future")
    if caller == "client" and at < received - CLIENT_HISTORY:
        raise Refusal("client write keys cannot send events older than a day")
    if at < EARLIEST:  # the events' own bound (domain/events.py), said plainly here
        raise Refusal("timestamp is before 1970")
    return at


def _scalars(values: dict[str, Any]) -> dict[str, ProfileValue]:
    out: dict[str, ProfileValue] = {}
    for name, value in values.items():
        if isinstance(value, Decimal):
            value = float(value)
        if isinstance(value, str | int | float | bool) and len(str(value)) <= 500:
            out[name] = value
    return out


def _address(msg: dict[str, Any]) -> str | None:
    """The person's address: identify's traits, or any call's `context.traits`. A group
    call's own traits describe the company (its billing address is not the user's)."""
    context_traits = msg["context"].get("traits")
    own = msg["traits"].get("email") if msg.get("type") != "group" else None
    candidates = [(own, True),
                  (context_traits.get("email") if isinstance(context_traits, dict) else None,
                   False)]
    for value, stated in candidates:
        if isinstance(value, str) and value.strip():
            try:  # the events' own check (remembered per address and domain)
                return normalise_email(checked_email(value.strip()))
            except PydanticCustomError:
                if stated:  # the message's own trait: an identify naming a bad address
                    raise Refusal("traits.email is not a valid address") from None
                # context.traits ride along on every call (a form's "n/a", a cached
                # trait): a bad one is ignored, the event stays its visitor's
    return None


def _profile(msg: dict[str, Any], policy: Policy) -> dict[str, ProfileValue]:
    """An identify's traits: its own, and `context.traits` where RudderStack puts them
    (its identify sends no top-level traits); a trait in both is the top-level one."""
    context_traits = msg["context"].get("traits")
    traits = {**(context_traits if isinstance(context_traits, dict) else {}), **msg["traits"]}
    mapped = field_map.map_fields(_scalars(traits),  # type: ignore[arg-type]
                                  policy.field_mapping)
    mapped.pop("email", None)
    if policy.caller == "client" and policy.captcha_required:  # forms need a captcha
        return {}
    if policy.caller == "client":  # no more than a form could set
        mapped = {k: v for k, v in mapped.items() if k in policy.profile_fields}
    return dict(mapped)


def _page_path(msg: dict[str, Any]) -> str:
    props = msg["properties"]
    page = msg["context"].get("page")
    for value in (props.get("path"), (page or {}).get("path") if isinstance(page, dict) else None):
        if isinstance(value, str) and value.startswith("/"):
            return value
    for value in (props.get("url"), (page or {}).get("url") if isinstance(page, dict) else None):
        parts = split_url(value) if isinstance(value, str) and value else None
        if parts is not None:
            return parts.path or "/"
    return "/"


def _money(props: dict[str, Any], *names: str) -> tuple[int, str]:
    try:
        currency = currency_code(props.get("currency") or "USD")
        amount = next((props[n] for n in names if props.get(n) is not None), None)
        return to_minor(amount, currency), currency
    except MoneyError as exc:
        raise Refusal(str(exc)) from None


AMOUNTS = ("total", "revenue", "value")


def full_refund(props: dict[str, Any]) -> bool:
    """Segment's full refund: `Order Refunded` with its order_id and no amount. The mapping
    leaves its amount 0; `service.visitors.price_full_refund` makes it the order's recorded
    amount (the store's, which this pure mapping does not read)."""
    return all(props.get(n) is None for n in AMOUNTS)


def _semantic(name: str, msg: dict[str, Any], base: dict[str, Any]) -> Event:
    props = msg["properties"]
    if name == "Email Opened":
        return EmailOpened(**base)
    if name == "Email Link Clicked":
        url = props.get("link_url")
        return EmailClicked(**base, url=url[:2048] if isinstance(url, str) else None)
    if name == "Unsubscribed":
        return EmailUnsubscribed(**base)
    if name == "Email Marked as Spam":
        return EmailComplained(**base)
    order_id = str(props.get("order_id") or "")[:128]
    if not order_id:
        raise Refusal(f"{name} needs properties.order_id")
    # One amount basis for orders and refunds: `total` (what was paid, Segment's Order
    # Refunded carries it), then `revenue` (before shipping and tax), then `value`; so a
    # refund of an order's total is the whole order, never more than it.
    if name == "Order Completed":
        amount, currency = _money(props, *AMOUNTS)
        return PurchaseMade(**base, order_id=order_id, amount_minor=amount, currency=currency)
    if full_refund(props):  # the order's recorded amount, filled in by the service
        amount, currency = 0, _money({**props, "total": 0}, "total")[1]
    else:
        amount, currency = _money(props, *AMOUNTS)
    refund_id = str(props.get("refund_id") or base["idempotency_key"])[:128]
    return PurchaseRefunded(**base, order_id=order_id, refund_id=refund_id,
                            amount_minor=amount, currency=currency)


def _outcome(name: str, msg: dict[str, Any], base: dict[str, Any]) -> OutcomeRecorded:
    """`track("deal_won", {"amount": 1250, "currency": "EUR", "reason": ...})`: the same
    outcome event `/ingest` records (amount in major units, as Segment's `revenue`)."""
    props = msg["properties"]
    amount = currency = None
    if any(props.get(n) is not None for n in ("amount", "revenue", "value")):
        amount, currency = _money(props, "amount", "revenue", "value")
    reason, deal = props.get("reason"), props.get("deal_id") or props.get("opportunity_id")
    return OutcomeRecorded(**base, outcome=name, amount_minor=amount, currency=currency,
                           reason=str(reason)[:500] if reason not in (None, "") else None,
                           deal_id=str(deal)[:128] if deal else None)


def _event(kind: str, msg: dict[str, Any], base: dict[str, Any],
           policy: Policy) -> Event | None:
    website = policy.website
    if kind == "identify":
        return CustomActivity(**base, activity="identified", profile=_profile(msg, policy))
    if kind == "page":
        activity = website.page_activity(_page_path(msg))
    elif kind == "screen":  # a screen's name as a path, lower-cased as paths are matched
        activity = website.page_activity("/" + str(msg.get("name") or "").lstrip("/").lower())
    elif kind == "track":
        name = msg["event"]
        if name in OUTCOME_EVENTS:
            if policy.caller == "client":
                raise Refusal(f"event {name!r} is a sales outcome: only server write keys "
                              "may send it")
            return _outcome(name, msg, base)
        semantic = website.semantic_events and name in SEMANTIC_EMAIL | SEMANTIC_ORDERS
        if policy.caller == "client" and (semantic or name not in policy.client_events):
            raise Refusal(f"event {name!r} is not allowed for client write keys")
        if semantic:
            return _semantic(name, msg, base)
        activity = website.event_activity(name)
    else:  # group, alias: who someone is, nothing to score
        return None
    return CustomActivity(**base, activity=activity) if activity else None


def map_message(raw: Any, call: str, batch_sent_at: datetime | None, received: datetime,
                policy: Policy, position: int = 0) -> Tracked:
    """One message, validated and mapped; `Refusal` says why it cannot be accepted.

    A client key's message is keyed by its `anonymousId` alone: a `userId` is the site's
    own server-side identity, and a public key that could name one could claim it (link it
    to another address, so the server's later orders for it went there). Its `userId` is
    not read, and a client message without `anonymousId` is refused."""
    if not isinstance(raw, dict):
        raise Refusal("a message must be a JSON object")
    # counted in UTF-8 bytes, as Segment counts its 32 KB: json.dumps' default \u escapes
    # made an accented letter 6 bytes, refusing valid messages of half the limit
    if len(json.dumps(raw, default=str, ensure_ascii=False).encode("utf-8",
                                                                   "surrogatepass")) > \
            MAX_MESSAGE_BYTES:
        raise Refusal("message larger than 32 KB")
    try:  # marshmallow's wire schema, or the same reading without it (tracking.message)
        msg = wire_message.load(raw if call == "batch" else {**raw, "type": call})
    except wire_message.Refused as exc:
        raise Refusal(json.dumps(exc.messages, default=str)[:500]) from None
    kind = msg.get("type")
    if kind is None:
        raise Refusal("a batch message needs a type")
    if policy.caller == "client" and kind not in ("page", "track", "identify"):
        raise Refusal(f"a client write key cannot send {kind} calls")
    email = _address(msg)
    keys = []
    if policy.caller == "client" and not msg.get("anonymousId"):
        raise Refusal("client write keys name visitors by anonymousId; a userId is the "
                      "site's own identity, which only server keys may send")
    if msg.get("userId") and policy.caller == "server":  # a client key's is not read at all
        keys.append(visitor_key("user", msg["userId"]))
    if kind == "alias":
        keys += [visitor_key("user", msg["previousId"]), visitor_key("anon", msg["previousId"])]
    if msg.get("anonymousId"):
        keys.append(visitor_key("anon", msg["anonymousId"]))
    base = {"email": email or ANONYMOUS, "source": SOURCE,
            "idempotency_key": message_id(msg, received, position)[:256],
            "occurred_at": occurred_at(msg, batch_sent_at, received, policy.caller)}
    try:
        event = _event(kind, msg, base, policy)
    except ModelError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False))
        raise Refusal(problems[:500]) from None
    client = policy.caller == "client"
    whole = isinstance(event, PurchaseRefunded) and full_refund(msg["properties"])
    person = kind != "alias" and bool(msg.get("userId")) and policy.caller == "server"
    return Tracked(keys=tuple(dict.fromkeys(keys)), email=email, event=event,
                   trusted=not client, creates=not (client and policy.captcha_required),
                   person=person, full_refund=whole)
