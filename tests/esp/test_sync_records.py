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
