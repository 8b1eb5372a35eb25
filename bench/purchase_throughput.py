"""Purchase webhooks (issue 5): signed generic purchases per second against the same
purchases sent as canonical events to /ingest, on the same store and server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from bench.harness import compare_over_http
from leadscore.config import Settings

TOKEN, SECRET, WRITERS = "bench-token", "bench-secret", 8


def _purchase(i: int, prefix: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{i}", "type": "purchase", "order_id": f"{prefix}-order-{i}",
            "email": f"{prefix}{i}@bench.example", "amount": "49.90", "currency": "EUR",
            "occurred_at": "2026-11-01T10:00:00Z"}


def webhook(base: str, session: Any, i: int) -> None:
    body = json.dumps(_purchase(i, "w")).encode()
    t = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    session.post(f"{base}/purchase_webhook/generic", data=body, timeout=60, headers={
        "Content-Type": "application/json",
        "Leadscore-Signature": f"t={t},v1={sig}"}).raise_for_status()


def ingest(base: str, session: Any, i: int) -> None:
    event = _purchase(i, "i")
    canonical = {"type": "purchase_made", "email": event["email"], "source": "generic",
                 "idempotency_key": event["id"], "occurred_at": event["occurred_at"],
                 "order_id": event["order_id"], "amount_minor": 4990, "currency": "EUR"}
    session.post(f"{base}/ingest", json=canonical, timeout=60, headers={
        "Authorization": f"Bearer {TOKEN}"}).raise_for_status()


def run(kinds: list[str], count: int = 300) -> None:
    print(f"\n## Purchases: {count} signed generic purchase webhooks against the same purchases "
          f"via /ingest, {WRITERS} writers")
    print(f"{'store':<10}{'webhook/s':>11}{'ingest/s':>10}{'webhook/ingest':>16}")
    settings = Settings(api_token=TOKEN, purchase_secret=SECRET, log_level="WARNING")
    for kind in kinds:
        via_ingest, via_webhook = compare_over_http(kind, settings, count, ingest, webhook,
                                                    WRITERS)
        print(f"{kind:<10}{via_webhook:>11.0f}{via_ingest:>10.0f}"
              f"{via_webhook / via_ingest:>16.2f}")
