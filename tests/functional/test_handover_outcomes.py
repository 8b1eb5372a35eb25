"""What a hand-over sweep does with each sink's answer, on every store: a change goes only
to the sinks that do not have it yet, a permanent refusal is never retried, a change that
never gets through is given up, and a closed change keeps no address and expires."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import NOW

from functional.test_handover_workers import write_changes
from leadscore.integrations.ports import PermanentDelivery
from leadscore.service.handover import LEASE, deliver_pending

KEEP_CLOSED = timedelta(days=30)  # what the README promises


class Receiver:
    """A sink that fails its first `failures` calls, then records each message's id."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures, self.calls, self.got = failures, 0, []
        self.error = error or ConnectionError("publish failed")

    def __call__(self, message: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.got.append(message["id"])


def logged(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    return [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == message]


def stored(store: Any) -> list[dict[str, Any]]:
    """Every stored hand-over as the store keeps it (Firestore: the raw document)."""
    kind = type(store).__name__
    if kind == "FirestoreStore":
        return [s.to_dict() or {} for s in store._handovers.stream()]
    if kind == "SqliteStore":
        rows = store._conn().execute("SELECT doc FROM handovers ORDER BY id").fetchall()
        return [json.loads(r[0]) for r in rows]
    return [c.model_dump(mode="python") for c in store._handovers.values()]


def test_a_sink_that_failed_gets_the_change_alone_on_the_next_sweep(store: Any) -> None:
    # GIVEN a stage change, Pub/Sub failing its first two publishes and Slack answering
    write_changes(store, 1)
    pubsub, slack = Receiver(failures=2), Receiver()
    # WHEN one sweep reaches Slack only, and a later sweep runs
    first = deliver_pending(store, [pubsub, slack], NOW, attempts=2, base_s=0)
    second = deliver_pending(store, [pubsub, slack], NOW + timedelta(hours=2), attempts=2,
                             base_s=0)
    # THEN Slack got the card once, Pub/Sub once, and the change remembers both
    assert (first.failed, second.delivered) == (1, 1)
    assert slack.got == ["h_000"] and pubsub.got == ["h_000"]
    [record] = stored(store)
    assert record["delivered"] and sorted(record["delivered_to"]) == ["sink0", "sink1"]


def test_a_permanent_refusal_is_not_retried_and_closes_the_change(
        store: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leadscore")
    # GIVEN Slack refusing the card for good (400 invalid_blocks) and Pub/Sub answering
    write_changes(store, 1)
    pubsub = Receiver()
    slack = Receiver(failures=99, error=PermanentDelivery("slack 400 invalid_blocks", 400))
    # WHEN ten sweeps run, one every two hours
    reports = [deliver_pending(store, [pubsub, slack], NOW + timedelta(hours=2 * n),
                               attempts=3, base_s=0) for n in range(10)]
    # THEN Slack was asked once, Pub/Sub published once, and nothing is left pending
    assert (slack.calls, pubsub.got) == (1, ["h_000"])
    assert reports[0].refused == 1 and sum(r.failed for r in reports) == 0
    assert store.pending_handovers(NOW + timedelta(days=30)) == []
    [record] = stored(store)
    assert (record["delivered_to"], record["refused_by"]) == (["sink0"], ["sink1"])
    # AND the refusal was logged once, by the change's id and without the address
    assert [(f["handover_id"], f["sink"], f["status"]) for f in logged(
        caplog, "handover refused for good")] == [("h_000", "sink1", 400)]
    assert "p0@example.com" not in caplog.text


def test_a_change_that_never_gets_through_is_given_up_after_ten_tries_and_three_days(
        store: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leadscore")
    # GIVEN a receiver that is down for good
    write_changes(store, 1)
    down = Receiver(failures=10**6)
    # WHEN a sweep runs every two hours for two days
    at = NOW
    while at < NOW + timedelta(days=2):
        deliver_pending(store, [down], at, attempts=1)
        at += timedelta(hours=2)
    # THEN more than ten tries later it is still pending: not three days old yet
    assert down.calls > 10 and store.pending_handovers(at + timedelta(hours=2))
    # WHEN the sweeps go on past three days
    given_up = 0
    while at <= NOW + timedelta(days=3, hours=2):
        given_up += deliver_pending(store, [down], at, attempts=1).given_up
        at += timedelta(hours=2)
    # THEN it was given up once, with no address left, and nothing is tried any more
    calls = down.calls
    assert given_up == 1 and store.pending_handovers(at + timedelta(days=9)) == []
    deliver_pending(store, [down], at + timedelta(days=1))
    assert down.calls == calls
    [record] = stored(store)
    assert record["delivered"] and record["given_up"] and record["email"] == ""
    assert [(f["handover_id"], f["sinks"]) for f in logged(caplog, "handover given up")] == [
        ("h_000", "sink0")]


def test_a_delivered_change_keeps_no_address_and_expires_thirty_days_later(
        store: Any) -> None:
    # GIVEN two stage changes, both delivered at NOW
    write_changes(store, 2)
    sent = Receiver()
    assert deliver_pending(store, [sent], NOW).delivered == 2
    # THEN the stored changes hold no address, and carry when they expire
    records = stored(store)
    assert [r["email"] for r in records] == ["", ""]
    for record in records:
        expires = record["expires_at"]
        expires = datetime.fromisoformat(expires) if isinstance(expires, str) else expires
        assert expires == NOW + KEEP_CLOSED
        if type(store).__name__ == "FirestoreStore":  # the TTL policy reads a Timestamp
            assert isinstance(record["expires_at"], datetime)
    # WHEN sweeps run before and after that time
    deliver_pending(store, [sent], NOW + KEEP_CLOSED - timedelta(minutes=1))
    assert len(stored(store)) == 2
    deliver_pending(store, [sent], NOW + KEEP_CLOSED)
    # THEN the expired changes are purged, and sent nothing again
    assert stored(store) == [] and sent.got == ["h_000", "h_001"]


class Crash(BaseException):
    """The sweeper's process dies (no `except Exception` catches it)."""


def test_a_sweeper_that_dies_between_two_sinks_resends_to_neither_that_had_it(
        store: Any) -> None:
    # GIVEN a sweep that reached Slack and died before publishing
    write_changes(store, 1)
    slack, pubsub = Receiver(), Receiver(failures=1, error=Crash())
    with pytest.raises(Crash):
        deliver_pending(store, [slack, pubsub], NOW, attempts=1)
    # WHEN the next sweep runs after the dead sweeper's lease
    report = deliver_pending(store, [slack, pubsub], NOW + LEASE, attempts=1)
    # THEN only Pub/Sub was sent it again
    assert report.delivered == 1
    assert (slack.got, pubsub.got) == (["h_000"], ["h_000"])


OLD_FIELDS = ("id", "lead_id", "email", "stage_before", "stage_after", "score", "grade", "at",
              "attempts", "next_attempt_at", "delivered")  # a record of an older release


def store_as_older_release(store: Any, doc: dict[str, Any]) -> None:
    """Overwrite one hand-over with what an older release wrote: these fields only, and in
    SQLite's row the last attempt's time (`next_attempt_at`) whether delivered or not."""
    old = {k: v for k, v in doc.items() if k in OLD_FIELDS}
    due = datetime.fromisoformat(old["next_attempt_at"]) if isinstance(
        old["next_attempt_at"], str) else None
    if type(store).__name__ == "SqliteStore":
        with store._tx() as conn:
            conn.execute("UPDATE handovers SET delivered = ?, next_attempt_at = ?, doc = ? "
                         "WHERE id = ?", (int(old["delivered"]), due and due.timestamp(),
                                          json.dumps(old), old["id"]))
    else:
        store._handovers.document(old["id"]).set(old)


def test_a_change_stored_by_an_older_release_is_delivered_and_closed(
        durable_store: Any) -> None:
    # GIVEN a pending change stored without the fields this release adds
    store = durable_store
    write_changes(store, 1)
    store_as_older_release(store, stored(store)[0])
    # WHEN a sweep delivers it
    sent = Receiver()
    assert deliver_pending(store, [sent], NOW).delivered == 1
    # THEN it was read, sent once, and is stored closed with the new fields
    [record] = stored(store)
    assert sent.got == ["h_000"] and record["delivered_to"] == ["sink0"]
    assert record["email"] == "" and record["expires_at"]


def test_a_change_an_older_release_delivered_goes_with_its_address_at_the_next_sweep(
        durable_store: Any) -> None:
    # GIVEN a change an older release delivered (closed, with the address, no expiry; its
    # last lease as its next attempt) and a pending one
    store = durable_store
    write_changes(store, 2)
    leased = NOW + LEASE
    doc = {**stored(store)[0], "attempts": 1, "delivered": True}
    doc["next_attempt_at"] = leased.isoformat() if isinstance(
        doc["next_attempt_at"], str) else leased.timestamp()
    store_as_older_release(store, doc)
    # WHEN the next sweep runs
    sent = Receiver()
    deliver_pending(store, [sent], NOW + timedelta(hours=1))
    # THEN the old one is gone, and the one it delivered stays, without the address
    assert sent.got == ["h_001"]
    assert [(r["id"], r["email"]) for r in stored(store)] == [("h_001", "")]
