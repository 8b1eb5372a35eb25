"""Consent (issue 21): a form post never reactivates an unsubscribed or complained address;
only the ESP's own resubscribe event does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import event, form
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.ingest import ingest

EMAIL = "opted.out@example.com"


@pytest.mark.parametrize("kind", ["email_unsubscribed", "email_complained"])
def test_a_form_post_never_reactivates_an_opted_out_address(store: Any, rules: Rules,
                                                           kind: str) -> None:
    # GIVEN an address that unsubscribed (or complained) at its ESP
    ingest(store, rules, [event(kind, EMAIL, "u1", NOW - timedelta(days=1), source="esp")],
           NOW)
    # WHEN anyone posts the newsletter form (and a contact form) for it afterwards
    ingest(store, rules, [form(EMAIL, "f1", NOW), form(EMAIL, "f2", NOW, kind="contact")],
           NOW)
    lead = store.get_lead(lead_id_for(EMAIL))
    # THEN it stays opted out; the form itself still counts
    assert lead is not None and lead.email_status != "active"
    assert lead.counters["form_submitted"] == 2
    # AND the ESP's own resubscribe event makes it active again
    ingest(store, rules, [event("email_resubscribed", EMAIL, "r1", NOW, source="esp")], NOW)
    assert store.get_lead(lead_id_for(EMAIL)).email_status == "active"
