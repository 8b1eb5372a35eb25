"""One SendGrid batch (issue 4): 1,000 signed events over 100 leads in one request, against
the raw write rate of the same 100 lead documents, and the store commits it took."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.harness import local_server, new_store
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.server import build_app
from leadscore.service import writes as uow
from tests.signatures import SendGridSigner

EVENTS, LEADS = 1000, 100


def measure(kind: str) -> dict[str, float]:
    signer, now = SendGridSigner(), datetime.now(UTC)
    stamp = int(now.timestamp())
    batch = [{"email": f"reader{i % LEADS}@bench.example", "timestamp": stamp - 3600 + i,
              "event": "open" if i % 3 else "click", "url": "https://example.org/p",
              "sg_event_id": f"{kind}-ev-{i}", "sg_message_id": f"m-{i % LEADS}"}
             for i in range(EVENTS)]
    body = json.dumps(batch).encode()
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        rules = default_rules()
        docs = [apply_events(None, lead_id_for(f"raw{i}@x.example"), f"raw{i}@x.example", [],
                             rules, now)[0] for i in range(LEADS)]
        start = time.perf_counter()
        for doc in docs:  # one request writes its leads one after another, so must this
            store.put_lead(doc)
        raw = LEADS / (time.perf_counter() - start)
        commits: list[int] = []
        real = uow.apply_events

        def counted(*args: Any, **kwargs: Any) -> Any:
            outcome = real(*args, **kwargs)
            commits.append(outcome.commits)
            return outcome

        uow.apply_events = counted  # type: ignore[assignment]
        install(Container(Settings(sendgrid_public_key=signer.public_key, log_level="WARNING"),
                          store=store, rules=rules))
        with local_server(build_app()) as base:
            start = time.perf_counter()
            answer = requests.post(f"{base}/email_webhook/sendgrid", data=body, timeout=300,
                                   headers={"Content-Type": "application/json",
                                            **signer.headers(body, stamp)})
            elapsed = time.perf_counter() - start
        install(None)
        uow.apply_events = real  # type: ignore[assignment]
        answer.raise_for_status()
        assert answer.json()["applied"] == EVENTS, answer.text
        store.close()
    return {"raw": raw, "events": EVENTS / elapsed, "commits": sum(commits)}


def run(kinds: list[str]) -> None:
    print(f"\n## Email batch: one SendGrid request of {EVENTS} events over {LEADS} leads")
    print(f"{'store':<10}{'raw docs/s':>12}{'events/s':>10}{'events/raw':>12}"
          f"{'commits':>9}{'per lead':>10}")
    for kind in kinds:
        r = measure(kind)
        print(f"{kind:<10}{r['raw']:>12.0f}{r['events']:>10.0f}{r['events'] / r['raw']:>12.2f}"
              f"{r['commits']:>9.0f}{r['commits'] / LEADS:>10.2f}")
    print("events/raw: events applied per second against lead documents written per second;"
          " goal: one commit per lead")
