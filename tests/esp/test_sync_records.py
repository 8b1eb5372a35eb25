"""The ESP sync records on every store: kept per tool and lead, without the email, and
erased with the lead."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import NOW
from fakes.mailchimp_api import MailchimpFake

from esp.conftest import mailchimp, newsletter_lead, no_sleep
from leadscore.service.esp_sync import sync_tool
from leadscore.store.port import SyncRecord

READER = "reader@example.org"


def test_records_hold_no_email_and_go_with_the_lead(mailchimp_api: MailchimpFake,
                                                    store: Any, rules: Any) -> None:
    # GIVEN a lead synced to Mailchimp
    lead = newsletter_lead(store, rules, READER)
    assert sync_tool(store, mailchimp(mailchimp_api), rules, NOW, sleep=no_sleep).synced == 1
    record = store.esp_synced("mailchimp", [lead.lead_id, "nobody"])[lead.lead_id]
    # THEN the record says what was sent, for that tool only, and not to whom
    assert record.member["stage"] == "lead" and "email" not in record.member
    assert READER not in record.model_dump_json()
    assert store.esp_synced("brevo", [lead.lead_id]) == {}
    # WHEN the lead is erased THEN its record goes too
    assert store.erase(lead.lead_id)
    assert store.esp_synced("mailchimp", [lead.lead_id]) == {}


def test_a_sync_of_named_leads_that_were_all_erased_meanwhile_sends_nothing(
        mailchimp_api: MailchimpFake, store: Any, rules: Any) -> None:
    # GIVEN a lead named for the sync (a decay shard changed it) and erased before the sync
    lead = newsletter_lead(store, rules, READER)
    assert store.erase(lead.lead_id, erased_at=NOW)
    # WHEN the email tool is synced for it THEN the run ends cleanly, having sent nothing
    # (an empty page of leads once raised IndexError and failed the whole run)
    report = sync_tool(store, mailchimp(mailchimp_api), rules, NOW, lead_ids=[lead.lead_id],
                       sleep=no_sleep)
    assert (report.examined, report.synced, report.error) == (0, 0, None)


@pytest.mark.firestore
def test_a_sync_record_written_while_firestore_erases_the_lead_goes_too(
        tmp_path: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        mailchimp_api: MailchimpFake, rules: Any) -> None:
    from conftest import make_store

    store = make_store("firestore", tmp_path, request)
    lead = newsletter_lead(store, rules, READER)
    real = store._delete_counted

    def sync_in_the_gap(ref: Any) -> None:
        # a sync that read the lead (still there) records what the tool accepted, after
        # the erasure deleted the sync records and before it deletes the lead document
        store.record_esp_synced([SyncRecord(tool="crm:hubspot", lead_id=lead.lead_id,
                                            synced_at=NOW, member={"score": 1})])
        monkeypatch.setattr(store, "_delete_counted", real)
        real(ref)

    monkeypatch.setattr(store, "_delete_counted", sync_in_the_gap)
    # WHEN the lead is erased THEN no sync record of it survives the erasure
    assert store.erase(lead.lead_id, erased_at=NOW)
    assert store.esp_synced("crm:hubspot", [lead.lead_id]) == {}
