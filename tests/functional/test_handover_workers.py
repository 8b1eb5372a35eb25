"""`leadscore serve --workers N` sweeps the handover outbox in every worker: two processes
sweeping one SQLite file at the same time must send each stage change once (a claim with a
lease, store/port.py `OutboxClaims`), and a sweeper that dies mid-way loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from fakes.server import FakeApi, serving
from werkzeug.wrappers import Request, Response

from leadscore.domain.outbox import StageChange
from leadscore.domain.state import LeadState
from leadscore.service.handover import LEASE, deliver_pending
from leadscore.store.port import LeadWrite
from leadscore.store.sqlite import SqliteStore

CHANGES = 12

# one sweep in a process of its own, as each worker of `serve --workers 2` runs it
SWEEP = """
import sys
from datetime import datetime
from leadscore.service.handover import deliver_pending, webhook_sink
from leadscore.store.sqlite import SqliteStore
path, url, now, start = sys.argv[1:5]
while datetime.now().timestamp() < float(start):
    pass
report = deliver_pending(SqliteStore(path), [webhook_sink(url, "s")],
                         datetime.fromisoformat(now), attempts=1)
print(report.delivered)
"""


class SlowReceiver(FakeApi):
    """Takes 50 ms to accept each stage change, so two sweeps overlap for their whole run."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()

    def handle(self, request: Request) -> Response:
        time.sleep(0.05)
        self.ids[json.loads(request.get_data())["id"]] += 1
        return Response("ok")


@pytest.fixture
def receiver() -> Iterator[tuple[SlowReceiver, str]]:
    made = SlowReceiver()
    with serving(made) as url:
        yield made, url + "/hook"


def pending_changes(path: Path, count: int) -> None:
    store = SqliteStore(path)
    write_changes(store, count)
    store.close()


def write_changes(store: Any, count: int) -> None:
    """`count` leads, each with one stage change due at NOW."""
    for n in range(count):
        lead = LeadState(lead_id=f"l_{n:03d}", email=f"p{n}@example.com", score=60,
                         stage="mql", grade="B2", scored_at=NOW)
        change = StageChange(id=f"h_{n:03d}", lead_id=lead.lead_id, email=lead.email,
                             stage_before="lead", stage_after="mql", score=60, grade="B2",
                             at=NOW, next_attempt_at=NOW)
        store.transact(lead.lead_id, [], lambda snap, lead=lead, change=change: (
            LeadWrite(lead=lead, fields="replace", outbox=[change]), None))


def test_two_worker_processes_sweeping_at_once_send_each_change_once(
        tmp_path: Path, receiver: tuple[SlowReceiver, str]) -> None:
    received, url = receiver
    path = tmp_path / "leads.db"
    # GIVEN twelve stage changes waiting in the outbox of one SQLite file
    pending_changes(path, CHANGES)
    # WHEN two processes sweep it at the same moment, as two workers do
    start = str(time.time() + 3)  # both have imported everything by then
    workers = [subprocess.Popen([sys.executable, "-c", SWEEP, str(path), url,
                                 (NOW + timedelta(minutes=1)).isoformat(), start],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    delivered = [int(w.communicate(timeout=120)[0].strip() or 0) for w in workers]
    # THEN every change reached the receiver exactly once, shared between the two
    assert sorted(received.ids) == [f"h_{n:03d}" for n in range(CHANGES)]
    assert set(received.ids.values()) == {1}
    assert sum(delivered) == CHANGES and min(delivered) > 0  # both swept at once
    store = SqliteStore(path)
    assert store.pending_handovers(NOW + timedelta(days=1)) == []
    store.close()


def test_a_sweeper_that_dies_mid_way_loses_nothing(
        tmp_path: Path, receiver: tuple[SlowReceiver, str]) -> None:
    received, url = receiver
    path = tmp_path / "leads.db"
    pending_changes(path, 3)
    store = SqliteStore(path)
    # GIVEN a sweep that claimed a change and died before delivering it
    claimed = store.claim_handovers(NOW, NOW + LEASE, limit=1)
    assert [c.id for c in claimed] == ["h_000"]
    # WHEN another worker sweeps before the lease runs out THEN it sends the other two
    from leadscore.service.handover import webhook_sink

    sinks = [webhook_sink(url, "s")]
    assert deliver_pending(store, sinks, NOW + timedelta(minutes=1)).delivered == 2
    # WHEN a sweep runs after the lease THEN the dead sweeper's change is delivered too
    assert deliver_pending(store, sinks, NOW + LEASE).delivered == 1
    assert received.ids == dict.fromkeys(["h_000", "h_001", "h_002"], 1)
    store.close()
