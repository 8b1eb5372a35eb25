"""Profile one webhook from bytes to commit on SQLite, in process (no sockets), with cProfile.

`python -m bench.profile sendgrid` profiles one signed SendGrid request of 1,000 events over
100 leads; `python -m bench.profile ingest` 400 single-event `POST /ingest` requests. Prints
the top functions by own time (`--sort tottime`) or cumulative time; `--out FILE.prof` keeps
the raw profile (for snakeviz or `py-spy`-style flame graphs from `flameprof`).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.server import build_app
from leadscore.store.sqlite import SqliteStore
from tests.signatures import SendGridSigner

TOKEN = "profile-token"


SIGNER = SendGridSigner()


def sendgrid_request(events: int = 1000, leads: int = 100,
                     tag: str = "p") -> tuple[Settings, Callable[[Any], Any]]:
    signer, stamp = SIGNER, int(time.time())
    batch = [{"email": f"reader{i % leads}@bench.example", "timestamp": stamp - 3600 + i,
              "event": "open" if i % 3 else "click", "url": "https://example.org/p",
              "sg_event_id": f"{tag}-ev-{i}", "sg_message_id": f"m-{i % leads}"}
             for i in range(events)]
    body = json.dumps(batch).encode()
    headers = {"Content-Type": "application/json", **signer.headers(body, stamp)}

    def send(client: Any) -> Any:
        answer = client.post("/email_webhook/sendgrid", data=body, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer

    return Settings(sendgrid_public_key=signer.public_key, log_level="WARNING"), send


def ingest_requests(count: int = 400, tag: str = "p") -> tuple[Settings, Callable[[Any], Any]]:
    now = datetime.now(UTC)
    bodies = [json.dumps({"type": "activity", "email": f"{tag}{i}@bench.example",
                          "source": "bench", "idempotency_key": f"{tag}-{i}",
                          "occurred_at": (now - timedelta(minutes=i)).isoformat(),
                          "activity": "website_visit"}) for i in range(count)]

    def send(client: Any) -> None:
        for body in bodies:
            answer = client.post("/ingest", data=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200, answer.get_data(as_text=True)

    return Settings(api_token=TOKEN, log_level="WARNING"), send


def _median_ms(what: str, repeat: int) -> float:
    times = []
    for n in range(repeat + 1):
        settings, send = (sendgrid_request(tag=f"t{n}") if what == "sendgrid"
                          else ingest_requests(tag=f"t{n}"))
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore(Path(folder) / "profile.db")
            install(Container(settings, store=store))
            from werkzeug.test import Client

            client = Client(build_app())
            start = time.perf_counter()
            send(client)
            if n:  # the first run builds rules, schemas and caches
                times.append(time.perf_counter() - start)
            install(None)
            store.close()
    return sorted(times)[len(times) // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["sendgrid", "ingest"])
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--time", type=int, default=0,
                        help="no profiler: time this many fresh requests, print the median")
    args = parser.parse_args()
    if args.time:
        print(f"{args.what}: median {_median_ms(args.what, args.time):.1f} ms (no profiler)")
        return
    settings, send = sendgrid_request() if args.what == "sendgrid" else ingest_requests()
    _, warm = (sendgrid_request(10, 5, "warm") if args.what == "sendgrid"
               else ingest_requests(5, "warm"))
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "profile.db")
        install(Container(settings, store=store))
        from werkzeug.test import Client

        client = Client(build_app())
        warm(client)  # rules, schemas and connections are built once per process, not here
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.runcall(send, client)
        elapsed = time.perf_counter() - start
        install(None)
        store.close()
    print(f"{args.what}: {elapsed * 1000:.0f} ms under the profiler")
    if args.out:
        profile.dump_stats(str(args.out))
    stats = pstats.Stats(profile)
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
