"""SendGrid Marketing Campaigns: custom fields by id, stage lists, the asynchronous upsert,
and the clean-up, against the local fake."""

from __future__ import annotations

from typing import Any

import pytest
from builders import opened
from conftest import NOW
from fakes.sendgrid_api import SendGridFake

from esp.conftest import (
    DAY,
    SENDGRID_GROUP,
    SENDGRID_STAGE_LISTS,
    newsletter_lead,
    no_sleep,
    sendgrid,
    silent_reader,
    warm_up,
)
from leadscore.service.decay import run_decay
from leadscore.service.esp_sync import sync_tool
from leadscore.service.writes import apply_events

ANA = "ana@tiendassol.example"


def test_a_stage_change_moves_lists_once_and_waits_for_the_upsert_job(
        sendgrid_api: SendGridFake, store: Any, rules: Any) -> None:
    # GIVEN a cold lead synced to SendGrid (the upsert job completed before it counted)
    sync = sendgrid(sendgrid_api)
    newsletter_lead(store, rules, ANA)
    assert sync_tool(store, sync, rules, NOW, sleep=no_sleep).synced == 1
    contact = sendgrid_api.contact(ANA)
    assert contact is not None and contact["list_ids"] == {SENDGRID_STAGE_LISTS["lead"]}
    # WHEN it warms up and SendGrid answers 429 (with its reset time), then 503
    warm = warm_up(store, rules, ANA, NOW + DAY)
    sendgrid_api.rate_limited(in_s=1)
    sendgrid_api.fail_next(503, {"errors": [{"message": "unavailable"}]})
    waits: list[float] = []
    report = sync_tool(store, sync, rules, NOW + DAY, sleep=waits.append)
    # THEN the custom fields and the stage list changed once
    assert report.synced == 1 and 0 <= waits[0] <= 1
    assert sendgrid_api.by_name(ANA)["ls_stage"] == warm.stage
    assert sendgrid_api.by_name(ANA)["ls_score"] == round(warm.score)
    contact = sendgrid_api.contact(ANA)
    assert contact is not None and contact["list_ids"] == {SENDGRID_STAGE_LISTS[warm.stage]}
    moves = [(lst, what) for email, lst, what in sendgrid_api.list_events if email == ANA]
    assert moves.count((SENDGRID_STAGE_LISTS[warm.stage], "added")) == 1
    assert moves.count((SENDGRID_STAGE_LISTS["lead"], "removed")) == 1
    assert sendgrid_api.field_changes[ANA] == 2
    assert sync_tool(store, sync, rules, NOW + DAY, sleep=no_sleep).changed == 0


@pytest.mark.parametrize("removal", ["lists", "suppress"])
def test_non_openers_leave_and_an_open_brings_them_back(
        sendgrid_api: SendGridFake, store: Any, rules: Any, removal: str) -> None:
    sync = sendgrid(sendgrid_api, removal)
    lead, later = silent_reader(store, sync, rules, ANA, 200)
    contact = sendgrid_api.contact(ANA)
    assert contact is not None
    if removal == "lists":
        assert contact["list_ids"] == set()
    else:
        assert ANA in sendgrid_api.groups[SENDGRID_GROUP]
    back = later + DAY
    apply_events(store, lead.lead_id, ANA, [opened(ANA, "o", back)], rules, back)
    run_decay(store, rules, back + DAY)
    assert sync_tool(store, sync, rules, back + DAY, sleep=no_sleep).restored == 1
    assert ANA not in sendgrid_api.groups[SENDGRID_GROUP]
    assert contact["list_ids"] == {SENDGRID_STAGE_LISTS["lead"]}
