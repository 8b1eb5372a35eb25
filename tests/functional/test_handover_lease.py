"""A sweeper that outlasts its claim's lease (a receiver slower than 15 minutes) must not
undo what the sweeper that claimed the change after it did: its writes apply only while the
change is still its claim, and each one renews the lease (review E: the late write reopened
a closed change, put its address back and sent it again). On every store."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW

from functional.test_handover_outcomes import logged, stored
from functional.test_handover_workers import write_changes
from functional.test_sweep_clock import Clock
from leadscore.integrations.ports import NamedSink
from leadscore.service.handover import LEASE, deliver_pending


def test_a_sweeper_whose_lease_ran_out_never_reopens_what_the_next_one_closed(
        store: Any, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a stage change, a Slack that answers at once and a webhook that holds sweeper
    # A's call past the lease, while sweeper B claims the change and delivers it
    write_changes(store, 1)
    clock, sent = Clock(), {"slack": 0, "webhook": 0}
    meanwhile: list[Any] = []

    def slack(message: dict[str, Any]) -> None:
        sent["slack"] += 1

    def webhook(message: dict[str, Any]) -> None:
        sent["webhook"] += 1
        if sent["webhook"] == 1:  # sweeper A's call: B runs before it fails
            clock.at = NOW + LEASE + timedelta(minutes=1)
            meanwhile.append(deliver_pending(store, sinks, clock, attempts=1))
            raise TimeoutError("A's slow try fails at last")

    sinks = [NamedSink("slack", slack), NamedSink("webhook", webhook)]
    # WHEN sweeper A runs, then a sweep a day later
    caplog.set_level(logging.WARNING, logger="leadscore")
    late = deliver_pending(store, sinks, clock, attempts=1)
    later = deliver_pending(store, sinks, NOW + timedelta(days=1), attempts=1)
    # THEN B closed it, A's late write was dropped (logged by id), and nobody sent again
    assert meanwhile[0].delivered == 1 and (late.failed, later.delivered) == (0, 0)
    [record] = stored(store)
    assert record["delivered"] is True and record["email"] == ""
    assert set(record["delivered_to"]) == {"slack", "webhook"}
    assert sent == {"slack": 1, "webhook": 2}
    assert [f["handover_id"] for f in logged(caplog, "handover claim lost, write dropped")] == [
        "h_000"]


def test_each_sink_reached_renews_the_sweepers_lease(store: Any) -> None:
    # GIVEN a stage change, a Slack that takes ten minutes to answer, and a webhook that
    # holds the sweep past the first lease's end, while another sweep looks for due work
    write_changes(store, 1)
    clock, sent = Clock(), {"slack": 0, "webhook": 0}
    meanwhile: list[Any] = []

    def slack(message: dict[str, Any]) -> None:
        sent["slack"] += 1
        clock.at = NOW + timedelta(minutes=10)

    def webhook(message: dict[str, Any]) -> None:
        sent["webhook"] += 1
        clock.at = NOW + LEASE + timedelta(minutes=1)
        meanwhile.append(deliver_pending(store, sinks, clock, attempts=1))

    sinks = [NamedSink("slack", slack), NamedSink("webhook", webhook)]
    # WHEN the sweep runs
    report = deliver_pending(store, sinks, clock, attempts=1)
    # THEN the other sweep found nothing due (Slack's outcome renewed the lease), and the
    # first closed the change having sent it once to each
    assert meanwhile[0].model_dump() == {"delivered": 0, "refused": 0, "given_up": 0,
                                         "failed": 0}
    assert report.delivered == 1 and sent == {"slack": 1, "webhook": 1}
    [record] = stored(store)
    assert record["delivered"] is True and record["email"] == ""


def test_a_write_under_a_claim_that_is_not_the_stored_one_is_dropped(store: Any) -> None:
    # GIVEN a change claimed by one sweeper, then claimed again after its lease ran out
    write_changes(store, 1)
    [first] = store.claim_handovers(NOW, NOW + LEASE, limit=1)
    [second] = store.claim_handovers(NOW + LEASE, NOW + 2 * LEASE, limit=1)
    closed = first.model_copy(update={"delivered": True, "email": ""})
    # WHEN the first claimer writes under its lease, then the second under its own
    lost = store.record_handover(closed, NOW + LEASE)
    kept = store.record_handover(second.model_copy(update={"attempts": 1}), NOW + 2 * LEASE)
    # THEN only the second write applied; a closed change takes no claimed write at all
    assert (lost, kept) == (False, True)
    [record] = stored(store)
    assert record["delivered"] is False and record["attempts"] == 1
    assert record["email"] == first.email
    store.record_handover(second.model_copy(update={"delivered": True, "email": ""}),
                          NOW + 2 * LEASE)
    assert store.record_handover(second, NOW + 2 * LEASE) is False
    assert [r["email"] for r in stored(store)] == [""]
