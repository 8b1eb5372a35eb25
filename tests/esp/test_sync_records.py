"""The ESP sync records on every store: kept per tool and lead, without the email, and
erased with the lead."""

from __future__ import annotations

from typing import Any

from conftest import NOW
from fakes.mailchimp_api import MailchimpFake

from esp.conftest import mailchimp, newsletter_lead, no_sleep
from leadscore.service.esp_sync import sync_tool

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
