"""The Pub/Sub sink against the Pub/Sub emulator: a malformed topic name is the deployment's
to fix, like a missing topic (review E: Pub/Sub's INVALID_ARGUMENT "Invalid [topics] name"
refused every change for good, so none reached the topic once the setting was fixed), while
a message Pub/Sub can never take stays refused for good."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW, PROJECT

from functional.test_handover_workers import write_changes
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.integrations.ports import PermanentDelivery
from leadscore.service.handover import deliver_pending, pubsub_sink


def test_a_malformed_topic_name_keeps_the_change_for_when_the_topic_is_fixed(
        store: Any, pubsub_emulator: str) -> None:
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(
        name=f"projects/{PROJECT}/topics/stage-changes-{id(store)}").name
    subscription = subscriber.create_subscription(
        name=topic.replace("/topics/", "/subscriptions/"), topic=topic).name
    publish = Container(Settings(api_token="t", google_cloud_project=PROJECT),
                        store=store, clock=lambda: NOW).publish
    # GIVEN a stage change and a deployment whose topic setting is not a valid name
    write_changes(store, 1)
    # WHEN a sweep publishes to it, and a later one runs once the setting is fixed
    broken = deliver_pending(store, [pubsub_sink(f"projects/{PROJECT}/topics/bad name!",
                                                 publish)], NOW, attempts=1)
    fixed = deliver_pending(store, [pubsub_sink(topic, publish)], NOW + timedelta(hours=1),
                            attempts=1)
    # THEN the first left it pending (not refused), and the second published it
    assert (broken.failed, broken.refused, fixed.delivered) == (1, 0, 1)
    pulled = subscriber.pull(subscription=subscription, max_messages=10, timeout=30)
    assert [json.loads(m.message.data)["id"] for m in pulled.received_messages] == ["h_000"]


def test_a_message_pubsub_can_never_take_is_refused_for_good(pubsub_emulator: str) -> None:
    from google.cloud import pubsub_v1

    topic = pubsub_v1.PublisherClient().create_topic(
        name=f"projects/{PROJECT}/topics/too-large").name
    publish = Container(Settings(api_token="t", google_cloud_project=PROJECT),
                        clock=lambda: NOW).publish
    # GIVEN a message over Pub/Sub's 10 MB limit WHEN the sink publishes it
    with pytest.raises(PermanentDelivery) as refused:
        pubsub_sink(topic, publish)({"id": "h_1", "padding": "x" * 11_000_000})
    # THEN it is refused for good
    assert refused.value.status == 400
