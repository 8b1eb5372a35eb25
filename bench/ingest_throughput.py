"""Ingestion throughput (issues 2 and 20): `POST /ingest` end to end with 8 concurrent
writers, against the raw write rate of the same rows, and a hot lead (every event for one
lead) against the same events spread over leads, and a hello-world function on the same
server stack (the HTTP floor: the most one-event requests could reach).

The server is `leadscore serve` in its own process (gunicorn, threads), as an operator runs
it. The requests come from both clients of `bench/clients.py` in turn: wrk, a C client
whose CPU per request is a few microseconds, which judges the goal, and Python threads,
which spent as much CPU per call as a hello-world server (so their floor measured the
client). Raw, on SQLite: one
ledger row and one lead row per event, serialised beforehand, written with plain SQL by 8
threads, one transaction each (writers queue on a lock, as the adapter's do). On Firestore:
the same lead documents written by the store.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.clients import CLIENTS, JUDGE, Client, Planned, ingest_post
from bench.harness import hello_served, new_store, served, timed_parallel, verdict
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.providers import canonical
from leadscore.service.ingest import ingest
from leadscore.store.sqlite import LEAD_UPSERT, SYNCHRONOUS, SqliteStore, lead_row

TOKEN = "bench-token"
WRITERS, BATCH, GOAL = 8, 25, 0.5


def _event(i: int, email: str, tag: str = "ev") -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=i)
    return {"type": "activity", "email": email, "source": "bench",
            "idempotency_key": f"{tag}-{i}", "occurred_at": at.isoformat(),
            "activity": "website_visit"}


def raw_sql(path: Path, events: int, sync: str = SYNCHRONOUS) -> float:
    """Rows per event written directly: the ledger row and the lead row, one transaction."""
    rules, now = default_rules(), datetime.now(UTC)
    parsed = canonical.parse(json.dumps([_event(i, f"raw{i}@bench.example", "raw")
                                         for i in range(events)]).encode())
    rows = []
    for event in parsed:
        lead, entries = apply_events(None, lead_id_for(event.email), event.email, [event],
                                     rules, now)
        rows.append(((lead.lead_id, entries[0].entry_id, entries[0].at.isoformat(),
                      entries[0].model_dump_json()),
                     lead_row(lead)))
    SqliteStore(path).close()  # the schema and indexes, as the adapter creates them
    local, lock = threading.local(), threading.Lock()

    def write(row: tuple[tuple[Any, ...], tuple[Any, ...]]) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(path, isolation_level=None,
                                                check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={sync}")  # the adapter's durability
        with lock:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR IGNORE INTO history (lead_id, entry_id, at, doc) "
                         "VALUES (?, ?, ?, ?)", row[0])
            conn.execute(LEAD_UPSERT, row[1])  # the adapter's statement
            conn.execute("COMMIT")

    return timed_parallel(rows, write, WRITERS)


def measure(kind: str, events: int, drive: Client) -> dict[str, float]:
    rules, now = default_rules(), datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        normal = 0.0
        if kind == "sqlite":
            raw = raw_sql(Path(folder) / "raw.db", events)
            normal = raw_sql(Path(folder) / "normal.db", events, sync="NORMAL")
            env = {"LEADSCORE_STORE": f"sqlite:///{store.path}"}
        else:
            docs = [apply_events(None, lead_id_for(e), e, [], rules, now)[0]
                    for e in (f"lead{i}@bench.example" for i in range(events))]
            raw = timed_parallel(docs, store.put_lead, WRITERS)
            env = {"LEADSCORE_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": "leadscore-bench",
                   "LEADSCORE_FIRESTORE_COLLECTION": store._leads.id}
        # the ingest use case in process: scoring and the store, without HTTP
        parsed = canonical.parse(json.dumps([_event(i, f"direct{i}@bench.example")
                                             for i in range(events)]).encode())
        direct = timed_parallel(parsed, lambda e: ingest(store, rules, [e], now), WRITERS)
        with served({**env, "LEADSCORE_API_TOKEN": TOKEN}) as base, \
                hello_served(Path(folder)) as hello:
            def posts(bodies: list[Any]) -> list[Planned]:
                return [ingest_post(body, TOKEN) for body in bodies]

            say_hello = [Planned("/")] * events
            # rules and schemas are built on a server's first requests
            drive(base, posts([_event(i, f"warm{i}@bench.example", "warm")
                               for i in range(WRITERS)]), WRITERS)
            drive(hello, say_hello[:WRITERS], WRITERS)
            # the floor before and after the one-event requests: a burst of load elsewhere
            # on the machine then weighs on both sides
            floor = drive(hello, say_hello, WRITERS).rate
            spread = drive(base, posts([_event(i, f"spread{i}@bench.example")
                                        for i in range(events)]), WRITERS).rate
            floor = (floor + drive(hello, say_hello, WRITERS).rate) / 2
            hot = drive(base, posts([_event(i, "hot@bench.example") for i in range(events)]),
                        WRITERS).rate
            batches = [[_event(i * BATCH + k, f"b{i * BATCH + k}@bench.example", "batch")
                        for k in range(BATCH)] for i in range(events // BATCH)]
            batched = drive(base, posts(batches), WRITERS).rate * BATCH
        if kind == "sqlite":  # the disk's sync latency drifts: raw before and after, averaged
            raw = (raw + raw_sql(Path(folder) / "raw2.db", events)) / 2
        lead = store.get_lead(lead_id_for("hot@bench.example"))
        assert lead is not None and lead.counters["activity"] == events, "hot lead lost events"
        store.close()
    return {"raw": raw, "direct": direct, "spread": spread, "hot": hot, "floor": floor,
            "batched": batched, "normal": normal}


def run(kinds: list[str], events: int = 400) -> tuple[dict[str, tuple[float, float]], bool]:
    """Every store with each client; returns, per client, SQLite's e2e/raw (and e2e against
    raw writes without a sync), and whether the goal holds with the judging client."""
    print(f"\n## Ingestion: {events} events, {WRITERS} concurrent writers, POST /ingest to "
          "`leadscore serve` over loopback")
    print(f"{'store':<10}{'client':<7}{'raw/s':>7}{'use case/s':>11}{'case/raw':>9}"
          f"{'e2e/s':>7}{'e2e/raw':>8}{'floor/s':>8}{'e2e/floor':>10}{'hot/s':>6}"
          f"{'spread/hot':>11}{f'x{BATCH} ev/s':>10}{f'x{BATCH}/raw':>9}"
          f"{'NORMAL raw/s':>13}{'e2e/NORMAL':>11}")
    met, ceilings, ratios = True, list[str](), dict[str, tuple[float, float]]()
    for kind in kinds:
        for name, client in CLIENTS.items():
            r = measure(kind, events, client)
            if kind == "sqlite":
                ratios[name] = (r["spread"] / r["raw"], r["spread"] / r["normal"])
                ceilings.append(f"{r['floor'] / r['raw']:.2f} with {name}")
                met &= name != JUDGE or r["spread"] / r["raw"] >= GOAL
            print(f"{kind:<10}{name:<7}{r['raw']:>7.0f}{r['direct']:>11.0f}"
                  f"{r['direct'] / r['raw']:>9.2f}{r['spread']:>7.0f}"
                  f"{r['spread'] / r['raw']:>8.2f}{r['floor']:>8.0f}"
                  f"{r['spread'] / r['floor']:>10.2f}{r['hot']:>6.0f}"
                  f"{r['spread'] / r['hot']:>11.2f}{r['batched']:>10.0f}"
                  f"{r['batched'] / r['raw']:>9.2f}"
                  + (f"{r['normal']:>13.0f}{r['spread'] / r['normal']:>11.2f}"
                     if r["normal"] else ""))
    print("raw: the same rows written directly (SQLite: plain SQL, a transaction per event, "
          f"synchronous={SYNCHRONOUS} like the adapter); use case: in process, no HTTP;\n"
          "floor: a hello-world function on the same server stack (functions-framework on "
          "the same gunicorn runner, workers and threads): the most one-event requests could "
          f"reach;\nx{BATCH}: {BATCH} events per request; NORMAL raw: the raw writes without a "
          "sync at each commit (the adapter's durability before issue 20, CPU-bound).\n"
          "client: wrk (C) or python (threads with `requests` sessions), see bench/clients.py.\n"
          f"goal e2e/raw >= {GOAL} on SQLite (one event per request), judged with {JUDGE}: "
          f"{verdict(met)} (a server doing nothing reaches {', '.join(ceilings)} of the raw "
          "rate: floor/raw); spread/hot <= 2")
    return ratios, met
