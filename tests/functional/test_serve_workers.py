"""`leadscore serve --workers 2` (issue 20): each gunicorn worker builds its own store after
the fork, their writers queue on the store's file lock, and every event counts exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from emulator import free_port, wait_until_serving

from leadscore.domain.identity import lead_id_for
from leadscore.store.sqlite import SqliteStore

BIN = Path(sys.executable).parent / "leadscore"
TOKEN, LEADS, REQUESTS = "workers-token", 3, 80


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def test_two_workers_write_the_same_leads_and_every_event_counts_once(tmp_path: Path) -> None:
    # GIVEN `leadscore serve` with two worker processes on one SQLite file
    db, port = tmp_path / "workers.db", free_port()
    env = {**os.environ, "LEADSCORE_API_TOKEN": TOKEN, "LEADSCORE_STORE": f"sqlite:///{db}",
           "LEADSCORE_HOME": str(tmp_path), "LEADSCORE_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "2",
                                "--threads", "4", "--no-access-log"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base, now = f"http://127.0.0.1:{port}", datetime.now(UTC)

    def send(i: int) -> int:
        body = {"type": "activity", "email": f"lead{i % LEADS}@workers.example",
                "source": "workers", "idempotency_key": f"w{i}",
                "occurred_at": (now - timedelta(seconds=i)).isoformat(),
                "activity": "website_visit"}
        # a new connection per request, so both workers accept some of them
        answer = requests.post(f"{base}/ingest", json=body, timeout=60, headers={
            "Authorization": f"Bearer {TOKEN}", "Connection": "close"})
        return answer.status_code

    try:
        wait_until_serving(base)
        # the first worker may serve before gunicorn has forked the second: wait for it
        deadline = time.monotonic() + 30
        while len(workers := _children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # WHEN eight clients send requests for the same three leads at once (each twice,
        # as a retrying sender does)
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(send, [*range(REQUESTS), *range(REQUESTS)]))
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    # THEN there were two workers, every request was answered 2xx, nobody met a locked
    # database, and each lead holds exactly its events, each counted once
    assert len(workers) == 2, workers
    assert all(200 <= code < 300 for code in codes), codes
    assert "database is locked" not in output and "Traceback" not in output, output[-2000:]
    store = SqliteStore(db)
    for n in range(LEADS):
        lead_id = lead_id_for(f"lead{n}@workers.example")
        mine = len(range(n, REQUESTS, LEADS))
        assert len(store.history(lead_id)) == mine
        lead = store.get_lead(lead_id)
        assert lead is not None and sum(lead.counters.values()) == mine
    store.close()
