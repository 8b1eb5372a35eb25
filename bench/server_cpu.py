"""CPU per `POST /ingest` request inside the server (issue 20, helper `server`): the deployed
function's own app (`functions_framework.create_app`) with the Flask test client, N unique
single-event requests on SQLite; prints CPU ms per request (process time, no profiler), the
SQL statements per request (SQLite's trace callback, trigger statements counted apart), and
with `--profile` the top functions by own time.

    PYTHONPATH=$PWD .venv/bin/python -m bench.server_cpu --requests 1000 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TOKEN = "cpu-token"


def bodies(count: int, tag: str) -> list[str]:
    now = datetime.now(UTC)
    return [json.dumps({"type": "activity", "email": f"{tag}{i}@bench.example",
                        "source": "bench", "idempotency_key": f"{tag}-{i}",
                        "occurred_at": (now - timedelta(seconds=i)).isoformat(),
                        "activity": "website_visit"}) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--trace", action="store_true", help="print every SQL statement")
    parser.add_argument("--folder", default=None,
                        help="where the database goes (/dev/shm: no disk syncs in the number)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="server-cpu-", dir=args.folder)
    os.environ.update(LEADSCORE_STORE=f"sqlite:///{folder}/cpu.db", LEADSCORE_API_TOKEN=TOKEN,
                      LEADSCORE_LOG_LEVEL="WARNING", LEADSCORE_HOME=folder)
    import functions_framework

    from leadscore.container import install
    from leadscore.store.sqlite import SqliteStore

    statements: Counter[str] = Counter()
    connect = SqliteStore._connect
    opened: list[sqlite3.Connection] = []

    def traced(self: SqliteStore) -> sqlite3.Connection:
        conn = connect(self)

        last = [""]

        def seen(sql: str) -> None:
            # a trigger's statements are reported with the text of the statement that fired
            # them (Python's callback shows the expanded SQL): counted apart
            statements["trigger" if sql == last[0] else "statement"] += 1
            last[0] = sql
            if args.trace:
                print("  SQL", " ".join(sql.split())[:120])
        conn.set_trace_callback(seen)
        opened.append(conn)
        return conn

    SqliteStore._connect = traced  # type: ignore[method-assign]
    install(None)
    source = Path(__file__).resolve().parents[1] / "functions" / "main.py"
    app = functions_framework.create_app("ingest", str(source), "http")  # type: ignore[no-untyped-call]
    client = app.test_client()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def send(batch: list[str]) -> None:
        for body in batch:
            answer = client.post("/", data=body, headers=headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)

    send(bodies(20, "warm"))  # rules, schemas, connections: once per process
    statements.clear()
    counted = 50  # statements counted on a few requests: the trace callback expands each
    send(bodies(counted, "count"))  # statement's text, which would weigh in the CPU below
    if not args.trace:
        for conn in opened:
            conn.set_trace_callback(None)
    work = bodies(args.requests, "run")
    start, wall = time.process_time(), time.perf_counter()
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(send, work)
    else:
        send(work)
    cpu, elapsed = time.process_time() - start, time.perf_counter() - wall
    n = args.requests
    print(f"ingest: {cpu / n * 1000:.3f} ms CPU/request, {elapsed / n * 1000:.3f} ms wall"
          f"{' (profiled)' if args.profile else ''}; SQL per request: "
          f"{statements['statement'] / counted:.2f} statements, "
          f"{statements['trigger'] / counted:.2f} trigger bodies")
    if args.profile:
        stats: Any = pstats.Stats(profile)
        stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
