"""Brevo: contact attributes, stage lists and the clean-up, against the local fake."""

from __future__ import annotations

from typing import Any

import pytest
from builders import event, opened
from conftest import NOW
from fakes.brevo_api import BrevoFake

from esp.conftest import (
    BREVO_NON_OPENERS,
    BREVO_STAGE_LISTS,
    DAY,
    brevo,
    newsletter_lead,
    no_sleep,
    silent_reader,
    warm_up,
)
from leadscore.domain.rules import Rules
from leadscore.integrations.esp.brevo import BrevoSync
from leadscore.service.decay import run_decay
from leadscore.service.esp_sync import sync_tool
from leadscore.service.writes import apply_events

ANA = "ana@tiendassol.example"


def test_setup_creates_float_and_text_attributes_once(brevo_api: BrevoFake) -> None:
    first = brevo(brevo_api)
    report = first.setup()
    assert report.created == [] and len(report.existing) == 7
    assert (brevo_api.attributes["LS_SCORE"], brevo_api.attributes["LS_STAGE"]) == (
        "float", "text")


def test_a_stage_change_moves_lists_once_after_a_429_with_reset_and_a_500(
        brevo_api: BrevoFake, store: Any, rules: Rules) -> None:
    # GIVEN a cold lead synced to Brevo: on the `lead` list
    sync = brevo(brevo_api)
    newsletter_lead(store, rules, ANA)
    sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    contact = brevo_api.contact(ANA)
    assert contact is not None and contact["listIds"] == {BREVO_STAGE_LISTS["lead"]}
    # WHEN it warms up and Brevo answers 429 (reset in 2 s), then 500, then accepts
    warm = warm_up(store, rules, ANA, NOW + DAY)
    brevo_api.rate_limited(reset_s=2)
    brevo_api.fail_next(500, {"code": "internal_error", "message": "boom"})
    waits: list[float] = []
    report = sync_tool(store, sync, rules, NOW + DAY, sleep=waits.append)
    # THEN the client waited as told, and the contact moved lists once, attributes updated
    assert report.synced == 1 and waits[0] == 2
    contact = brevo_api.contact(ANA)
    assert contact is not None
    assert contact["listIds"] == {BREVO_STAGE_LISTS[warm.stage]}
    assert contact["attributes"]["LS_SCORE"] == round(warm.score)
    moves = [(lst, what) for email, lst, what in brevo_api.list_events if email == ANA]
    assert moves.count((BREVO_STAGE_LISTS[warm.stage], "added")) == 1
    assert moves.count((BREVO_STAGE_LISTS["lead"], "removed")) == 1
    assert sync_tool(store, sync, rules, NOW + DAY, sleep=no_sleep).changed == 0


def test_a_429_beyond_the_attempts_leaves_the_change_for_the_next_sweep(
        brevo_api: BrevoFake, store: Any, rules: Rules) -> None:
    sync = brevo(brevo_api)
    newsletter_lead(store, rules, ANA)
    brevo_api.rate_limited(reset_s=1, times=3)
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (first.synced, first.pending, first.retry_after_s) == (0, 1, 1)
    assert sync_tool(store, sync, rules, NOW, sleep=no_sleep).synced == 1


@pytest.mark.parametrize("removal", ["list", "blocklist"])
def test_non_openers_leave_and_come_back_after_a_resubscribe(
        brevo_api: BrevoFake, store: Any, rules: Rules, removal: str) -> None:
    # GIVEN a contact synced on day one who opens nothing for seven months
    sync: BrevoSync = brevo(brevo_api, removal)
    # WHEN the sweep runs
    lead, later = silent_reader(store, sync, rules, ANA, 210)
    # THEN the contact is on the non-opener list only, or blocklisted
    contact = brevo_api.contact(ANA)
    assert contact is not None
    if removal == "list":
        assert contact["listIds"] == {BREVO_NON_OPENERS}
    else:
        assert contact["emailBlacklisted"] is True
    assert store.history(lead.lead_id)[-1].kind == "esp_removed"
    # WHEN the person resubscribes (no open yet) THEN they are back on their stage list
    back = later + DAY
    apply_events(store, lead.lead_id, ANA, [event("email_resubscribed", ANA, "resub", back,
                                                  source="esp")], rules, back)
    assert sync_tool(store, sync, rules, back, sleep=no_sleep).restored == 1
    contact = brevo_api.contact(ANA)
    assert contact is not None and contact["emailBlacklisted"] is False
    assert contact["listIds"] == {BREVO_STAGE_LISTS["lead"]}
    # and a later human open keeps them there (nothing to undo twice)
    apply_events(store, lead.lead_id, ANA, [opened(ANA, "o", back + DAY)], rules, back + DAY)
    run_decay(store, rules, back + 2 * DAY)
    assert sync_tool(store, sync, rules, back + 2 * DAY, sleep=no_sleep).restored == 0
