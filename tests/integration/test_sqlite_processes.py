"""Writers in several processes (`leadscore serve --workers N`, issue 20): every process
writes through its own group commit, and they queue on one file lock beside the database,
so no write is lost, no event counts twice and nobody meets "database is locked"."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from leadscore.domain.identity import lead_id_for
from leadscore.store.sqlite import SqliteStore

PROCESSES, THREADS, REQUESTS, LEADS = 3, 4, 40, 5

# One writer process: THREADS threads, each ingesting REQUESTS requests of two events (two
# leads of the same LEADS, so every process writes the same leads at once); half of them
# sent twice, as a retrying sender does. It prints the errors it met, one a line.
WRITER = """
import sys, threading
from datetime import UTC, datetime, timedelta
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.rules import default_rules
from leadscore.service.ingest import ingest
from leadscore.store.sqlite import SqliteStore

path, me, threads, requests, leads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
store, rules, now, errors = SqliteStore(path), default_rules(), datetime.now(UTC), []

def event(key, n):
    return EVENT_ADAPTER.validate_python({
        "type": "activity", "email": f"lead{n % leads}@procs.example", "source": "procs",
        "idempotency_key": key, "occurred_at": now - timedelta(seconds=n),
        "activity": "website_visit"})

def work(t):
    for i in range(requests):
        n = t * requests + i
        batch = [event(f"{me}-{t}-{i}-{k}", n + k) for k in (0, 1)]
        for _ in range(1 + i % 2):  # odd requests are sent again (ledger de-duplicates)
            try:
                ingest(store, rules, batch, now)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for t in pool: t.start()
for t in pool: t.join()
store.close()
print("\\n".join(errors))
"""


def test_writers_in_several_processes_lose_nothing_and_count_nothing_twice(
        tmp_path: Path) -> None:
    # GIVEN one database, created before the writers start (as `serve` does)
    db = tmp_path / "procs.db"
    SqliteStore(db).close()
    # WHEN several processes, each with several threads, ingest into the same leads at once
    env = {**os.environ, "LEADSCORE_LOG_LEVEL": "WARNING"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"p{p}", str(THREADS),
                                 str(REQUESTS), str(LEADS)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for p in range(PROCESSES)]
    results = [w.communicate(timeout=300) for w in writers]
    # THEN every process finished without an error (no "database is locked", no 5xx)
    assert [w.returncode for w in writers] == [0] * PROCESSES, [r[1][-2000:] for r in results]
    assert [r[0].strip() for r in results] == [""] * PROCESSES
    # AND every event is in its lead's history exactly once, and counted exactly once
    store, sent = SqliteStore(db), PROCESSES * THREADS * REQUESTS * 2
    histories = {n: store.history(lead_id_for(f"lead{n}@procs.example")) for n in range(LEADS)}
    assert sum(len(h) for h in histories.values()) == sent
    keys = [entry.entry_id for h in histories.values() for entry in h]
    assert len(set(keys)) == sent
    counted = 0.0
    for n in range(LEADS):
        lead = store.get_lead(lead_id_for(f"lead{n}@procs.example"))
        assert lead is not None
        counted += sum(lead.counters.values())
    assert counted == sent
    store.close()


def test_a_transaction_holds_the_file_lock_that_other_processes_wait_on(
        tmp_path: Path) -> None:
    # GIVEN a store, and a unit of work open in it (a transaction not committed yet)
    store = SqliteStore(tmp_path / "lock.db")
    lock = str(tmp_path / "lock.db") + "-writers.lock"
    probe = os.open(lock, os.O_RDWR)  # another open file: flock treats it as another process
    opened, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.unit_of_work():
            opened.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert opened.wait(10)
    # WHEN another process tries the lock while the transaction is open
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        taken_while_open = True
    except BlockingIOError:
        taken_while_open = False
    release.set()
    holder.join(10)
    # THEN it could not have it, and it can once the transaction committed
    assert not taken_while_open
    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(probe, fcntl.LOCK_UN)
    os.close(probe)
    store.close()

