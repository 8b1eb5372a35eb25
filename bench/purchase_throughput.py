"""Purchase webhooks (issue 5): signed generic purchases per second against the same
purchases sent as canonical events to /ingest, on the same store and server."""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import ThreadSessions, local_server, new_store, timed_parallel
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.server import build_app

TOKEN, SECRET, WRITERS = "bench-token", "bench-secret", 8


def _purchase(i: int, prefix: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{i}", "type": "purchase", "order_id": f"{prefix}-order-{i}",
            "email": f"{prefix}{i}@bench.example", "amount": "49.90", "currency": "EUR",
            "occurred_at": "2026-11-01T10:00:00Z"}


def measure(kind: str, count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        install(Container(Settings(api_token=TOKEN, purchase_secret=SECRET,
                                   log_level="WARNING"), store=store))
        session = ThreadSessions().get

        def webhook(event: dict[str, Any]) -> None:
            body = json.dumps(event).encode()
            t = str(int(time.time()))
            sig = hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
            session().post(f"{base}/purchase_webhook/generic", data=body, timeout=60, headers={
                "Content-Type": "application/json",
                "Leadscore-Signature": f"t={t},v1={sig}"}).raise_for_status()

        def ingest(event: dict[str, Any]) -> None:
            canonical = {"type": "purchase_made", "email": event["email"], "source": "generic",
                         "idempotency_key": event["id"], "occurred_at": event["occurred_at"],
                         "order_id": event["order_id"], "amount_minor": 4990,
                         "currency": "EUR"}
            session().post(f"{base}/ingest", json=canonical, timeout=60, headers={
                "Authorization": f"Bearer {TOKEN}"}).raise_for_status()

        with local_server(build_app()) as base:
            via_ingest = timed_parallel([_purchase(i, "i") for i in range(count)], ingest,
                                        WRITERS)
            via_webhook = timed_parallel([_purchase(i, "w") for i in range(count)], webhook,
                                         WRITERS)
        install(None)
        store.close()
    return via_webhook, via_ingest


def run(kinds: list[str], count: int = 300) -> None:
    print(f"\n## Purchases: {count} signed generic purchase webhooks against the same purchases "
          f"via /ingest, {WRITERS} writers")
    print(f"{'store':<10}{'webhook/s':>11}{'ingest/s':>10}{'webhook/ingest':>16}")
    for kind in kinds:
        webhook, ingest = measure(kind, count)
        print(f"{kind:<10}{webhook:>11.0f}{ingest:>10.0f}{webhook / ingest:>16.2f}")
