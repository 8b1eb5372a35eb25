"""The deployed path: `inactivity_decay` (a Pub/Sub CloudEvent through the
functions-framework) flags a non-opener, and Container.dispatch takes it off Mailchimp."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from builders import event, form
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from conftest import NOW, PROJECT
from fakes.mailchimp_api import MailchimpFake
from functional.conftest import MAIN

from esp.conftest import AUDIENCE, MAILCHIMP_KEY
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import SHARDS, lead_id_for
from leadscore.service.writes import apply_events

LATER = NOW + timedelta(days=200)
QUIET, KEEN = "quiet@example.org", "keen@example.org"


def _readers(store: Any, rules: Any, mailchimp_api: MailchimpFake) -> Settings:
    """Two readers who got a newsletter 200 days ago; settings syncing to the fake."""
    for email in (QUIET, KEEN):
        apply_events(store, lead_id_for(email), email, [
            form(email, f"f-{email}", NOW),
            event("email_delivered", email, f"d-{email}", NOW, source="esp")], rules, NOW)
    return Settings(mailchimp_api_key=MAILCHIMP_KEY, mailchimp_list_id=AUDIENCE,
                    mailchimp_api_url=f"{mailchimp_api.url}/3.0",
                    mailchimp_removal="archive", mailchimp_status_if_new="subscribed")


def _opens_last_week(store: Any, rules: Any) -> None:
    week_ago = LATER - timedelta(days=7)
    apply_events(store, lead_id_for(KEEN), KEEN, [
        event("email_opened", KEEN, "o", week_ago, source="esp")], rules, week_ago)


def test_the_decay_function_sends_flagged_non_openers_to_the_removal_action(
        durable_store: Any, mailchimp_api: MailchimpFake, rules: Any) -> None:
    # GIVEN two readers on the audience, mailed 200 days ago; one opened last week
    settings = _readers(durable_store, rules, mailchimp_api)
    _opens_last_week(durable_store, rules)
    install(Container(settings, store=durable_store, rules=rules, clock=lambda: LATER))
    try:
        on_day_one = Container(settings, store=durable_store, rules=rules, clock=lambda: NOW)
        on_day_one.esp_syncs()[0].setup()
        on_day_one.sync_esp()  # both are Mailchimp members since day one
        assert len(mailchimp_api.active()) == 2
        # WHEN the scheduler's daily tick arrives
        import functions_framework

        client = functions_framework.create_app("inactivity_decay", str(MAIN),
                                                "cloudevent").test_client()
        assert _deliver(client, LATER, b"{}") == 200
    finally:
        install(None)
    # THEN the non-opener is archived in Mailchimp, the other reader keeps their fields,
    # and the quiet one's history records the removal with 0 points
    quiet, keen = mailchimp_api.member(QUIET), mailchimp_api.member(KEEN)
    assert quiet is not None and quiet["archived"]
    assert keen is not None and not keen["archived"]
    assert keen["merge_fields"]["LS_STAGE"] == "lead"
    entry = durable_store.history(lead_id_for(QUIET))[-1]
    assert (entry.kind, entry.delta) == ("esp_removed", 0)


def _deliver(client: Any, when: Any, payload: bytes) -> int:
    """One Pub/Sub push of the decay topic, as the functions-framework receives it."""
    tick = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished",
                       "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/d",
                       "time": when.isoformat()},
                      {"message": {"messageId": "1", "data": base64.b64encode(payload).decode()},
                       "subscription": f"projects/{PROJECT}/subscriptions/decay"})
    headers, body = to_binary(tick)
    status: int = client.post("/", headers=headers, data=body).status_code
    return status


def test_a_shard_syncs_only_its_own_changes_and_the_tick_compares_everything(
        durable_store: Any, mailchimp_api: MailchimpFake, rules: Any) -> None:
    # GIVEN the same two readers on the audience since day one; the keen one's score has
    # moved since (an open last week) without a stage change
    settings = _readers(durable_store, rules, mailchimp_api)
    on_day_one = Container(settings, store=durable_store, rules=rules, clock=lambda: NOW)
    on_day_one.esp_syncs()[0].setup()
    on_day_one.sync_esp()
    day_one_score = mailchimp_api.member(KEEN)["merge_fields"]["LS_SCORE"]  # type: ignore[index]
    _opens_last_week(durable_store, rules)
    install(Container(settings, store=durable_store, rules=rules, clock=lambda: LATER))
    try:
        import functions_framework

        client = functions_framework.create_app("inactivity_decay", str(MAIN),
                                                "cloudevent").test_client()
        # WHEN a decay shard (here: every bucket) runs
        shard = b'{"buckets": [%s]}' % ",".join(map(str, range(SHARDS))).encode()
        assert _deliver(client, LATER, shard) == 200
        keen = durable_store.get_lead(lead_id_for(KEEN))
        assert round(keen.score) != day_one_score
        # THEN it took its own flagged non-opener off the list, and compared nobody else
        quiet = mailchimp_api.member(QUIET)
        assert quiet is not None and quiet["archived"]
        member = mailchimp_api.member(KEEN)
        assert member is not None and member["merge_fields"]["LS_SCORE"] == day_one_score
        # WHEN the day's tick runs (once per decay run)
        assert _deliver(client, LATER, b"{}") == 200
    finally:
        install(None)
    # THEN the full comparison brought the keen reader's score up to date
    member = mailchimp_api.member(KEEN)
    assert member is not None and member["merge_fields"]["LS_SCORE"] == round(keen.score)
