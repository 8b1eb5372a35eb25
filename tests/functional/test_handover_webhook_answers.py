"""What the webhook sink and a sweep make of a receiver's odd answers (review E): a redirect
is never followed (urllib turned a redirected POST into a GET without the body, whose 200
counted as delivered), Retry-After is honoured on a 503 as on a 429, and no Retry-After
value, however large or odd, can break a sweep."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW
from fakes.server import FakeApi, serving
from werkzeug.wrappers import Request, Response

from functional.test_handover_outcomes import logged
from functional.test_handover_workers import write_changes
from leadscore.integrations.http_out import retry_after_s
from leadscore.integrations.ports import NamedSink, RetryableDelivery
from leadscore.service.handover import MAX_REST, deliver_pending, webhook_sink

SECRET = "handover-secret"


class Answering(FakeApi):
    """Accepts anything (a POST, or the GET a followed redirect would make)."""

    def handle(self, request: Request) -> Response:
        return Response("ok")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_worth_trying_again(status: int) -> None:
    # GIVEN a receiver that redirects the POST to a page answering 200 to anything
    receiver = Answering()
    with serving(receiver) as base:
        receiver.fail_next(status, "moved", {"Location": base + "/new"})
        send = webhook_sink(base + "/old", SECRET, timeout_s=5)
        # WHEN the sink sends a change
        with pytest.raises(RetryableDelivery) as moved:
            send({"id": "h_1"})
    # THEN it is not delivered but worth trying again, and nothing was asked of the new page
    assert moved.value.status == status
    assert receiver.requests == [("POST", "/old")]


def test_a_sweep_keeps_a_redirected_change_pending_and_logs_its_id_and_status(
        store: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="leadscore")
    # GIVEN a stage change and a receiver that moved (301, its new page answers anything)
    write_changes(store, 1)
    receiver = Answering()
    with serving(receiver) as base:
        receiver.fail_next(301, "moved", {"Location": base + "/new?token=abc"}, times=2)
        sinks = [webhook_sink(base + "/old?token=abc", SECRET, timeout_s=5)]
        # WHEN a sweep runs, and another once the receiver's address works again
        first = deliver_pending(store, sinks, NOW, attempts=2, base_s=0)
        second = deliver_pending(store, sinks, NOW + timedelta(hours=1), attempts=2, base_s=0)
    # THEN the first left it pending (POSTed twice, never a GET), the second delivered it
    assert (first.failed, first.delivered, second.delivered) == (1, 0, 1)
    assert receiver.requests == [("POST", "/old")] * 3
    # AND the failure was logged by the change's id and the status, with no URL or address
    [line] = logged(caplog, "handover delivery failed")
    assert (line["handover_id"], line["status"]) == ("h_000", 301)
    text = " ".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records
                    if r.name.startswith("leadscore"))
    assert "token" not in text and "127.0.0.1" not in text and "@" not in text


def test_a_503_with_retry_after_rests_the_webhook_like_a_429() -> None:
    # GIVEN a receiver answering 503 with Retry-After: 120
    receiver = Answering()
    with serving(receiver) as base:
        receiver.fail_next(503, "maintenance", {"Retry-After": "120"})
        # WHEN the sink sends a change
        with pytest.raises(RetryableDelivery) as busy:
            webhook_sink(base + "/hook", SECRET, timeout_s=5)({"id": "h_1"})
    # THEN the wait it asked for comes with the failure
    assert (busy.value.status, busy.value.retry_after_s) == (503, 120)


@pytest.mark.parametrize(("status", "asked"), [
    (429, "1e20"), (429, "86400000000000"), (503, "600")])
def test_a_sweep_rests_a_webhook_that_asked_to_wait_at_most_a_day(
        status: int, asked: str) -> None:
    from leadscore.store.memory import MemoryStore

    # GIVEN five stage changes and a receiver answering each POST with this wait
    store = MemoryStore()
    write_changes(store, 5)
    receiver = Answering()
    with serving(receiver) as base:
        receiver.fail_next(status, "wait", {"Retry-After": asked}, times=20)
        sinks = [webhook_sink(base + "/hook", SECRET, timeout_s=5)]
        # WHEN one sweep runs with three tries per change
        report = deliver_pending(store, sinks, NOW, attempts=3, base_s=0)
    # THEN the receiver was asked once, every change waits what it asked (at most a day)
    assert len(receiver.requests) == 1 and report.failed == 5
    wait = timedelta(seconds=min(MAX_REST.total_seconds(), float(asked)))
    assert {c.next_attempt_at for c in store.pending_handovers(NOW + 2 * MAX_REST)} == {
        NOW + wait}


@pytest.mark.parametrize("asked", [1e20, float("inf")])
def test_a_sink_asking_for_an_endless_wait_rests_a_day(asked: float) -> None:
    from leadscore.store.memory import MemoryStore

    # GIVEN three stage changes and a sink that asks for an absurd wait on every call
    store = MemoryStore()
    write_changes(store, 3)
    calls: list[str] = []

    def slack(message: dict[str, Any]) -> None:
        calls.append(str(message["id"]))
        raise RetryableDelivery("rate_limited", asked, 429)

    # WHEN one sweep runs
    report = deliver_pending(store, [NamedSink("slack", slack)], NOW, attempts=3, base_s=0)
    # THEN one call, and every change waits a day
    assert calls == ["h_000"] and report.failed == 3
    assert {c.next_attempt_at for c in store.pending_handovers(NOW + 2 * MAX_REST)} == {
        NOW + MAX_REST}


def test_retry_after_reads_a_date_without_a_zone_as_utc_and_refuses_the_infinite() -> None:
    assert retry_after_s("Sun, 22 Nov 2026 12:01:00 -0000", NOW) == 60
    assert retry_after_s("Sun, 22 Nov 2026 12:01:00 GMT", NOW) == 60
    assert retry_after_s("inf") is None and retry_after_s("1e400") is None
    assert retry_after_s("nan") is None and retry_after_s("-Infinity") is None
    assert retry_after_s("86400000000000") == 8.64e13  # finite: callers cap it
