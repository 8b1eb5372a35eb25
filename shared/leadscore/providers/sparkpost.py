# ruff: noqa: E501  (the meaning table in the docstring has long rows; code lines stay short)
"""SparkPost event webhooks: a JSON array of `{"msys": {"<class>": {...}}}` per request.

SparkPost signs nothing; a webhook's `auth_type: basic` sends HTTP basic auth, checked
against `LEADSCORE_SPARKPOST_BASIC_AUTH` (`user:password`, several comma-separated). When a
webhook is created or changed SparkPost posts `[{"msys": {}}]` and needs a 200, or refuses
the change: that exact ping is answered 200 before any check (it writes nothing). Events are
keyed by `event_id` (documented unique per event), so a redelivered batch counts nothing.
Times are `timestamp`: epoch seconds as a string, or ISO 8601 on some events.

What each documented event means here (sources: developers.sparkpost.com/api/webhooks and
its event reference, support.sparkpost.com bounce-classification-codes; django-anymail's
tests/test_sparkpost_webhooks.py):

| class / type | canonical event |
|---|---|
| message_event delivery | email_delivered |
| message_event bounce, out_of_band: bounce_class 10 (invalid recipient), 30 (no RCPT) | email_bounced hard |
| ... bounce_class 1 (undetermined), 20-24 (soft, DNS, mailbox full, too large, timeout), 40 (generic), 70 (transient) | email_bounced soft |
| ... bounce_class 90 (unsubscribe request) | email_unsubscribed |
| ... bounce_class 25 (admin), 50-54 (blocks, spam, relay denied), 60 (auto-reply), 80 (subscribe request), 100 (challenge) | acknowledged, ignored (not shown to be the address) |
| message_event spam_complaint | email_complained |
| message_event injection, delay, policy_rejection, sms_status | acknowledged, ignored |
| track_event open, amp_open | email_opened (no machine-open flag is documented) |
| track_event initial_open, amp_initial_open | acknowledged, ignored: the same view fires `open` too (top and bottom pixel); counting both would double every open. A message clipped before its bottom pixel loses that open. |
| track_event click, amp_click | email_clicked, url = `target_link_url` |
| unsubscribe_event list_unsubscribe, link_unsubscribe | email_unsubscribed |
| gen_event, relay_event, ab_test_event, ingest_event, `{"msys": {}}`, unknown | acknowledged, ignored |
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.events import Event
from leadscore.errors import ValidationFailed
from leadscore.providers.base import Edges, Inbound, ParseResult, Reply, WebhookProvider
from leadscore.providers.basic_auth import verify_basic
from leadscore.providers.email_events import canonical, iso_time
from leadscore.providers.wire import parse_json

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "sparkpost"
MAX_BATCH = 10_000
EPOCH_SECONDS = re.compile(r"^[0-9]{1,11}$")
HARD_CLASSES = {"10", "30"}
SOFT_CLASSES = {"1", "20", "21", "22", "23", "24", "40", "70"}
UNSUBSCRIBE_CLASSES = {"90"}
TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "delivery": ("email_delivered", {}),
    "spam_complaint": ("email_complained", {}),
    "open": ("email_opened", {}),
    "amp_open": ("email_opened", {}),
    "click": ("email_clicked", {}),
    "amp_click": ("email_clicked", {}),
    "list_unsubscribe": ("email_unsubscribed", {}),
    "link_unsubscribe": ("email_unsubscribed", {}),
}
DOCUMENTED = {*TYPES, "bounce", "out_of_band", "injection", "delay", "policy_rejection",
              "sms_status", "initial_open", "amp_initial_open", "generation_failure",
              "generation_rejection", "relay_injection", "relay_rejection", "relay_delivery",
              "relay_tempfail", "relay_permfail"}
CLASSES = {"message_event", "track_event", "gen_event", "unsubscribe_event", "relay_event",
           "ab_test_event", "ingest_event"}
PING: list[dict[str, Any]] = [{"msys": {}}]


def timestamp(value: Any) -> datetime | None:
    """Epoch seconds (a string or a number) or ISO 8601 with an offset; else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    if EPOCH_SECONDS.match(value):
        return datetime.fromtimestamp(int(value), UTC)
    return iso_time(value)


def meaning(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    kind = event.get("type")
    if kind in ("bounce", "out_of_band"):
        bounce_class = str(event.get("bounce_class"))
        if bounce_class in HARD_CLASSES:
            return "email_bounced", {"hard": True}
        if bounce_class in SOFT_CLASSES:
            return "email_bounced", {"hard": False}
        if bounce_class in UNSUBSCRIBE_CLASSES:
            return "email_unsubscribed", {}
        return None
    if not isinstance(kind, str) or kind not in TYPES:
        return None
    mapped, extra = TYPES[kind]
    if mapped == "email_clicked":
        link = event.get("target_link_url")
        extra = {"url": link if isinstance(link, str) else None}
    return mapped, extra


def label(event_class: str, event: dict[str, Any]) -> str:
    """What an ignored event was, in SparkPost's documented words only (log-safe)."""
    kind = event.get("type")
    name = kind if isinstance(kind, str) and kind in DOCUMENTED else "unknown"
    if name in ("bounce", "out_of_band"):
        name += f"/class-{str(event.get('bounce_class'))[:3]}"
    return f"{event_class if event_class in CLASSES else 'unknown'}/{name}"


def parse(raw: bytes) -> ParseResult:
    body = parse_json(raw)
    if not isinstance(body, list):
        raise ValidationFailed("SparkPost posts a JSON array of events", details=[
            {"field": "(body)", "problem": "not a list"}])
    if len(body) > MAX_BATCH:
        raise ValidationFailed(f"{len(body)} events in one request; the limit is {MAX_BATCH}")
    events: list[Event] = []
    ignored: list[str] = []
    for i, item in enumerate(body):
        msys = item.get("msys") if isinstance(item, dict) else None
        if not isinstance(msys, dict) or len(msys) != 1:
            ignored.append("ping" if msys == {} else "unknown")
            continue  # the ping, or a shape SparkPost does not document: ignored
        (event_class, event), = msys.items()
        if not isinstance(event, dict):
            ignored.append("unknown")
            continue
        mapped = meaning(event)
        at, email = timestamp(event.get("timestamp")), event.get("rcpt_to")
        if mapped is None or at is None or not isinstance(email, str):
            ignored.append(label(event_class, event))
            continue
        kind, extra = mapped
        event_id = event.get("event_id")
        key = (f"{event_class}:{event_id}" if isinstance(event_id, str) and event_id else
               f"{event.get('type')}:{event.get('message_id')}:{email.lower()}:{at.isoformat()}")
        events.append(canonical(f"{i}.msys.{event_class}", kind, email, SOURCE, key, at,
                                **extra))
    return ParseResult(events=events, ignored=ignored)


class SparkPost(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/sparkpost"
    settings = ("sparkpost_basic_auth",)

    def handshake(self, request: Inbound) -> Reply | None:
        """The test batch SparkPost posts when a webhook is saved: nothing to verify or write."""
        if len(request.raw) > 64:
            return None  # a ping is a few bytes: never parse a large body unverified
        try:
            body = json.loads(request.raw)
        except (ValueError, RecursionError):
            return None
        if body == PING:
            return Reply(200, {"status": "ignored", "message": "SparkPost ping"})
        return None

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify_basic(request.headers.get("authorization"), list(secrets),
                     "LEADSCORE_SPARKPOST_BASIC_AUTH")

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse(request.raw)


PROVIDER = SparkPost()
