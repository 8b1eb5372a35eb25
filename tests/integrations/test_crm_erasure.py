"""An erased person stays erased in HubSpot too (service/crm_erasure.py): erasing a lead
deletes its HubSpot contact with HubSpot's GDPR delete, against the fake over real HTTP,
durably (HubSpot down at the erasure: a later sweep deletes it) and in the right order (an
upsert queued or already on its way never brings the contact back)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW
from fakes.hubspot_api import HubSpotFake

from integrations.conftest import HUBSPOT_TOKEN, warm_lead_events
from integrations.test_crm_outbox import EMAIL, crm_for
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.writes import apply_events

AUTH = {"Authorization": "Bearer t0ken"}


@pytest.fixture
def app(durable_store: Any, rules: Rules, hubspot_api: HubSpotFake) -> Iterator[Container]:
    """A deployment with HubSpot sync on, and the warm lead already synced to HubSpot."""
    crm_for(hubspot_api)
    built = Container(Settings(api_token="t0ken", hubspot_token=HUBSPOT_TOKEN,
                               hubspot_api_url=hubspot_api.url), store=durable_store,
                      rules=rules, clock=lambda: NOW)
    apply_events(durable_store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL), rules, NOW)
    assert built.sync_crm().synced == 1
    assert EMAIL in hubspot_api.contacts
    install(built)
    yield built
    install(None)


def erase(app: Container) -> None:
    from functional.conftest import client_for

    answer = client_for("leads_api").delete(f"/leads/{lead_id_for(EMAIL)}", headers=AUTH)
    assert answer.status_code == 200, answer.get_json()
    assert app.handovers_settled(30)


def gdpr_deletes(fake: HubSpotFake) -> list[tuple[str, str]]:
    return [r for r in fake.requests if r[1].endswith("/gdpr-delete")]


def test_erasing_a_synced_lead_deletes_its_hubspot_contact(
        app: Container, hubspot_api: HubSpotFake, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a lead HubSpot has  WHEN it is erased through the leads API
    erase(app)
    # THEN HubSpot has no contact for it, deleted with the GDPR delete, the address never
    # in a URL or a log line
    assert EMAIL not in hubspot_api.contacts
    assert hubspot_api.gdpr_deleted == [EMAIL]
    assert all(EMAIL not in path for _, path in hubspot_api.requests)
    said = [line for line in capsys.readouterr().out.splitlines() if "crm contact erased" in line]
    assert len(said) == 1 and lead_id_for(EMAIL) in said[0] and EMAIL not in said[0]
    # and nothing is left to send
    assert app.sync_crm().erased == 0
    assert len(gdpr_deletes(hubspot_api)) == 1


def test_hubspot_down_at_the_erasure_a_later_sweep_deletes_the_contact(
        app: Container, hubspot_api: HubSpotFake) -> None:
    # GIVEN HubSpot answers 503 to everything for a while
    hubspot_api.fail_next(503, {"status": "error", "message": "unavailable"}, times=3)
    # WHEN the lead is erased THEN the contact is still there: HubSpot refused all three
    # tries (LEADSCORE_HUBSPOT_ATTEMPTS) and the erasure stays recorded
    erase(app)
    assert EMAIL in hubspot_api.contacts and hubspot_api.gdpr_deleted == []
    assert len(gdpr_deletes(hubspot_api)) == 3
    # WHEN a later sweep runs (the decay job's CRM sync), once the backoff has passed
    later = Container(app.settings, store=app.store, rules=app.rules,
                      clock=lambda: NOW + timedelta(minutes=3))
    report = later.sync_crm()
    # THEN the contact is deleted, once, and nothing stays pending
    assert report.erased == 1
    assert EMAIL not in hubspot_api.contacts and hubspot_api.gdpr_deleted == [EMAIL]
    assert later.sync_crm().erased == 0


def test_a_queued_upsert_after_the_erasure_does_not_bring_the_contact_back(
        app: Container, hubspot_api: HubSpotFake) -> None:
    lead_id = lead_id_for(EMAIL)
    # GIVEN the lead was queued for the CRM (a write just scored it) and then erased
    erase(app)
    # WHEN the queue's run comes after the erasure THEN nothing is upserted for it
    report = app.sync_crm([lead_id])
    assert report.synced == 0
    assert EMAIL not in hubspot_api.contacts and hubspot_api.stored[EMAIL] == 1


def test_an_upsert_on_its_way_during_the_erasure_does_not_bring_the_contact_back(
        app: Container, hubspot_api: HubSpotFake, rules: Rules) -> None:
    lead_id = lead_id_for(EMAIL)
    # GIVEN a sync run that read the lead and whose upsert HubSpot holds
    hubspot_api.upserts_open.clear()
    run = threading.Thread(target=app.sync_crm, kwargs={"lead_ids": [lead_id]}, daemon=True)
    from leadscore.domain.state import LeadState

    lead = app.store.get_lead(lead_id)
    assert isinstance(lead, LeadState)
    app.store.put_lead(lead.model_copy(update={"stage": "sql", "score": lead.score + 30}))
    run.start()
    while not any(p.endswith("/batch/upsert") for _, p in hubspot_api.requests[1:]):
        threading.Event().wait(0.01)
    # WHEN the lead is erased meanwhile (its GDPR delete goes first) and then HubSpot
    # stores the upsert that was on its way
    erase(app)
    assert hubspot_api.gdpr_deleted == [EMAIL]
    hubspot_api.upserts_open.set()
    run.join(30)
    # THEN the run saw the erasure after its batch and deleted the contact again
    assert hubspot_api.stored[EMAIL] == 2
    assert EMAIL not in hubspot_api.contacts
    assert hubspot_api.gdpr_deleted == [EMAIL, EMAIL]
    # and keeps no sync record for the erased lead
    assert app.store.esp_synced("crm:hubspot", [lead_id]) == {}


def test_a_person_who_comes_back_with_consent_after_the_erasure_is_synced_again(
        app: Container, hubspot_api: HubSpotFake, rules: Rules) -> None:
    from builders import form

    from leadscore.service.erasure import erase_address

    lead_id = lead_id_for(EMAIL)
    # GIVEN the lead was erased yesterday, and HubSpot deleted its contact
    yesterday = NOW - timedelta(days=1)
    assert erase_address(app.store, EMAIL, yesterday, crm_tools=app.crm_tools())
    assert app.erase_in_crm().erased == 1 and EMAIL not in hubspot_api.contacts
    # WHEN the person fills in a form today (consent: a new lead) and the CRM syncs
    apply_events(app.store, lead_id, EMAIL, [form(EMAIL, "back", NOW, kind="newsletter")],
                 rules, NOW)
    report = app.sync_crm([lead_id])
    # THEN the new lead reaches HubSpot and stays there (its old tombstone erases nothing)
    assert (report.synced, report.erased) == (1, 0)
    assert EMAIL in hubspot_api.contacts
    assert lead_id in app.store.esp_synced("crm:hubspot", [lead_id])
