"""An erased person stays erased in HubSpot too (service/crm_erasure.py): erasing a lead
deletes its HubSpot contact with HubSpot's GDPR delete, against the fake over real HTTP,
durably (HubSpot down at the erasure: a later sweep deletes it) and in the right order (an
upsert queued or already on its way never brings the contact back)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
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


def contact_reads(fake: HubSpotFake) -> list[tuple[str, str]]:
    return [r for r in fake.requests if r[1].endswith("/contacts/batch/read")]


def assert_forgotten_after_settle(app: Container, fake: HubSpotFake,
                                  deleted_at: datetime, email: str = EMAIL) -> None:
    """The erasure's second pass goes after SETTLE; then no record is left, even to a
    claim long after (a record never forgotten hides behind its lease at the same clock),
    no contact, and HubSpot has not blocklisted the address (it can come back)."""
    from leadscore.service.crm_erasure import KEEP, LEASE, SETTLE

    settled = Container(app.settings, store=app.store, rules=app.rules,
                        clock=lambda: deleted_at + SETTLE)
    assert settled.erase_in_crm().repeated == 1
    assert app.store.claim_crm_erasures(NOW + KEEP, NOW + KEEP + LEASE) == []
    assert email not in fake.contacts
    assert email not in fake.blocklist


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
    assert_forgotten_after_settle(app, hubspot_api, NOW)


def test_hubspot_down_at_the_erasure_a_later_sweep_deletes_the_contact(
        app: Container, hubspot_api: HubSpotFake) -> None:
    # GIVEN HubSpot answers 503 to everything for a while
    hubspot_api.fail_next(503, {"status": "error", "message": "unavailable"}, times=3)
    # WHEN the lead is erased THEN the contact is still there: HubSpot refused all three
    # tries (LEADSCORE_HUBSPOT_ATTEMPTS; each asks first whether it has the contact, so
    # HubSpot's 503 comes to the read and no delete is sent) and the erasure stays recorded
    reads = len(contact_reads(hubspot_api))
    erase(app)
    assert EMAIL in hubspot_api.contacts and hubspot_api.gdpr_deleted == []
    assert len(contact_reads(hubspot_api)) - reads == 3 and gdpr_deletes(hubspot_api) == []
    # WHEN a later sweep runs (the decay job's CRM sync), once the backoff has passed
    later = Container(app.settings, store=app.store, rules=app.rules,
                      clock=lambda: NOW + timedelta(minutes=3))
    report = later.sync_crm()
    # THEN the contact is deleted, once, and nothing stays pending
    assert report.erased == 1
    assert EMAIL not in hubspot_api.contacts and hubspot_api.gdpr_deleted == [EMAIL]
    assert later.sync_crm().erased == 0
    assert_forgotten_after_settle(app, hubspot_api, NOW + timedelta(minutes=3))


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
    arrived = hubspot_api.upserts_arrived  # the setup's upserts came before
    run.start()
    deadline = time.monotonic() + 30
    while hubspot_api.upserts_arrived == arrived:  # this run's upsert is held by HubSpot
        assert time.monotonic() < deadline, "the run's upsert never reached HubSpot"
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


def test_a_404_from_the_gdpr_delete_is_not_taken_for_done(
        app: Container, hubspot_api: HubSpotFake, capsys: pytest.CaptureFixture[str]) -> None:
    from leadscore.service.erasure import erase_address

    # GIVEN a deployment whose HubSpot URL is wrong (every route answers 404)
    wrong = Container(app.settings.model_copy(update={
        "hubspot_api_url": hubspot_api.url + "/wrong"}), store=app.store, rules=app.rules,
        clock=lambda: NOW)
    # WHEN the lead is erased and its erasure swept
    assert erase_address(app.store, EMAIL, NOW, crm_tools=wrong.crm_tools())
    report = wrong.erase_in_crm()
    # THEN the erasure is not forgotten: it stays pending, logged by lead id only
    assert (report.erased, report.pending, report.given_up) == (0, 1, 0)
    assert EMAIL in hubspot_api.contacts
    said = [line for line in capsys.readouterr().out.splitlines()
            if "crm erasure not found" in line]
    assert said and lead_id_for(EMAIL) in said[0] and EMAIL not in said[0]
    # WHEN the URL is fixed and a later sweep runs THEN the contact is deleted
    later = Container(app.settings, store=app.store, rules=app.rules,
                      clock=lambda: NOW + timedelta(hours=1))
    assert later.erase_in_crm().erased == 1
    assert EMAIL not in hubspot_api.contacts


def test_erasing_a_lead_hubspot_never_had_sends_no_gdpr_delete(
        app: Container, hubspot_api: HubSpotFake, rules: Rules) -> None:
    from leadscore.service.crm_erasure import KEEP, LEASE
    from leadscore.service.erasure import erase_address

    # GIVEN a second lead that was never synced to HubSpot (no sync record, no contact)
    other = "solo@tiendassol.example"
    apply_events(app.store, lead_id_for(other), other, warm_lead_events(other), rules, NOW)
    before, reads = len(gdpr_deletes(hubspot_api)), len(contact_reads(hubspot_api))
    # WHEN it is erased and the erasures are swept, even long after
    assert erase_address(app.store, other, NOW, crm_tools=app.crm_tools())
    report = app.erase_in_crm()
    assert (report.erased, report.absent) == (0, 1)
    late = Container(app.settings, store=app.store, rules=rules,
                     clock=lambda: NOW + timedelta(days=1))
    late_report = late.erase_in_crm()
    assert (late_report.erased, late_report.repeated) == (0, 1)
    # THEN HubSpot was asked whether it has the contact (first pass and after SETTLE, the
    # address in the body only), was not asked to delete it, so it does not blocklist the
    # address, and has no contact for it
    assert len(contact_reads(hubspot_api)) - reads == 2
    assert all(other not in path for _, path in hubspot_api.requests)
    assert len(gdpr_deletes(hubspot_api)) == before
    assert other not in hubspot_api.blocklist
    assert other not in hubspot_api.contacts
    assert EMAIL in hubspot_api.contacts  # the synced lead is left alone
    # and the erasure is forgotten
    assert app.store.claim_crm_erasures(NOW + KEEP, NOW + KEEP + LEASE) == []


def test_a_contact_hubspot_stored_without_our_sync_record_is_deleted_on_erasure(
        app: Container, hubspot_api: HubSpotFake, rules: Rules) -> None:
    from leadscore.service.erasure import erase_address

    # GIVEN a lead whose upsert HubSpot stored, but whose answers were lost (500 on every
    # try), so we keep no sync record for it while HubSpot has its contact
    other = "lost@tiendassol.example"
    other_id = lead_id_for(other)
    apply_events(app.store, other_id, other, warm_lead_events(other), rules, NOW)
    hubspot_api.store_then_fail = app.settings.hubspot_attempts
    assert app.sync_crm([other_id]).synced == 0
    assert other in hubspot_api.contacts
    assert app.store.esp_synced("crm:hubspot", [other_id]) == {}
    # WHEN it is erased and the erasure swept
    assert erase_address(app.store, other, NOW, crm_tools=app.crm_tools())
    assert app.erase_in_crm().erased == 1
    # THEN HubSpot's contact is deleted (by its record id: no blocklist entry)
    assert other not in hubspot_api.contacts
    assert hubspot_api.gdpr_deleted == [other]
    assert other not in hubspot_api.blocklist
    assert_forgotten_after_settle(app, hubspot_api, NOW, other)


def test_an_upsert_stored_after_the_erasure_by_a_run_that_then_crashed_is_deleted_too(
        app: Container, hubspot_api: HubSpotFake) -> None:
    from leadscore.integrations.cards import score_record
    from leadscore.service.crm_erasure import KEEP, SETTLE

    lead_id = lead_id_for(EMAIL)
    # GIVEN a sync run that read the lead before its erasure
    lead = app.store.get_lead(lead_id)
    assert lead is not None
    on_its_way = score_record(lead.model_copy(update={"score": lead.score + 30}), (), NOW)
    # WHEN the lead is erased (HubSpot deletes the contact), then HubSpot stores that run's
    # upsert, and the run dies before its tombstone check
    erase(app)
    assert hubspot_api.gdpr_deleted == [EMAIL]
    crm_for(hubspot_api).upsert([on_its_way])
    assert EMAIL in hubspot_api.contacts
    # THEN a sweep after SETTLE deletes the contact again, and forgets the erasure
    later = Container(app.settings, store=app.store, rules=app.rules,
                      clock=lambda: NOW + SETTLE)
    assert later.erase_in_crm().repeated == 1
    assert EMAIL not in hubspot_api.contacts
    assert app.store.claim_crm_erasures(NOW + KEEP, NOW + KEEP + SETTLE) == []


def test_with_no_crm_configured_the_decay_sweep_forgets_erasures_past_their_keep(
        durable_store: Any, rules: Rules) -> None:
    from leadscore.service.crm_erasure import KEEP, erasure_for

    # GIVEN an erasure recorded while HubSpot was configured, never confirmed, and a
    # deployment that no longer has a HubSpot token
    long_ago = NOW - KEEP - timedelta(days=1)
    durable_store.record_crm_erasures([erasure_for("crm:hubspot", lead_id_for(EMAIL), EMAIL,
                                                   long_ago, long_ago)])
    app = Container(Settings(), store=durable_store, rules=rules, clock=lambda: NOW)
    assert app.crm_tools() == []
    # WHEN the decay job's sweep runs
    app.dispatch([], sweep=True)
    # THEN the address is gone from the store: no claim finds the record any more
    assert durable_store.claim_crm_erasures(NOW + KEEP, NOW + 2 * KEEP) == []


def test_an_expired_erasure_whose_contact_was_deleted_is_not_reported_given_up(
        durable_store: Any, rules: Rules, capsys: pytest.CaptureFixture[str]) -> None:
    from leadscore.service.crm_erasure import KEEP, erasure_for

    # GIVEN an erasure whose first delete HubSpot confirmed, its repeat never sent in time
    long_ago = NOW - KEEP - timedelta(days=1)
    done = erasure_for("crm:hubspot", lead_id_for(EMAIL), EMAIL, long_ago, long_ago)
    durable_store.record_crm_erasures([done.model_copy(update={"deleted": True})])
    app = Container(Settings(), store=durable_store, rules=rules, clock=lambda: NOW)
    # WHEN a sweep finds it past its KEEP
    report = app.erase_in_crm()
    # THEN it is forgotten as done, not given up
    assert report.given_up == 0
    assert durable_store.claim_crm_erasures(NOW + KEEP, NOW + 2 * KEEP) == []
    out = capsys.readouterr().out
    assert "crm erasure done" in out and "given up" not in out


def test_erasing_by_the_address_in_the_body_deletes_the_hubspot_contact_too(
        app: Container, hubspot_api: HubSpotFake) -> None:
    from functional.conftest import client_for

    lead_id = lead_id_for(EMAIL)
    # GIVEN a lead HubSpot has  WHEN it is erased by another spelling of its address, in the
    # body of `POST /leads/erase` (an address never goes in a URL: request logs keep them)
    answer = client_for("leads_api").post("/leads/erase", json={"email": EMAIL.upper()},
                                          headers=AUTH)
    # THEN the answer names its id, the lead is gone and a tombstone keeps it erased
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"status": "erased", "lead_id": lead_id}
    assert app.store.get_lead(lead_id) is None and app.store.tombstone(lead_id) is not None
    # AND HubSpot's contact is deleted after the answer, the address never in a URL
    assert app.handovers_settled(30)
    assert EMAIL not in hubspot_api.contacts and hubspot_api.gdpr_deleted == [EMAIL]
    assert all(EMAIL not in path for _, path in hubspot_api.requests)
