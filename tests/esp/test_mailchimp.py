"""Mailchimp: merge fields, stage tags and the clean-up, against the local fake over HTTP."""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

import pytest
from builders import opened
from conftest import NOW
from fakes.mailchimp_api import MailchimpFake

from esp.conftest import DAY, mailchimp, newsletter_lead, no_sleep, warm_up
from leadscore.domain.rules import Rules
from leadscore.integrations.esp.mailchimp import MailchimpSync, subscriber_hash
from leadscore.service.decay import run_decay
from leadscore.service.esp_sync import cleanup_preview, sync_tool
from leadscore.service.writes import apply_events

ANA = "Ana.Pereira@tiendassol.example"


def test_setup_creates_the_merge_fields_once(mailchimp_api: MailchimpFake) -> None:
    # GIVEN an audience without leadscore's fields; WHEN setup runs twice
    sync = MailchimpSync("k-us6", "x", api_url=f"{mailchimp_api.url}/3.0")
    first = MailchimpSync(mailchimp_api.api_key, mailchimp_api.list_id,
                          api_url=f"{mailchimp_api.url}/3.0").setup()
    second = MailchimpSync(mailchimp_api.api_key, mailchimp_api.list_id,
                           api_url=f"{mailchimp_api.url}/3.0").setup()
    # THEN the seven fields exist with their documented types, created once
    assert len(first.created) == 7 and second.created == [] and len(second.existing) == 7
    assert mailchimp_api.merge_fields["LS_SCORE"]["type"] == "number"
    assert mailchimp_api.merge_fields["LS_STAGE"]["type"] == "dropdown"
    # and a wrong key is refused for good
    from leadscore.integrations.ports import PermanentDelivery
    with pytest.raises(PermanentDelivery, match="401"):
        sync.setup()


def test_members_are_addressed_by_the_md5_of_the_lowercased_email() -> None:
    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == subscriber_hash(
        "urist.mcvankab@freddiesjokes.com") == "62eeb292278cc15f5817cb78f7790b08"


def test_a_stage_change_becomes_fields_and_tags_once_across_429_and_500(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules) -> None:
    # GIVEN a cold lead synced to Mailchimp
    sync = mailchimp(mailchimp_api)
    lead = newsletter_lead(store, rules, ANA)
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (first.synced, lead.stage) == (1, "lead")
    member = mailchimp_api.member(ANA)
    assert member is not None and member["merge_fields"]["LS_STAGE"] == "lead"
    assert "leadscore-lead" in member["tags"]
    # WHEN it becomes an MQL and Mailchimp answers 429, then 500, then accepts
    later = NOW + DAY
    warm = warm_up(store, rules, ANA, later)
    assert warm.stage in ("mql", "sql")
    mailchimp_api.fail_next(429, {"title": "Too Many Requests", "status": 429})
    mailchimp_api.fail_next(500, {"title": "Internal Server Error", "status": 500})
    report = sync_tool(store, sync, rules, later, sleep=no_sleep)
    # THEN the member shows the new stage, score and tags, each change made exactly once
    assert (report.synced, report.pending) == (1, 0)
    member = mailchimp_api.member(ANA)
    assert member is not None
    fields = member["merge_fields"]
    assert (fields["LS_STAGE"], fields["LS_SCORE"]) == (warm.stage, round(warm.score))
    assert f"leadscore-{warm.stage}" in member["tags"] and "leadscore-lead" not in member["tags"]
    events = [(tag, status) for email, tag, status in mailchimp_api.tag_events if email == ANA]
    assert events.count((f"leadscore-{warm.stage}", "active")) == 1
    assert events.count(("leadscore-lead", "inactive")) == 1
    assert mailchimp_api.field_changes[ANA] == 2  # created, then the one change
    # AND a second sweep finds nothing to send
    requests = len(mailchimp_api.requests)
    assert sync_tool(store, sync, rules, later, sleep=no_sleep).changed == 0
    assert len(mailchimp_api.requests) == requests


def test_a_crash_between_the_write_and_the_sync_loses_and_repeats_nothing(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a lead synced, then warmed up while no sync ran (the process died after the write)
    sync = mailchimp(mailchimp_api)
    newsletter_lead(store, rules, ANA)
    sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    warm = warm_up(store, rules, ANA, NOW + DAY)
    # WHEN the next sweep dies after Mailchimp accepted but before the record was written
    calls = {"n": 0}
    real = type(store).record_esp_synced

    def crash_once(self: Any, records: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("process killed")
        real(self, records)

    monkeypatch.setattr(type(store), "record_esp_synced", crash_once)
    with pytest.raises(RuntimeError):
        sync_tool(store, sync, rules, NOW + DAY, sleep=no_sleep)
    again = sync_tool(store, sync, rules, NOW + DAY, sleep=no_sleep)
    # THEN the resend changed nothing more in Mailchimp: one stage move, one field change
    assert again.synced == 1
    events = [(t, s) for e, t, s in mailchimp_api.tag_events if e == ANA]
    assert events.count((f"leadscore-{warm.stage}", "active")) == 1
    assert mailchimp_api.field_changes[ANA] == 2
    assert sync_tool(store, sync, rules, NOW + DAY, sleep=no_sleep).changed == 0


@pytest.mark.parametrize("removal", ["archive", "unsubscribe", "tag"])
def test_six_months_without_an_open_runs_the_removal_and_an_open_brings_the_lead_back(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules, removal: str) -> None:
    # GIVEN a subscriber synced on day one, who then opens nothing for seven months
    sync = mailchimp(mailchimp_api, removal=removal, status_if_new="subscribed")
    lead = newsletter_lead(store, rules, ANA)
    sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    later = NOW + 210 * DAY
    summary = run_decay(store, rules, later)
    assert summary.flagged_non_openers == 1
    # WHEN the dry run looks, then the sweep runs
    preview = cleanup_preview(store, sync, rules)
    assert (preview.would_remove, preview.emails) == (1, [])
    report = sync_tool(store, sync, rules, later, sleep=no_sleep)
    # THEN the configured removal happened, once, and the lead's history says so (0 points)
    member = mailchimp_api.member(ANA)
    assert member is not None and report.removed == 1
    if removal == "archive":
        assert member["archived"]
    elif removal == "unsubscribe":
        assert member["status"] == "unsubscribed"
    else:
        assert "leadscore-non-opener" in member["tags"] and member["status"] == "subscribed"
    entry = store.history(lead.lead_id)[-1]
    assert (entry.kind, entry.delta, entry.source) == ("esp_removed", 0, "mailchimp")
    assert cleanup_preview(store, sync, rules).would_remove == 0
    assert sync_tool(store, sync, rules, later, sleep=no_sleep).changed == 0
    # WHEN the person opens an email (a human open) and the flag clears
    back = later + DAY
    apply_events(store, lead.lead_id, ANA, [opened(ANA, "open-back", back)], rules, back)
    run_decay(store, rules, back + DAY)
    restored = sync_tool(store, sync, rules, back + DAY, sleep=no_sleep)
    # THEN the lead is back per Mailchimp's rules: re-added from the archive, the tag off;
    # an unsubscribed person stays unsubscribed until they resubscribe themselves
    member = mailchimp_api.member(ANA)
    assert member is not None and restored.restored == 1
    assert not member["archived"] and "leadscore-non-opener" not in member["tags"]
    assert member["status"] == ("unsubscribed" if removal == "unsubscribe" else "subscribed")
    assert store.history(lead.lead_id)[-1].kind == "esp_restored"


def test_the_fake_refuses_an_eleventh_connection_and_the_sweep_stays_under_it(
        mailchimp_api: MailchimpFake, rules: Rules) -> None:
    from leadscore.store.memory import MemoryStore

    # GIVEN Mailchimp's limit of 10 simultaneous connections, each answer taking a while
    mailchimp_api.delay_s = 0.3
    statuses: list[int] = []

    def call() -> None:
        request = urllib.request.Request(f"{mailchimp_api.url}/3.0/lists/x")  # noqa: S310
        try:
            urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(429) >= 1 and mailchimp_api.refused_for_connections >= 1
    # WHEN a sweep syncs twenty leads
    mailchimp_api.delay_s = 0.0
    mailchimp_api.max_in_flight = 0
    store = MemoryStore()
    sync = mailchimp(mailchimp_api)
    for n in range(20):
        newsletter_lead(store, rules, f"reader{n}@example.org")
    report = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN it used one connection at a time and one batch for the fields
    assert report.synced == 20 and mailchimp_api.max_in_flight == 1
    assert mailchimp_api.batch_sizes[-1] == 20


def test_a_member_refused_for_good_is_recorded_not_retried_and_resent_when_it_changes(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules,
        caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN two readers, one of them in a compliance state Mailchimp will never accept
    sync = mailchimp(mailchimp_api)
    blocked = "bounced.reader@tiendassol.example"
    newsletter_lead(store, rules, ANA)
    lead = newsletter_lead(store, rules, blocked)
    mailchimp_api.compliance.add(blocked)
    # WHEN the sweep runs
    with caplog.at_level("INFO"):
        first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN the other reader is synced, the refusal is counted and logged without the email
    assert (first.synced, first.rejected) == (1, 1) and mailchimp_api.member(blocked) is None
    assert "refused for good" in caplog.text and blocked not in caplog.text
    record = store.esp_synced("mailchimp", [lead.lead_id])[lead.lead_id]
    assert record.member == {} and record.refused is not None
    assert record.refused_reason == "ERROR_GENERIC"
    # AND the next sweeps send nothing for it: it waits for a change
    requests = len(mailchimp_api.requests)
    again = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (again.changed, again.refused_earlier) == (0, 1)
    assert len(mailchimp_api.requests) == requests
    # WHEN the lead changes (a demo request) after the person resubscribed in Mailchimp
    later = NOW + DAY
    warm = warm_up(store, rules, blocked, later)
    mailchimp_api.compliance.clear()
    resent = sync_tool(store, sync, rules, later, sleep=no_sleep)
    # THEN it is sent again and lands; the record forgets the refusal
    member = mailchimp_api.member(blocked)
    assert resent.synced == 1 and member is not None
    assert member["merge_fields"]["LS_STAGE"] == warm.stage
    record = store.esp_synced("mailchimp", [lead.lead_id])[lead.lead_id]
    assert record.refused is None and record.member["stage"] == warm.stage
