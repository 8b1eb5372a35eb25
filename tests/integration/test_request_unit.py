"""One request, one SQLite transaction (issue 20): a batch over many leads commits once,
and a failure part-way leaves nothing of the request written. Other stores commit lead by
lead (`writes.request_unit` is then a no-op), as their contract tests show."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import activity, opened
from conftest import NOW
from signatures import SendGridSigner

from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.ingest import ingest
from leadscore.store.memory import MemoryStore
from leadscore.store.port import UnitOfWork
from leadscore.store.sqlite import SqliteStore

READERS = [f"reader{i}@example.org" for i in range(3)]


def batch(tag: str = "b") -> list[Any]:
    """Two opens for each of three leads, in one request."""
    return [opened(READERS[i % 3], f"{tag}-{i}", NOW - timedelta(minutes=i)) for i in range(6)]


def stored(store: SqliteStore) -> tuple[list[Any], list[int]]:
    return ([store.get_lead(lead_id_for(r)) for r in READERS],
            [len(store.history(lead_id_for(r))) for r in READERS])


def commits_of(store: SqliteStore) -> list[str]:
    """Every COMMIT the store's write connection (all writes go through it) runs."""
    seen: list[str] = []
    store._commits.writer_connection().set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper().startswith("COMMIT") else None)
    return seen


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    made = SqliteStore(tmp_path / "unit.db")
    yield made
    made.close()


def test_sqlite_offers_the_unit_of_work_and_memory_does_not() -> None:
    assert isinstance(SqliteStore(":memory:"), UnitOfWork)
    assert not isinstance(MemoryStore(), UnitOfWork)


def test_a_batch_over_many_leads_commits_once(sqlite_store: SqliteStore, rules: Rules) -> None:
    # GIVEN a request of six events for three leads
    commits = commits_of(sqlite_store)
    # WHEN it is ingested
    result = ingest(sqlite_store, rules, batch(), NOW)
    # THEN every event counts, each lead is one atomic write, and SQLite commits once
    assert (result.applied, result.leads, result.commits) == (6, 3, 3)
    assert len(commits) == 1
    leads, history = stored(sqlite_store)
    assert [lead.counters["email_opened"] for lead in leads] == [2, 2, 2]
    assert history == [2, 2, 2]


def fail_when_staged(store: SqliteStore, monkeypatch: pytest.MonkeyPatch, step: str,
                     nth: int) -> None:
    """Make the store's commit fail, as a failing disk does, the `nth` time it has staged
    `step` ("history", "lead", ...) of a lead's write."""
    staged: list[str] = []

    def crash(seen: str) -> None:
        staged.append(seen)
        if staged.count(step) == nth:
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_after_staging", crash)


def test_a_failure_part_way_leaves_nothing_of_the_request(sqlite_store: SqliteStore,
                                                           rules: Rules,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    # GIVEN a store whose third lead's commit fails after its history is staged
    fail_when_staged(sqlite_store, monkeypatch, "history", 3)
    # WHEN the request is ingested
    with pytest.raises(sqlite3.OperationalError):
        ingest(sqlite_store, rules, batch(), NOW)
    # THEN the two leads planned before the failure are not stored either
    assert stored(sqlite_store) == ([None, None, None], [0, 0, 0])
    # AND the sender's retry applies everything once; a second retry changes nothing
    monkeypatch.undo()
    assert ingest(sqlite_store, rules, batch(), NOW).applied == 6
    once = stored(sqlite_store)
    again = ingest(sqlite_store, rules, batch(), NOW)
    assert (again.applied, again.duplicates) == (0, 6)
    assert stored(sqlite_store) == once


def test_a_failed_sendgrid_request_is_a_5xx_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN `leadscore serve`'s email webhook on SQLite, with the disk failing at lead 50
    from werkzeug.test import Client

    from leadscore.server import build_app

    signer = SendGridSigner()
    store = SqliteStore(tmp_path / "served.db")
    install(Container(Settings(sendgrid_public_key=signer.public_key), store=store,
                      clock=lambda: NOW))
    body = json.dumps([{"email": f"r{i % 100}@example.org", "event": "open",
                        "timestamp": int(NOW.timestamp()) - i, "sg_event_id": f"ev-{i}"}
                       for i in range(1000)]).encode()
    stamp = int(NOW.timestamp())
    fail_when_staged(store, monkeypatch, "lead", 50)
    client = Client(build_app())
    try:
        # WHEN the batch arrives
        answer = client.post("/email_webhook/sendgrid", data=body, headers={
            "Content-Type": "application/json", **signer.headers(body, stamp)})
        # THEN SendGrid is told to retry, and no lead of the batch is stored
        assert answer.status_code == 503
        assert store.count_leads() == 0
        # AND its retry applies every event once
        monkeypatch.undo()
        retry = client.post("/email_webhook/sendgrid", data=body, headers={
            "Content-Type": "application/json", **signer.headers(body, stamp)})
        assert retry.status_code == 200 and retry.get_json()["applied"] == 1000
        assert store.count_leads() == 100
    finally:
        install(None)
        store.close()


def all_at_once(write: Callable[[int], None], writers: int = 8) -> list[BaseException]:
    """Run `write(w)` on `writers` threads released together; what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def run(w: int) -> None:
        try:
            start.wait()
            write(w)
        except BaseException as exc:  # noqa: BLE001 - returned to the test's assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_concurrent_batches_naming_one_lead_all_count(tmp_path: Path, rules: Rules) -> None:
    # GIVEN 8 writers on two connections to one file (as two server processes would be),
    # each sending 10 batches that name a shared hot lead and one lead of their own, twice
    path = tmp_path / "hot.db"
    stores = [SqliteStore(path), SqliteStore(path)]
    hot = "hot@example.org"

    def write(w: int) -> None:
        for n in range(10):
            events = [activity(hot, f"w{w}-{n}", NOW - timedelta(minutes=n)),
                      activity(f"own{w}@example.org", f"own{w}-{n}", NOW)]
            for _ in range(2):  # the sender's retry
                ingest(stores[w % 2], rules, events, NOW)

    # WHEN they all write at once
    errors = all_at_once(write)
    # THEN every event counted exactly once
    assert errors == []
    assert stores[0].get_lead(lead_id_for(hot)).counters["activity"] == 80
    assert len(stores[1].history(lead_id_for(hot))) == 80
    assert [stores[0].get_lead(lead_id_for(f"own{w}@example.org")).counters["activity"]
            for w in range(8)] == [10] * 8
    for store in stores:
        store.close()


def test_concurrent_writers_share_commits_and_each_waits_for_its_own(
        sqlite_store: SqliteStore, rules: Rules) -> None:
    # GIVEN 8 writers, each with 20 single-event requests for leads of its own
    commits = commits_of(sqlite_store)
    seen_after_return: list[bool] = []

    def write(w: int) -> None:
        for n in range(20):
            email = f"w{w}-{n}@example.org"
            ingest(sqlite_store, rules, [activity(email, f"{w}-{n}", NOW)], NOW)
            # AND once a request returns, its write is committed: another connection
            # (another process, a reader) sees it
            fresh = SqliteStore(sqlite_store.path)
            seen_after_return.append(fresh.get_lead(lead_id_for(email)) is not None)
            fresh.close()

    # WHEN they all write at once
    errors = all_at_once(write)
    # THEN every event is stored, every request saw its own commit, and no more commits
    # ran than requests (writers that queued shared one)
    assert errors == []
    assert sqlite_store.count_leads() == 160
    assert seen_after_return == [True] * 160
    assert 1 <= len(commits) <= 160


def test_a_failed_commit_fails_every_request_that_shared_it(
        sqlite_store: SqliteStore, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two requests staged in one transaction, and a COMMIT that fails (disk full)
    from leadscore.errors import TransientError

    group = sqlite_store._commits
    first_staged, outcomes = threading.Event(), {}
    real_commit = group._commit

    def failing_commit(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # what SQLite leaves after SQLITE_FULL at COMMIT
        group._settle(group._open, "OperationalError: database or disk is full",
                      waiters=group._units)

    def first() -> None:
        try:
            with sqlite_store.unit_of_work():
                sqlite_store.put_lead(ingest_lead(rules, "first@example.org"))
                first_staged.set()
                until(lambda: group._queued > 0)  # the second writer queues behind us
            outcomes["first"] = "stored"
        except TransientError:
            outcomes["first"] = "503"

    def second() -> None:
        first_staged.wait()
        try:
            with sqlite_store.unit_of_work():
                sqlite_store.put_lead(ingest_lead(rules, "second@example.org"))
            outcomes["second"] = "stored"
        except TransientError:
            outcomes["second"] = "503"

    monkeypatch.setattr(group, "_commit", failing_commit)
    # WHEN both finish
    side_by_side(first, second)
    # THEN both senders are told to retry, and neither lead is stored
    assert outcomes == {"first": "503", "second": "503"}
    assert sqlite_store.count_leads() == 0
    # AND the failure is forgotten once both have read it (nothing kept per failure)
    assert group._failed == {}
    # AND the store goes on working
    monkeypatch.setattr(group, "_commit", real_commit)
    assert ingest(sqlite_store, rules, batch(), NOW).applied == 6


def ingest_lead(rules: Rules, email: str) -> Any:
    from leadscore.domain.scoring import apply_events

    return apply_events(None, lead_id_for(email), email, [], rules, NOW)[0]


def side_by_side(*runs: Callable[[], None]) -> None:
    """Run each on its own (daemon) thread and wait for all, at most 30 s each."""
    threads = [threading.Thread(target=run, daemon=True) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)


def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait for another thread to get somewhere; fail (not hang) if it never does."""
    for _ in range(int(seconds * 100)):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the other writer never got there")


class Refused(Exception):
    """A unit's own failure (a plan that raised, a constraint): not the store's."""


def test_a_failed_unit_alone_in_its_transaction_leaves_nothing_and_the_next_commits(
        sqlite_store: SqliteStore, rules: Rules) -> None:
    # GIVEN a unit that writes a lead and then fails, with no other writer about (it is the
    # first and only unit of its transaction: no savepoint of its own, issue 20)
    with pytest.raises(Refused):
        with sqlite_store._commits.unit() as conn:
            sqlite_store._stage_lead_write(conn, ingest_lead(rules, "gone@example.org"))
            raise Refused
    # WHEN the next write comes
    sqlite_store.put_lead(ingest_lead(rules, "kept@example.org"))
    # THEN the failed unit left nothing, and the next one is stored
    assert sqlite_store.get_lead(lead_id_for("gone@example.org")) is None
    assert sqlite_store.get_lead(lead_id_for("kept@example.org")) is not None
    assert sqlite_store.count_leads() == 1


def test_refused_units_leave_no_trace_in_the_group_commit(
        sqlite_store: SqliteStore, rules: Rules) -> None:
    # GIVEN 50 units that each fail alone in their transaction (a plan refused, a bad row)
    for i in range(50):
        with pytest.raises(Refused), sqlite_store._commits.unit() as conn:
            sqlite_store._stage_lead_write(conn, ingest_lead(rules, f"r{i}@example.org"))
            raise Refused
    # THEN nothing is kept for them (a long-running server must not grow per refusal), and
    # the next write commits
    assert sqlite_store._commits._failed == {}
    sqlite_store.put_lead(ingest_lead(rules, "kept@example.org"))
    assert sqlite_store.count_leads() == 1


def test_a_rollback_that_fails_never_commits_the_failed_unit(
        sqlite_store: SqliteStore, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a unit that writes a lead and fails, and a ROLLBACK that itself fails (I/O)
    group = sqlite_store._commits
    real = group.writer_connection()

    class RollbackFails:
        in_transaction = property(lambda self: real.in_transaction)

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "ROLLBACK":
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

        def close(self) -> None:
            real.close()

    monkeypatch.setattr(group, "connection", RollbackFails())
    # WHEN the unit fails
    with pytest.raises(Refused), group.unit() as conn:
        sqlite_store._stage_lead_write(real, ingest_lead(rules, "gone@example.org"))
        assert conn is group.connection
        raise Refused
    # THEN its lead was never committed, and the store goes on with a new connection
    assert sqlite_store.get_lead(lead_id_for("gone@example.org")) is None
    sqlite_store.put_lead(ingest_lead(rules, "kept@example.org"))
    assert sqlite_store.count_leads() == 1


def test_a_failed_unit_that_joined_a_transaction_undoes_itself_alone(
        sqlite_store: SqliteStore, rules: Rules) -> None:
    # GIVEN a first unit staged and waiting for a second writer to queue behind it, and a
    # second unit that joins the open transaction, writes a lead and then fails
    group = sqlite_store._commits
    first_staged, outcomes = threading.Event(), {}
    joined: list[bool] = []

    def first() -> None:
        with group.unit() as conn:
            sqlite_store._stage_lead_write(conn, ingest_lead(rules, "first@example.org"))
            first_staged.set()
            until(lambda: group._queued > 0)  # the second writer queues behind us
        outcomes["first"] = "stored"

    def second() -> None:
        first_staged.wait()
        try:
            with group.unit() as conn:
                joined.append(group._units == 1)  # the first unit is staged in this one
                sqlite_store._stage_lead_write(conn, ingest_lead(rules, "second@example.org"))
                raise Refused
        except Refused:
            outcomes["second"] = "refused"

    # WHEN both finish
    side_by_side(first, second)
    # THEN the second shared the first's transaction, its own lead is not stored, and the
    # first's is, committed by the transaction they shared
    assert joined == [True]
    assert outcomes == {"first": "stored", "second": "refused"}
    assert sqlite_store.get_lead(lead_id_for("first@example.org")) is not None
    assert sqlite_store.get_lead(lead_id_for("second@example.org")) is None
    fresh = SqliteStore(sqlite_store.path)  # another connection sees it: committed
    assert fresh.count_leads() == 1
    fresh.close()
