"""A sweep of the outbox (stage changes to sales, contacts to delete from the CRM) may run
longer than a claim's lease: 100 slow deliveries of ~31 s each. Each claim's lease and each
backoff count from the moment they are taken, read from the clock then, never from the
sweep's start, so an item being sent is never claimable by another worker and a failed item
is not due again at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from conftest import NOW

from functional.test_handover_workers import write_changes
from leadscore.integrations.ports import BatchResult, RetryableDelivery, ScoreRecord
from leadscore.service.crm_erasure import erase_in_crm, erasure_for
from leadscore.service.handover import deliver_pending

SLOW = timedelta(minutes=10)  # one delivery: far beyond ~31 s, so three outlast the lease


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


def test_a_change_being_sent_late_in_a_long_sweep_is_not_claimable_by_another_worker(
        store: Any) -> None:
    clock = Clock()
    write_changes(store, 3)
    stolen: list[bool] = []

    def slow_sink(message: dict[str, Any]) -> None:
        clock.at += SLOW  # each delivery takes ten minutes
        # would another worker sweeping now find this change due while it is on its way?
        stolen.append(message["id"] in [c.id for c in store.pending_handovers(clock())])

    # WHEN one sweep delivers three changes, thirty minutes in all (twice the lease)
    report = deliver_pending(store, [slow_sink], clock, attempts=1)
    # THEN every change was delivered by it alone: no other worker could claim one
    assert report.delivered == 3
    assert stolen == [False, False, False]


def test_a_failed_change_late_in_a_long_sweep_backs_off_from_its_failure(store: Any) -> None:
    clock = Clock()
    write_changes(store, 3)

    def slow_failure(message: dict[str, Any]) -> None:
        clock.at += SLOW
        raise ConnectionError("receiver down")

    # WHEN every delivery fails after ten minutes
    report = deliver_pending(store, [slow_failure], clock, attempts=1)
    # THEN each backed off (two minutes) from its failure: right after the sweep the last
    # one is not due yet, the two that failed ten and twenty minutes earlier are
    assert report.failed == 3
    assert [c.id for c in store.pending_handovers(clock())] == ["h_000", "h_001"]
    assert [c.id for c in store.pending_handovers(clock() + timedelta(minutes=2))] == [
        "h_000", "h_001", "h_002"]


class SlowCrm:
    """A CRM that takes ten minutes per GDPR delete, or fails after them."""

    max_batch = 100

    def __init__(self, clock: Clock, store: Any, fail: bool = False) -> None:
        self.clock, self.store, self.fail = clock, store, fail
        self.stolen: list[list[str]] = []

    def upsert(self, records: Sequence[ScoreRecord]) -> BatchResult:
        return BatchResult()

    def erase(self, email: str) -> bool:
        self.clock.at += SLOW
        if self.fail:
            raise RetryableDelivery("hubspot gdpr delete: 503", status=503)
        # another worker sweeps while this one is on its way: does it get this one?
        taken = self.store.claim_crm_erasures(self.clock(), self.clock() + SLOW)
        self.stolen.append([i.email for i in taken if i.email == email])
        self.store.record_crm_erasures([i.model_copy(update={  # the others go back
            "next_attempt_at": self.clock() + SLOW if i.deleted else NOW})
            for i in taken if i.email != email])
        return True


def recorded_erasures(store: Any, count: int) -> None:
    store.record_crm_erasures([erasure_for("crm:hubspot", f"l_{n:03d}", f"p{n}@example.com",
                                           NOW, NOW) for n in range(count)])


def test_an_erasure_being_sent_late_in_a_long_sweep_is_not_claimable_by_another_worker(
        store: Any) -> None:
    clock = Clock()
    recorded_erasures(store, 3)
    crm = SlowCrm(clock, store)
    # WHEN one sweep sends three GDPR deletes, thirty minutes in all
    report = erase_in_crm(store, {"crm:hubspot": crm}, clock, attempts=1)
    # THEN it sent all three, and no other worker could claim one meanwhile
    assert report.erased == 3
    assert crm.stolen == [[], [], []]


def test_a_failed_erasure_late_in_a_long_sweep_backs_off_from_its_failure(
        store: Any) -> None:
    clock = Clock()
    recorded_erasures(store, 3)
    crm = SlowCrm(clock, store, fail=True)
    report = erase_in_crm(store, {"crm:hubspot": crm}, clock, attempts=1)
    # THEN each was tried once and backed off (two minutes) from its failure: right after
    # the sweep only the two that failed earlier are due
    assert report.pending == 3
    due = store.claim_crm_erasures(clock(), clock() + SLOW)
    assert sorted(i.email for i in due) == ["p0@example.com", "p1@example.com"]
