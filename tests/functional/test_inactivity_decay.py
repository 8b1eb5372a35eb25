"""`inactivity_decay` through the functions-framework with real Pub/Sub CloudEvents, and the
fan-out through the Pub/Sub emulator."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from builders import form
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from conftest import NOW, PROJECT

from functional.conftest import MAIN
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.service import writes as uow
from leadscore.service.writes import apply_events

LATER = NOW + timedelta(days=60)
PUBSUB = "google.cloud.pubsub.topic.v1.messagePublished"


def decay_client() -> Any:
    import functions_framework

    return functions_framework.create_app("inactivity_decay", str(MAIN),
                                          "cloudevent").test_client()


def pubsub_event(payload: bytes | None, message_id: str = "11937923011474843") -> Any:
    """The CloudEvent Pub/Sub push turns into (as the functions-framework delivers it)."""
    message: dict[str, Any] = {"messageId": message_id, "publishTime": LATER.isoformat()}
    if payload is not None:
        message["data"] = base64.b64encode(payload).decode()
    event = CloudEvent({"type": PUBSUB, "source":
                        f"//pubsub.googleapis.com/projects/{PROJECT}/topics/decay-schedule",
                        "time": LATER.isoformat()},
                       {"message": message,
                        "subscription": f"projects/{PROJECT}/subscriptions/decay"})
    return to_binary(event)


def seed(store: Any, rules: Any, count: int) -> None:
    for i in range(count):
        email = f"lead{i}@acme.com"
        apply_events(store, lead_id_for(email), email, [form(email, f"f{i}", NOW,
                                                            kind="demo_request")], rules, NOW)


@pytest.fixture
def app(durable_store: Any) -> Iterator[Container]:
    built = Container(Settings(decay_inline_limit=1000), store=durable_store,
                      clock=lambda: LATER)
    install(built)
    yield built
    install(None)


def test_the_scheduled_tick_decays_due_leads(app: Container) -> None:
    # GIVEN mql leads from 60 days ago and the scheduler's tick (an empty JSON object)
    seed(app.store, app.rules, 3)
    headers, body = pubsub_event(b"{}")
    # WHEN Pub/Sub pushes it
    answer = decay_client().post("/", headers=headers, data=body)
    # THEN every due lead is re-scored at the tick's time and falls back to `lead`
    assert answer.status_code == 200
    leads = app.store.list_leads()
    assert len(leads) == 3 and all(x.stage == "lead" and x.scored_at == LATER for x in leads)


@pytest.mark.parametrize("payload", [b"not json", b'{"buckets": [99]}',
                                     b'{"now": "yesterday"}', b"[1, 2]"])
def test_a_malformed_message_is_acknowledged_and_changes_nothing(
        app: Container, payload: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    seed(app.store, app.rules, 1)
    before = app.store.list_leads()
    headers, body = pubsub_event(payload)
    answer = decay_client().post("/", headers=headers, data=body)
    # acknowledged (2xx) so Pub/Sub does not redeliver a message that can never succeed
    assert answer.status_code == 200
    assert app.store.list_leads() == before
    assert "decay message refused" in capsys.readouterr().out


def test_a_store_failure_is_retried_by_pubsub(app: Container,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seed(app.store, app.rules, 1)

    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("deadline exceeded")

    monkeypatch.setattr(uow, "refresh_view", broken)
    headers, body = pubsub_event(b"{}")
    assert decay_client().post("/", headers=headers, data=body).status_code == 500


def pull_all(subscriber: Any, subscription: str, expected: int) -> list[bytes]:
    """Pull until `expected` messages arrived (a pull may return part of them) or 30 s pass."""
    import time

    messages: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(messages) < expected and time.monotonic() < deadline:
        pulled = subscriber.pull(subscription=subscription, max_messages=50, timeout=10)
        if pulled.received_messages:
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[m.ack_id for m in pulled.received_messages])
        messages += [m.message.data for m in pulled.received_messages]
    return messages


def test_fan_out_through_the_pubsub_emulator(durable_store: Any, pubsub_emulator: str) -> None:
    from google.cloud import pubsub_v1

    # GIVEN more due leads than one invocation handles, and a shard topic with a subscription
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/decay-shards-"
                                   f"{id(durable_store)}").name
    subscription = subscriber.create_subscription(
        name=topic.replace("/topics/", "/subscriptions/") + "-pull", topic=topic).name
    install(Container(Settings(decay_inline_limit=5, decay_shard_topic=topic,
                               google_cloud_project=PROJECT), store=durable_store,
                      clock=lambda: LATER))
    try:
        rules = Container().rules
        seed(durable_store, rules, 40)
        client = decay_client()
        # WHEN the daily tick arrives
        headers, body = pubsub_event(b"{}")
        assert client.post("/", headers=headers, data=body).status_code == 200
        # THEN it did five leads itself and published one message per shard
        done = [x for x in durable_store.list_leads(limit=100) if x.scored_at == LATER]
        assert len(done) == 5
        messages = pull_all(subscriber, subscription, expected=8)
        assert len(messages) == 8
        buckets = sorted(b for m in messages for b in json.loads(m)["buckets"])
        assert buckets == list(range(64))  # the shards cover every bucket exactly once
        # AND each shard message, pushed to the same function, finishes its part
        for i, data in enumerate(messages):
            headers, body = pubsub_event(data, message_id=f"shard-{i}")
            assert client.post("/", headers=headers, data=body).status_code == 200
    finally:
        install(None)
    leads = durable_store.list_leads(limit=100)
    assert len(leads) == 40 and all(x.scored_at == LATER and x.stage == "lead" for x in leads)


def test_newly_flagged_non_openers_are_published(durable_store: Any,
                                                 pubsub_emulator: str) -> None:
    from builders import event
    from google.cloud import pubsub_v1

    # GIVEN a lead last sent email seven months ago, and a non-opener topic
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(
        name=f"projects/{PROJECT}/topics/non-openers-{id(durable_store)}").name
    subscription = subscriber.create_subscription(
        name=topic.replace("/topics/", "/subscriptions/"), topic=topic).name
    install(Container(Settings(non_opener_topic=topic, google_cloud_project=PROJECT),
                      store=durable_store, clock=lambda: LATER))
    try:
        rules = Container().rules
        email = "silent.reader@acme.com"
        sent = LATER - timedelta(days=190)
        apply_events(durable_store, lead_id_for(email), email, [
            event("email_delivered", email, "d1", sent, source="esp")], rules, sent)
        # WHEN the daily tick runs
        headers, body = pubsub_event(b"{}")
        assert decay_client().post("/", headers=headers, data=body).status_code == 200
    finally:
        install(None)
    # THEN the lead is flagged and its flag was published once, for a sync job
    assert durable_store.get_lead(lead_id_for(email)).non_opener is True
    messages = [json.loads(m) for m in pull_all(subscriber, subscription, expected=1)]
    assert [(m["lead_id"], m["email"]) for m in messages] == [(lead_id_for(email), email)]


def test_newly_flagged_non_openers_go_to_the_ses_suppression_list(durable_store: Any) -> None:
    import boto3
    from botocore.stub import Stubber
    from builders import event

    # GIVEN SES suppression turned on, with botocore's Stubber at the AWS edge (moto lacks it)
    app = Container(Settings(ses_suppression_region="eu-west-1"), store=durable_store,
                    clock=lambda: LATER)
    client = boto3.client("sesv2", region_name="eu-west-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    stub = Stubber(client)
    email = "ghost@acme.com"
    stub.add_response("put_suppressed_destination", {},
                      {"EmailAddress": email, "Reason": "BOUNCE"})
    app._sesv2 = client
    install(app)
    sent = LATER - timedelta(days=200)
    apply_events(durable_store, lead_id_for(email), email, [
        event("email_delivered", email, "d1", sent, source="esp")], app.rules, sent)
    try:
        with stub:
            headers, body = pubsub_event(b"{}")
            assert decay_client().post("/", headers=headers, data=body).status_code == 200
            # THEN exactly that address was suppressed, once
            stub.assert_no_pending_responses()
    finally:
        install(None)
