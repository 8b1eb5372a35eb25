"""Shared pieces for benchmarks: stores to measure, a local HTTP server, timed thread pools.

Every benchmark reports ratios of rates measured side by side in the same run, because the
machines are shared and noisy: absolute numbers are printed for context only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from werkzeug.serving import make_server

from tests import emulator

T = TypeVar("T")


@contextmanager
def firestore_available() -> Iterator[bool]:
    """Start the emulator for the run; yield False (and say why) when it is unavailable."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        yield True
        return
    try:
        running = emulator.start()
    except emulator.EmulatorUnavailable as exc:
        print(f"(Firestore emulator unavailable, Firestore figures skipped: {exc})")
        yield False
        return
    os.environ["FIRESTORE_EMULATOR_HOST"] = running.host
    try:
        yield True
    finally:
        running.stop()
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)


def new_store(kind: str, folder: Path) -> Any:
    if kind == "sqlite":
        from leadscore.store.sqlite import SqliteStore

        return SqliteStore(folder / f"bench-{uuid.uuid4().hex[:6]}.db")
    from google.cloud import firestore

    from leadscore.store.firestore import FirestoreStore

    return FirestoreStore(firestore.Client(project="leadscore-bench"),
                          collection=f"bench_{uuid.uuid4().hex[:8]}")


def timed_parallel(items: Sequence[T], work: Callable[[T], Any], threads: int,
                   latencies: list[float] | None = None) -> float:
    """Run work(item) for every item on `threads` threads; return items per second (and
    append each item's duration to `latencies` when given)."""
    chunks = [list(items[i::threads]) for i in range(threads)]
    errors: list[BaseException] = []

    def run(chunk: list[T]) -> None:
        try:
            for item in chunk:
                start = time.perf_counter()
                work(item)
                if latencies is not None:
                    latencies.append(time.perf_counter() - start)  # list.append is atomic
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failures, first: {errors[0]!r}")
    return len(items) / elapsed


@contextmanager
def local_server(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in this process."""
    server = make_server("127.0.0.1", emulator.free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class ThreadSessions:
    """One keep-alive HTTP session per benchmark thread (as real senders keep connections)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> Any:
        import requests

        made = getattr(self._local, "session", None)
        if made is None:
            made = self._local.session = requests.Session()
        return made


Call = Callable[[str, Any, int], None]  # (base URL, HTTP session, request number)


def compare_over_http(kind: str, settings: Any, count: int, first: Call, second: Call,
                      writers: int = 8) -> tuple[float, float]:
    """Requests per second of two request kinds, one after the other, against the same
    store and the same local server (`leadscore serve`'s app)."""
    from leadscore.container import Container, install
    from leadscore.server import build_app

    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        install(Container(settings, store=store))
        session = ThreadSessions().get
        try:
            with local_server(build_app()) as base:
                rates = [timed_parallel(list(range(count)),
                                        lambda i, call=call: call(base, session(), i), writers)
                         for call in (first, second)]
        finally:
            install(None)
            store.close()
    return rates[0], rates[1]


BIN = Path(sys.executable).parent


def wait_until_up(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    import requests

    for _ in range(600):
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server for {url} exited with {process.returncode}") from None
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def _running(process: subprocess.Popen[bytes], port: int, ready_path: str) -> Iterator[str]:
    """The server's base URL once `ready_path` answers; stopped (then killed) on the way out."""
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}{ready_path}", process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def served(env: dict[str, str], workers: int = 1, threads: int = 8) -> Iterator[str]:
    """`leadscore serve` (gunicorn, threads) in its own process, as an operator runs it: the
    benchmark's HTTP client threads then never share the server's interpreter lock."""
    port = emulator.free_port()
    process = subprocess.Popen(
        [str(BIN / "leadscore"), "serve", "--port", str(port), "--no-access-log",
         "--workers", str(workers), "--threads", str(threads)],
        env={**os.environ, "LEADSCORE_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    with _running(process, port, "/healthz") as base:
        yield base


HELLO = "def hello(request):\n    return 'hello'\n"


@contextmanager
def hello_served(folder: Path, workers: int = 1, threads: int = 8) -> Iterator[str]:
    """A hello-world function on the same server stack as `leadscore serve` (the
    functions-framework's app on leadscore's gunicorn runner, same workers and threads)."""
    hello = folder / "hello.py"
    hello.write_text(HELLO)
    port = emulator.free_port()
    script = ("import functions_framework; from leadscore.server import run_gunicorn; "
              f"run_gunicorn(functions_framework.create_app('hello', {str(hello)!r}, 'http'), "
              f"'127.0.0.1', {port}, workers={workers}, threads={threads}, access_log=False)")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    with _running(process, port, "/") as base:
        yield base


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def verdict(met: bool) -> str:
    return "goal met" if met else "goal NOT met"
