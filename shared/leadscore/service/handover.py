"""Delivering recorded stage changes to sales: a Pub/Sub topic, signed webhooks, Slack.

A change goes only to the sinks that do not have it yet: it remembers, by sink name, the
sinks that accepted it (`delivered_to`, stored after each one) and those that refused it
for good (`refused_by`), so one receiver's outage never repeats the change to the others.
Within a sweep a sink's failure is tried again (`attempts` tries, exponential backoff from
`base_s`, by tenacity), except a `PermanentDelivery` (Slack's 4xx such as invalid_blocks, a
webhook's 4xx, Pub/Sub's INVALID_ARGUMENT: resending cannot help), never tried again for
that change, and a sink that asked to wait (429, `Retry-After`): no more calls to it in
this sweep, and the change's next attempt waits at least that long. A change still missing
somewhere stays pending, next tried after 2, 4, 8... minutes (at most an hour); once it was
tried in GIVE_UP_TRIES sweeps and is GIVE_UP_AGE old it is given up, logged by its id.
Delivery is at least once: receivers drop repeats by the message's `id`.

A change closes (`delivered`) when every sink has it or refused it, when it is given up,
or when its lead was erased: it then keeps no address and expires KEEP_CLOSED later
(`expires_at`: Firestore's TTL policy deletes it; every store also purges expired ones at
the end of each sweep, and on Firestore those an older release closed without the field).

Every worker of `serve --workers N` (and the decay job, on another instance) sweeps the
same outbox, so a sweep takes one change at a time with a claim (`OutboxClaims`: its next
attempt moves to `LEASE` from the moment of that claim, atomically in the store): two sweeps
never send the same change at once while the lease lasts. Each write of the sweeper renews
its lease and applies only while the change is still its claim (`record_handover(change,
lease)`): one that outlasted its lease (a receiver slower than 15 minutes) and lost the
change to another sweeper has its writes dropped (logged), so it never reopens a change the
other closed, nor puts its address back. A sweeper that dies after
its claim leaves the change due again when the lease runs out, so a crash still means
"later", never "lost" (and the sinks it had already reached are not sent it again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from leadscore import logs
from leadscore.domain.outbox import StageChange
from leadscore.integrations.http_out import NoRedirects, retry_after_s
from leadscore.integrations.ports import (
    DeliveryError,
    NamedSink,
    PermanentDelivery,
    RetryableDelivery,
)
from leadscore.service import erasure
from leadscore.service.outbound_sync import clock_of, outbox_of
from leadscore.store.port import HandoverPurge, LeadStore

Sink = Callable[[dict[str, Any]], None]  # a NamedSink, or a bare callable named by position
SIGNATURE_HEADER = "Leadscore-Signature"
MAX_BACKOFF = timedelta(hours=1)
# longer than one change's delivery (each sink's tries and their timeouts); a sweeper that
# dies leaves its claimed change due again then
LEASE = timedelta(minutes=15)
# given up once tried in this many sweeps AND this old: a receiver down for a weekend
# still gets it (sweeps back off to one an hour), a dead one does not keep it for ever
GIVE_UP_TRIES = 10
GIVE_UP_AGE = timedelta(days=3)
KEEP_CLOSED = timedelta(days=30)  # a closed change (no address left) is deleted after this
RATE_LIMIT_REST = timedelta(minutes=1)  # a 429 without Retry-After
MAX_REST = timedelta(days=1)  # a longer Retry-After is not believed


class DeliveryFailed(RetryableDelivery):
    """The webhook receiver could not be reached (refused, timed out): try again later."""


def webhook_sink(url: str, secret: str, timeout_s: float = 10) -> NamedSink:
    """POST the change as JSON, signed like our generic format: t=<unix>,v1=<hex HMAC-SHA256
    of "<t>.<body>"> in `Leadscore-Signature`; any 2xx is delivered (see `_refusal` for the
    rest). Redirects are not followed. Named by a hash of its URL, which may hold a
    credential."""
    opener = urllib.request.build_opener(NoRedirects)

    def send(message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        stamp = str(int(time.time()))
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json", "Leadscore-Delivery-Id": str(message["id"]),
            SIGNATURE_HEADER: f"t={stamp},v1={mac.hexdigest()}"})
        try:
            with opener.open(request, timeout=timeout_s) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            with error:
                raise _refusal(error.code, error.headers.get("Retry-After")) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from None

    return NamedSink("webhook:" + hashlib.sha256(url.encode()).hexdigest()[:16], send)


def _refusal(status: int, retry_after: str | None) -> DeliveryError:
    """A webhook's answer other than 2xx: 429 and 503 wait their Retry-After; 408, 425 and
    5xx, and a redirect (not followed: a receiver's address to fix, logged by the sweep with
    its status) may pass later; any other 4xx refuses for good."""
    if status in (429, 503):
        return RetryableDelivery(f"webhook {status}", retry_after_s(retry_after), status)
    if 400 <= status < 500 and status not in (408, 425):
        return PermanentDelivery(f"webhook {status}", status)
    return RetryableDelivery(f"webhook {status}", status=status)


def pubsub_sink(topic: str, publish: Callable[[str, dict[str, Any]], None]) -> NamedSink:
    """Publish to `topic`. The client library already retried Pub/Sub's transient codes;
    a message over its size limit, or INVALID_ARGUMENT about the message, can never be
    published, so it refuses for good; anything else (NOT_FOUND, PERMISSION_DENIED, an
    INVALID_ARGUMENT naming the topic as a malformed name: a deployment to fix) is tried
    again later."""

    def send(message: dict[str, Any]) -> None:
        try:
            publish(topic, message)
        except Exception as exc:
            from google.api_core.exceptions import InvalidArgument
            from google.cloud.pubsub_v1.publisher.exceptions import MessageTooLargeError

            if isinstance(exc, MessageTooLargeError) or (
                    isinstance(exc, InvalidArgument) and not _bad_name(exc)):
                raise PermanentDelivery(f"pubsub {type(exc).__name__}", 400) from None
            raise

    return NamedSink(f"pubsub:{topic}", send)


# Pub/Sub's INVALID_ARGUMENT for a malformed resource name: "Invalid [topics] name: (...)",
# "Invalid resource name ..."; it is the deployment's topic setting, not the message
_BAD_NAME = re.compile(r"invalid \[?\w+\]? name|invalid resource name", re.IGNORECASE)


def _bad_name(exc: Exception) -> bool:
    return _BAD_NAME.search(str(getattr(exc, "message", "") or exc)) is not None


class HandoverReport(BaseModel):
    delivered: int = 0  # closed: every sink has it
    refused: int = 0  # closed: some sink refused it for good (the others have it)
    given_up: int = 0  # closed: some sink still failed after GIVE_UP_TRIES and GIVE_UP_AGE
    failed: int = 0  # still pending: tried again later


def sink_name(sink: Sink, position: int) -> str:
    """A NamedSink's name; a bare callable (tests, scripts) is named by its place."""
    return sink.name if isinstance(sink, NamedSink) else f"sink{position}"


def _rest_asked(exc: Exception) -> timedelta | None:
    """How long a sink asked to be left alone (a 429, a Retry-After), or None."""
    if not isinstance(exc, RetryableDelivery):
        return None
    if exc.retry_after_s is not None:  # clamped first: a timedelta overflows near 1e14 s
        return timedelta(seconds=min(MAX_REST.total_seconds(), max(0.0, exc.retry_after_s)))
    return RATE_LIMIT_REST if exc.status == 429 else None


def _worth_retrying_now(exc: BaseException) -> bool:
    return isinstance(exc, Exception) and not isinstance(exc, PermanentDelivery) and (
        _rest_asked(exc) is None)


def _with_retries(sink: Sink, message: dict[str, Any], attempts: int, base_s: float) -> None:
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    for attempt in Retrying(stop=stop_after_attempt(attempts), reraise=True,
                            wait=wait_exponential(multiplier=base_s, max=30),
                            retry=retry_if_exception(_worth_retrying_now)):
        with attempt:
            sink(message)


def _closed(change: StageChange, at: datetime, **update: Any) -> StageChange:
    return change.model_copy(update={"delivered": True, "email": "", "closed_at": at,
                                     "expires_at": at + KEEP_CLOSED, **update})


def _lost(change: StageChange) -> None:
    logs.warning("handover claim lost, write dropped", handover_id=change.id)


def _send_where_missing(store: LeadStore, change: StageChange, lease: datetime,
                        sinks: dict[str, Sink], resting: dict[str, datetime],
                        clock: Callable[[], datetime], attempts: int,
                        base_s: float) -> tuple[StageChange, datetime] | None:
    """Send to each sink without the change, each outcome stored before the next sink, so a
    sweeper that dies mid-way resends to none that had it. Each such write renews the claim
    (`lease`: its end); the change and the claim's end, or None once the claim was lost
    (this sweeper outlasted it and another took the change: it is that one's now)."""
    message = change.message()
    missing = [n for n in sinks if n not in change.delivered_to and n not in change.refused_by]
    for n, name in enumerate(missing):
        if name in resting:
            continue  # asked to wait, earlier in this sweep
        try:
            _with_retries(sinks[name], message, attempts, base_s)
        except PermanentDelivery as exc:
            logs.warning("handover refused for good", handover_id=change.id, sink=name,
                         status=exc.status, reason=exc.reason)
            change = change.model_copy(update={"refused_by": [*change.refused_by, name]})
        except Exception as exc:  # noqa: BLE001 - any other failure leaves it pending
            rest = _rest_asked(exc)
            if rest is not None:
                resting[name] = clock() + rest
            logs.warning("handover delivery failed", handover_id=change.id, sink=name,
                         error=type(exc).__name__, status=getattr(exc, "status", None),
                         rest_s=None if rest is None else rest.total_seconds())
            continue
        else:
            change = change.model_copy(update={"delivered_to": [*change.delivered_to, name]})
        if n < len(missing) - 1:  # more sinks to go: keep this one's outcome now
            renewed = clock() + LEASE
            change = change.model_copy(update={"next_attempt_at": renewed})
            if not store.record_handover(change, lease):
                _lost(change)
                return None
            lease = renewed
    return change, lease


def _settled(change: StageChange, sinks: Sequence[str], resting: dict[str, datetime],
             now: datetime) -> tuple[StageChange, str]:
    """The change after its sweep: closed, given up, or pending with its next attempt; and
    the report's count it adds to."""
    change = change.model_copy(update={"attempts": change.attempts + 1})
    missing = [n for n in sinks if n not in change.delivered_to and n not in change.refused_by]
    if not missing:
        return _closed(change, now), "refused" if change.refused_by else "delivered"
    if change.attempts >= GIVE_UP_TRIES and now - change.at >= GIVE_UP_AGE:
        logs.warning("handover given up", handover_id=change.id, sinks=",".join(missing),
                     attempts=change.attempts)
        return _closed(change, now, given_up=True), "given_up"
    later = now + min(MAX_BACKOFF, timedelta(minutes=2 ** min(change.attempts, 6)))
    later = max([later, *(resting[n] for n in missing if n in resting)])
    return change.model_copy(update={"next_attempt_at": later}), "failed"


def deliver_pending(store: LeadStore, sinks: Sequence[Sink],
                    now: datetime | Callable[[], datetime], *, attempts: int = 3,
                    base_s: float = 0.5, limit: int = 100) -> HandoverReport:
    """`now`: the clock (the container's `now`), read again at each claim and backoff, as
    one change can take each sink's tries and timeouts (~31 s) and 100 of them outlast the
    lease. `sinks`: NamedSinks (a bare callable is named by its place in the list)."""
    report = HandoverReport()
    if not sinks:
        return report
    outbox = outbox_of(store)
    clock = clock_of(now)
    named = {sink_name(sink, n): sink for n, sink in enumerate(sinks)}
    resting: dict[str, datetime] = {}  # sinks that asked to wait, until when
    started = clock()  # what is due then: one that fails in this sweep is not tried again
    for _ in range(limit):
        claimed_at = clock()
        claimed = outbox.claim_handovers(started, claimed_at + LEASE, limit=1)
        if not claimed:
            break
        change, lease = claimed[0], claimed_at + LEASE
        if erasure.erased_lead(store, change.lead_id):  # a backstop: erasure deletes these
            if not store.record_handover(_closed(change, clock()), lease):
                _lost(change)
            continue  # never sent, and the address is not kept
        sent = _send_where_missing(store, change, lease, named, resting, clock, attempts,
                                   base_s)
        if sent is None:
            continue
        settled, outcome = _settled(sent[0], list(named), resting, clock())
        if store.record_handover(settled, sent[1]):
            setattr(report, outcome, getattr(report, outcome) + 1)
        else:
            _lost(settled)
    purge_closed_handovers(store, clock())
    return report


def purge_closed_handovers(store: LeadStore, now: datetime) -> int:
    """Closed changes past `expires_at` go (on Firestore its TTL policy deletes them too)."""
    purged = store.purge_handovers(now) if isinstance(store, HandoverPurge) else 0
    if purged:
        logs.info("expired handovers purged", purged=purged)
    return purged
