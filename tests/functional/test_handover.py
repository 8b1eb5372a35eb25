"""Sales handover: a stage change reaches Pub/Sub and signed webhooks, at least once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from builders import form
from conftest import NOW, PROJECT
from fakes.server import FakeApi, serving
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from functional.conftest import client_for
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.service.handover import deliver_pending, webhook_sink
from leadscore.service.writes import apply_events

SECRET = "handover-secret"
HOT = {"type": "form_submitted", "email": "buyer@bigco.com", "source": "website",
       "idempotency_key": "demo-1", "occurred_at": NOW.isoformat(), "form_kind":
       "demo_request", "profile": {"job_title": "CTO", "industry": "SaaS", "seniority": "VP"}}


class Receiver:
    """A local webhook receiver that fails its first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.calls, self.accepted = failures, 0, []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.calls += 1
        if self.calls <= self.failures:
            return Response("busy", status=503)(environ, start_response)
        stamp, _, sig = request.headers["Leadscore-Signature"].partition(",v1=")
        body = request.get_data()
        expected = hmac.new(SECRET.encode(), stamp[2:].encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, sig), "bad signature"
        self.accepted.append(json.loads(body))
        return Response("ok")(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    made = Receiver(failures=2)
    server = make_server("127.0.0.1", 0, made, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made, f"http://127.0.0.1:{server.server_port}/crm-hook"
    server.shutdown()


def test_a_stage_change_reaches_pubsub_and_a_webhook_that_failed_twice(
        durable_store: Any, pubsub_emulator: str, receiver: tuple[Receiver, str]) -> None:
    from google.cloud import pubsub_v1

    hook, url = receiver
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(
        name=f"projects/{PROJECT}/topics/stage-changes-{id(durable_store)}").name
    subscription = subscriber.create_subscription(
        name=topic.replace("/topics/", "/subscriptions/"), topic=topic).name
    app = Container(Settings(api_token="t", handover_topic=topic, handover_webhook_urls=url,
                             handover_secret=SECRET, handover_backoff_s=0.01,
                             google_cloud_project=PROJECT),
                    store=durable_store, clock=lambda: NOW)
    install(app)
    try:
        client = client_for("ingest")
        # WHEN an event makes a lead sales-qualified, and the sender delivers it twice
        for _ in range(2):
            assert client.post("/", json=HOT, headers={"Authorization": "Bearer t"}
                               ).status_code == 200
        assert app.handovers_settled(30)  # delivered after the responses, in the background
    finally:
        install(None)
    # THEN the webhook got it on the third try, signed, exactly once
    assert hook.calls == 3 and len(hook.accepted) == 1
    message = hook.accepted[0]
    assert (message["lead_id"], message["stage_before"], message["stage_after"]) == (
        lead_id_for("buyer@bigco.com"), "lead", "sql")
    # AND the topic got the same change once
    pulled = subscriber.pull(subscription=subscription, max_messages=10, timeout=30)
    published = [json.loads(m.message.data) for m in pulled.received_messages]
    assert published == [message]
    assert durable_store.pending_handovers(NOW + timedelta(days=1)) == []


def test_a_change_not_delivered_stays_pending_until_a_later_sweep(durable_store: Any,
                                                                  rules: Any) -> None:
    email = "later@bigco.com"
    apply_events(durable_store, lead_id_for(email), email, [form(
        email, "f", NOW, kind="demo_request", job_title="CTO", industry="SaaS",
        seniority="VP")], rules, NOW)
    sent: list[dict[str, Any]] = []

    def down(_: dict[str, Any]) -> None:
        raise ConnectionError("receiver down")

    first = deliver_pending(durable_store, [down], NOW, attempts=2, base_s=0)
    assert (first.delivered, first.failed) == (0, 1)
    assert durable_store.pending_handovers(NOW) == []  # backed off
    later = NOW + timedelta(minutes=5)
    second = deliver_pending(durable_store, [sent.append], later, attempts=2, base_s=0)
    assert second.delivered == 1 and [m["stage_after"] for m in sent] == ["sql"]
    again = deliver_pending(durable_store, [sent.append], later + timedelta(hours=2))
    assert again.delivered == 0 and len(sent) == 1  # delivered changes are not sent again


def test_a_decay_demotion_is_handed_over_too(durable_store: Any, rules: Any) -> None:
    email = "cooling@bigco.com"
    apply_events(durable_store, lead_id_for(email), email, [form(
        email, "f", NOW, kind="demo_request", job_title="CTO", industry="SaaS",
        seniority="VP")], rules, NOW)
    deliver_pending(durable_store, [lambda _: None], NOW)
    from leadscore.service.decay import run_decay

    run_decay(durable_store, rules, NOW + timedelta(days=90))
    sent: list[dict[str, Any]] = []
    deliver_pending(durable_store, [sent.append], NOW + timedelta(days=90))
    assert [(m["stage_before"], m["stage_after"]) for m in sent] == [("sql", "mql")]


def test_the_webhook_sink_reports_a_refused_connection() -> None:
    from leadscore.service.handover import DeliveryFailed

    with pytest.raises(DeliveryFailed):
        webhook_sink("http://127.0.0.1:9/nothing-listens", SECRET, timeout_s=2)({"id": "x"})


class Answering(FakeApi):
    """A webhook receiver that accepts, unless an answer was queued with `fail_next`."""

    def handle(self, request: Request) -> Response:
        return Response("ok")


def test_the_webhook_sink_tells_a_refusal_for_good_from_one_worth_waiting_for() -> None:
    from leadscore.integrations.ports import PermanentDelivery, RetryableDelivery

    receiver = Answering()
    with serving(receiver) as base:
        send = webhook_sink(base + "/hook?token=zq-secret-token", SECRET, timeout_s=5)
        # GIVEN a receiver answering 400, then 429 with Retry-After: 30, then 503, then 200
        receiver.fail_next(400, "bad")
        receiver.fail_next(429, "slow down", {"Retry-After": "30"})
        receiver.fail_next(503, "busy")
        # WHEN the sink sends four times THEN each answer is told apart
        with pytest.raises(PermanentDelivery) as refused:
            send({"id": "h_1"})
        with pytest.raises(RetryableDelivery) as limited:
            send({"id": "h_1"})
        with pytest.raises(RetryableDelivery) as busy:
            send({"id": "h_1"})
        send({"id": "h_1"})
    assert refused.value.status == 400 and not isinstance(refused.value, RetryableDelivery)
    assert (limited.value.status, limited.value.retry_after_s) == (429, 30)
    assert (busy.value.status, busy.value.retry_after_s) == (503, None)
    # AND the change remembers the sink by a name that does not hold its URL's token
    assert "zq-secret-token" not in send.name and send.name.startswith("webhook:")


def test_a_webhook_that_answers_gone_is_not_retried(store: Any) -> None:
    from functional.test_handover_workers import write_changes

    # GIVEN a stage change and a receiver that answers 410 Gone
    write_changes(store, 1)
    receiver = Answering()
    receiver.fail_next(410, "gone", times=9)
    with serving(receiver) as base:
        # WHEN two sweeps run with three tries each
        sinks = [webhook_sink(base + "/hook", SECRET, timeout_s=5)]
        first = deliver_pending(store, sinks, NOW, attempts=3, base_s=0)
        deliver_pending(store, sinks, NOW + timedelta(hours=2), attempts=3, base_s=0)
    # THEN it was asked once, and the change is closed as refused
    assert len(receiver.requests) == 1 and first.refused == 1
    assert store.pending_handovers(NOW + timedelta(days=9)) == []


@pytest.mark.parametrize(("error", "permanent"), [
    ("InvalidArgument", True), ("ServiceUnavailable", False), ("NotFound", False)])
def test_the_pubsub_sink_refuses_for_good_only_what_pubsub_never_takes(
        error: str, permanent: bool) -> None:
    from google.api_core import exceptions as gexc

    from leadscore.integrations.ports import PermanentDelivery
    from leadscore.service.handover import pubsub_sink

    published: list[tuple[str, dict[str, Any]]] = []

    def publish(topic: str, message: dict[str, Any]) -> None:
        published.append((topic, message))
        raise getattr(gexc, error)("from the publisher client")

    # GIVEN a topic whose publish fails with this status WHEN the sink sends a change
    send = pubsub_sink("stage-changes", publish)
    with pytest.raises(Exception) as failed:
        send({"id": "h_1"})
    # THEN only INVALID_ARGUMENT is a refusal for good; the rest stays worth retrying
    assert isinstance(failed.value, PermanentDelivery) == permanent
    assert published == [("stage-changes", {"id": "h_1"})]
    assert send.name == "pubsub:stage-changes"
