"""Delivering recorded stage changes to sales: a Pub/Sub topic and/or signed webhooks.

Each pending change goes to every sink; a sink that fails is retried with exponential
backoff (tenacity) within this call, and if it still fails the change stays pending with a
later next attempt, for the next request or the scheduled job. Delivery is at least once:
receivers drop repeats by the message's `id`.

Every worker of `serve --workers N` (and the decay job, on another instance) sweeps the
same outbox, so a sweep takes one change at a time with a claim (`OutboxClaims`: its next
attempt moves to `LEASE` from the moment of that claim, atomically in the store): two sweeps
never send the same change at once, however long the sweep runs. A sweeper that dies after
its claim leaves the change due again when the lease runs out, so a crash still means
"later", never "lost".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from leadscore import logs
from leadscore.service import erasure
from leadscore.service.outbound_sync import clock_of, outbox_of
from leadscore.store.port import LeadStore

Sink = Callable[[dict[str, Any]], None]
SIGNATURE_HEADER = "Leadscore-Signature"
MAX_BACKOFF = timedelta(hours=1)
# longer than one change's delivery (each sink's tries and their timeouts); a sweeper that
# dies leaves its claimed change due again then
LEASE = timedelta(minutes=15)


class DeliveryFailed(Exception):
    pass


def webhook_sink(url: str, secret: str, timeout_s: float = 10) -> Sink:
    """POST the change as JSON, signed like our generic format: t=<unix>,v1=<hex HMAC-SHA256
    of "<t>.<body>"> in `Leadscore-Signature`; any 2xx is delivered."""

    def send(message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        stamp = str(int(time.time()))
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json", "Leadscore-Delivery-Id": str(message["id"]),
            SIGNATURE_HEADER: f"t={stamp},v1={mac.hexdigest()}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
                answer.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from None

    return send


class HandoverReport(BaseModel):
    delivered: int = 0
    failed: int = 0


def _with_retries(sink: Sink, message: dict[str, Any], attempts: int, base_s: float) -> bool:
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    try:
        for attempt in Retrying(stop=stop_after_attempt(attempts), reraise=True,
                                wait=wait_exponential(multiplier=base_s, max=30),
                                retry=retry_if_exception_type(Exception)):
            with attempt:
                sink(message)
    except Exception as exc:  # noqa: BLE001 - any sink failure leaves the change pending
        logs.warning("handover delivery failed", handover_id=message["id"],
                     error=type(exc).__name__)
        return False
    return True


def deliver_pending(store: LeadStore, sinks: list[Sink], now: datetime | Callable[[], datetime],
                    *, attempts: int = 3, base_s: float = 0.5,
                    limit: int = 100) -> HandoverReport:
    """`now`: the clock (the container's `now`), read again at each claim and backoff, as
    one change can take each sink's tries and timeouts (~31 s) and 100 of them outlast the
    lease."""
    report = HandoverReport()
    if not sinks:
        return report
    outbox = outbox_of(store)
    clock = clock_of(now)
    started = clock()  # what is due then: one that fails in this sweep is not tried again
    for _ in range(limit):
        claimed_at = clock()
        claimed = outbox.claim_handovers(started, claimed_at + LEASE, limit=1)
        if not claimed:
            break
        change = claimed[0]
        if erasure.erased_lead(store, change.lead_id):  # a backstop: erasure deletes these
            store.record_handover(change.model_copy(update={"email": "", "delivered": True}))
            continue  # never sent, and the address is not kept
        message = change.message()
        ok = all([_with_retries(sink, message, attempts, base_s) for sink in sinks])
        change.attempts += 1
        if ok:
            change.delivered = True
            report.delivered += 1
        else:
            change.next_attempt_at = clock() + min(MAX_BACKOFF,
                                               timedelta(minutes=2 ** change.attempts))
            report.failed += 1
        store.record_handover(change)
    return report
