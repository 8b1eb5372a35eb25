"""Shared fixtures: the real Firestore emulator for the session, and one store per adapter.

The emulator is started once per test session on a free port and stopped at the end, even
when tests fail. Without it the Firestore tests are skipped with the reason, unless
LEADSCORE_REQUIRE_EMULATOR=1 (CI), where a missing emulator fails the run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import emulator as emulator_process
import pytest
from hypothesis import settings

from leadscore.domain.events import EVENT_LIST_ADAPTER, Event
from leadscore.domain.rules import Rules, default_rules

EVENTS_DIR = Path(__file__).parent / "events"

# Property tests: a fast profile for `make test`, a long one for `make fuzz`.
settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("long", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
PROJECT = "leadscore-test"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def load_events(name: str) -> list[Event]:
    """A realistic payload fixture from tests/events/, as canonical events."""
    data = json.loads((EVENTS_DIR / name).read_text())
    return EVENT_LIST_ADAPTER.validate_python(data if isinstance(data, list) else [data])


def event_json(name: str) -> Any:
    return json.loads((EVENTS_DIR / name).read_text())


# Names that appear in the payload fixtures: none may reach a log line.
FIXTURE_NAMES = ("María", "López", "Carlos", "Méndez", "Elena", "García", "Sofia", "Rossi",
                 "Renée", "Müller", "Lucía", "Fernández", "Priya", "Jonas", "Dana.Kim",
                 "Tom.Harris", "Erin", "Ines.Torres", "Hugo.Martin")
# any script, and "@" percent-encoded in a URL as well as plain
EMAIL = re.compile(r"[\w.%+\-]+(?:@|%40)[\w.\-]+\.\w{2,}")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        from leadscore.logs import JsonFormatter

        # the line as written (JSON, scrubbed) and decoded again (JSON escapes accents)
        written = JsonFormatter().format(record) if record.name == "leadscore" else ""
        decoded = json.dumps(json.loads(written), ensure_ascii=False) if written else ""
        self.lines.append(written + decoded if written else record.getMessage())


@pytest.fixture(autouse=True)
def no_personal_data_in_logs() -> Iterator[None]:
    """Every test of the suite runs with its log lines checked: no address, no name."""
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    try:
        yield
    finally:
        root.removeHandler(collect)
    leaks = [line for line in collect.lines
             if EMAIL.search(line) or any(name in line for name in FIXTURE_NAMES)]
    assert leaks == [], f"personal data in logs: {leaks[:3]}"


@pytest.fixture(scope="session")
def rules() -> Rules:
    return default_rules()


def _emulator(start: Any, name: str, variable: str) -> Iterator[str]:
    """Run an emulator for the session; skip (or, in CI, fail) with the reason if missing."""
    if os.environ.get(variable):  # somebody runs one already (e.g. `gcloud emulators ...`)
        yield os.environ[variable]
        return
    try:
        running = start()
    except emulator_process.EmulatorUnavailable as exc:
        if os.environ.get("LEADSCORE_REQUIRE_EMULATOR") == "1":
            pytest.fail(f"LEADSCORE_REQUIRE_EMULATOR=1 but the {name} emulator is "
                        f"unavailable: {exc}", pytrace=False)
        pytest.skip(f"{name} emulator unavailable: {exc}")
    os.environ[variable] = running.host
    try:
        yield running.host
    finally:
        running.stop()
        os.environ.pop(variable, None)


EMULATOR_FIXTURES = frozenset({"firestore_emulator", "pubsub_emulator", "firestore_client"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that asks for an emulator, so `-m 'not emulator'` (the runs on the
    other deploy runtimes, see the Makefile) can never start one by surprise."""
    for item in items:
        if EMULATOR_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.emulator)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    yield from _emulator(emulator_process.start, "Firestore", "FIRESTORE_EMULATOR_HOST")


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    yield from _emulator(emulator_process.start_pubsub, "Pub/Sub", "PUBSUB_EMULATOR_HOST")


@pytest.fixture
def firestore_client(firestore_emulator: str) -> Iterator[Any]:
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    yield client
    client.close()


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "memory":
        from leadscore.store.memory import MemoryStore

        return MemoryStore()
    if kind == "sqlite":
        from leadscore.store.sqlite import SqliteStore

        return SqliteStore(tmp_path / f"leads-{uuid.uuid4().hex[:6]}.db")
    from leadscore.store.firestore import FirestoreStore

    client = request.getfixturevalue("firestore_client")
    return FirestoreStore(client, collection=f"leads_{uuid.uuid4().hex[:12]}")


def another_store_like(store: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """A second, empty store of the same adapter (to compare two histories of events)."""
    kind = {"MemoryStore": "memory", "SqliteStore": "sqlite"}.get(type(store).__name__,
                                                                   "firestore")
    return make_store(kind, tmp_path, request)


def fail_on_call(monkeypatch: pytest.MonkeyPatch, target: Any, method: str, n: int,
                 error: Exception) -> None:
    """Make the n-th call of target.method raise `error` (a crash part-way through a job)."""
    real, calls = getattr(target, method), []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(target, method, failing)


STORE_KINDS = ["memory", "sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
DURABLE_KINDS = ["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]


def _store_for(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made = make_store(request.param, tmp_path, request)
    yield made
    if request.param == "sqlite":
        made.close()


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _store_for(request, tmp_path)


@pytest.fixture(params=DURABLE_KINDS)
def durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _store_for(request, tmp_path)
