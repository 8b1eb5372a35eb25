"""Refusals for good, in every email tool: kept only for a member the tool named.

A refusal of the call (a revoked key, a wrong audience or URL), a misconfiguration that
refuses every member alike, or a batch refused whole must not keep every lead of the batch
back until it changes (the CRM sync's rule, `integrations/crm_sync.py`). A batch refused
whole for good is halved until the member that spoils it stands alone, so the others go.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import NOW
from fakes.brevo_api import BrevoFake
from fakes.mailchimp_api import MailchimpFake
from fakes.sendgrid_api import SendGridFake

from esp.conftest import (
    BREVO_STAGE_LISTS,
    brevo,
    mailchimp,
    newsletter_lead,
    no_sleep,
    sendgrid,
)
from leadscore.domain.rules import Rules
from leadscore.integrations.ports import RetryableDelivery
from leadscore.service.erasure import erase_address
from leadscore.service.esp_sync import sync_tool
from leadscore.store.port import EspSynced

READERS = [f"reader{n}@tiendassol.example" for n in range(3)]


def readers(store: Any, rules: Rules) -> list[str]:
    return [newsletter_lead(store, rules, email).lead_id for email in READERS]


def counts(report: Any) -> tuple[int, int, int, int]:
    return report.synced, report.rejected, report.failed, report.pending


def test_brevo_refusing_the_key_keeps_no_contact_back(
        brevo_api: BrevoFake, store: Any, rules: Rules) -> None:
    # GIVEN three new readers, and Brevo refusing the key once (a key rotated mid-sweep),
    # on the first contact's create call
    sync = brevo(brevo_api)
    ids = readers(store, rules)
    brevo_api.fail_next(401, {"code": "unauthorized", "message": "Key not found"})
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN no reader is refused for good: the sweep stops with all three pending
    assert counts(first) == (0, 0, 0, 3)
    assert store.esp_synced("brevo", ids) == {}
    # AND the next sweep sends all three
    again = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (again.synced, again.refused_earlier) == (3, 0)
    assert all(brevo_api.contact(e) is not None for e in READERS)


def test_mailchimp_refusing_the_key_on_a_members_call_keeps_no_member_back(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules) -> None:
    # GIVEN three new readers; Mailchimp answers the batch, then refuses the key (403) on
    # the first member's tags call; the other members' calls find no member (404)
    sync = mailchimp(mailchimp_api)
    ids = readers(store, rules)
    mailchimp_api.fail_next(200, {"new_members": [], "updated_members": [], "errors": [],
                                  "total_created": 0, "total_updated": 0, "error_count": 0})
    mailchimp_api.fail_next(403, {"title": "Forbidden", "status": 403,
                                  "detail": "You don't have permission to access this."})
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN no member is refused for good: the refusal of the key stops the sweep
    assert counts(first) == (0, 0, 0, 3)
    assert store.esp_synced("mailchimp", ids) == {}
    # AND the next sweep sends all three
    again = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (again.synced, again.refused_earlier) == (3, 0)
    assert all(mailchimp_api.member(e) is not None for e in READERS)


def test_sendgrid_at_a_wrong_url_keeps_no_contact_back_and_is_not_halved(
        sendgrid_api: SendGridFake, store: Any, rules: Rules) -> None:
    # GIVEN three new readers, and a 404 for the sweep's first call (a wrong base URL)
    sync = sendgrid(sendgrid_api)
    ids = readers(store, rules)
    calls = len(sendgrid_api.requests)
    sendgrid_api.fail_next(404, {"errors": [{"field": None, "message": "not found"}]})
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN the batch failed whole, once (a 404 is the URL's, not a member's: not halved),
    # and no contact is refused for good
    assert counts(first) == (0, 0, 3, 0)
    assert len(sendgrid_api.requests) == calls + 1
    assert store.esp_synced("sendgrid", ids) == {}
    # AND the next sweep sends all three
    again = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (again.synced, again.refused_earlier) == (3, 0)


def test_one_contact_sendgrid_refuses_does_not_hold_back_its_batch(
        sendgrid_api: SendGridFake, store: Any, rules: Rules) -> None:
    # GIVEN three new readers, one of whose addresses SendGrid's validation refuses (it
    # answers 400 for the whole upsert)
    sync = sendgrid(sendgrid_api)
    ids = readers(store, rules)
    sendgrid_api.invalid_emails = {READERS[1]}
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN the batch is halved: the two others are synced, the bad one alone is refused
    # for good (others got through), and kept so
    assert counts(first) == (2, 1, 0, 0)
    assert sendgrid_api.contact(READERS[0]) and sendgrid_api.contact(READERS[2])
    record = store.esp_synced("sendgrid", [ids[1]])[ids[1]]
    assert record.member == {} and record.refused is not None
    # AND the next sweep leaves it be until the lead changes
    again = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (again.changed, again.refused_earlier) == (0, 1)


def test_one_contact_sendgrids_import_job_refuses_does_not_stop_the_sweep(
        sendgrid_api: SendGridFake, store: Any, rules: Rules) -> None:
    # GIVEN three new readers, one of whom makes SendGrid's import job end `errored`
    sync = sendgrid(sendgrid_api)
    ids = readers(store, rules)
    sendgrid_api.job_error_emails = {READERS[2]}
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN the batch is halved: the two others are synced, the one the job refuses alone
    # is refused for good (others got through)
    assert counts(first) == (2, 1, 0, 0)
    assert store.esp_synced("sendgrid", [ids[2]])[ids[2]].refused is not None


def test_one_contact_brevo_refuses_does_not_hold_back_its_batch(
        brevo_api: BrevoFake, store: Any, rules: Rules) -> None:
    # GIVEN three readers synced to Brevo, one of whom was then deleted in Brevo (its
    # batch update is all or nothing: "Contact does not exist" refuses all three)
    sync = brevo(brevo_api)
    ids = readers(store, rules)
    assert sync_tool(store, sync, rules, NOW, sleep=no_sleep).synced == 3
    del brevo_api.contacts[READERS[1]]
    # WHEN every reader is sent again
    first = sync_tool(store, sync, rules, NOW, force=True, sleep=no_sleep)
    # THEN the batch is halved: two are synced, the deleted one alone refused for good
    assert counts(first) == (2, 1, 0, 0)
    record = store.esp_synced("brevo", [ids[1]])[ids[1]]
    assert record.refused is not None and record.member["stage"] == "lead"


def test_a_brevo_list_missing_for_every_contact_keeps_no_contact_back(
        brevo_api: BrevoFake, store: Any, rules: Rules) -> None:
    # GIVEN three new readers, and the `lead` stage list deleted in Brevo (a
    # misconfiguration: the batch update is refused for every contact alike, with 400)
    sync = brevo(brevo_api)
    ids = readers(store, rules)
    brevo_api.lists.discard(BREVO_STAGE_LISTS["lead"])
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN halving isolates each one, none gets through, so none is refused for good
    assert counts(first) == (0, 0, 3, 0)
    assert all(r.refused is None for r in store.esp_synced("brevo", ids).values())
    # WHEN the list is back THEN the next sweep sends all three
    brevo_api.lists.add(BREVO_STAGE_LISTS["lead"])
    again = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    assert (again.synced, again.refused_earlier) == (3, 0)


def test_a_brevo_list_missing_for_a_hundred_readers_costs_a_few_calls_not_one_each(
        brevo_api: BrevoFake, store: Any, rules: Rules) -> None:
    # GIVEN 100 readers and the `lead` stage list deleted in Brevo, so every call is refused
    # alike (400); halving down to each reader cost 971 requests for one sweep (a review)
    sync = brevo(brevo_api)
    many = [f"reader{n}@tiendassol.example" for n in range(100)]
    for email in many:
        newsletter_lead(store, rules, email)
    brevo_api.lists.discard(BREVO_STAGE_LISTS["lead"])
    before = len(brevo_api.requests)
    # WHEN the sweep runs
    first = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN halving stops once a reader alone was refused while nobody got through, and no
    # reader is created twice: the 100 creates every new reader needs plus a few batch
    # calls; none refused for good, all sent again by the next sweep
    calls = brevo_api.requests[before:]
    creates = [path for method, path in calls if path.endswith("/contacts")]
    assert counts(first) == (0, 0, 100, 0)
    assert len(creates) == 100 and len(calls) - len(creates) <= 10, len(calls)
    # AND once the list is back, the next sweep sends all hundred
    brevo_api.lists.add(BREVO_STAGE_LISTS["lead"])
    assert sync_tool(store, sync, rules, NOW, sleep=no_sleep).synced == 100


def test_a_reader_erased_during_the_sweep_leaves_no_sync_record(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules) -> None:
    # GIVEN three readers, and an erasure of the first that completes after the sweep read
    # its page, just before the batch goes out (found by a review: the sweep then kept a
    # sync record, with the erased lead's score and stage, under its id)
    sync = mailchimp(mailchimp_api)
    ids = readers(store, rules)
    push = sync.push

    def erasing_first(batch: Any) -> Any:
        erase_address(store, READERS[0], NOW)
        return push(batch)

    sync.push = erasing_first  # type: ignore[method-assign]
    # WHEN the sweep runs
    report = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN the erased reader has no sync record, and the others do
    assert report.synced == 3
    assert set(store.esp_synced("mailchimp", ids)) == set(ids[1:])
    # AND the erasure still holds: no lead, its tombstone kept
    assert store.get_lead(ids[0]) is None and store.tombstone(ids[0]) is not None


def test_a_reader_erased_and_refused_during_the_sweep_leaves_no_sync_record(
        sendgrid_api: SendGridFake, store: Any, rules: Rules) -> None:
    # GIVEN three readers, the first one's address refused by SendGrid, and its erasure
    # completing after the sweep read its page (found by a review: its refusal was still
    # kept, with the erased lead's score and stage, under its id)
    sync = sendgrid(sendgrid_api)
    ids = readers(store, rules)
    sendgrid_api.invalid_emails = {READERS[0]}
    push, erased = sync.push, []

    def erasing_first(batch: Any) -> Any:
        if not erased:
            erased.append(erase_address(store, READERS[0], NOW))
        return push(batch)

    sync.push = erasing_first  # type: ignore[method-assign]
    # WHEN the sweep runs
    sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN the erased reader has no record at all, refused or stored; the others are stored
    assert erased == [True]
    assert set(store.esp_synced("sendgrid", ids)) == set(ids[1:])


def test_a_contact_deleted_in_mailchimp_is_refused_alone(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules) -> None:
    # GIVEN three synced readers, one then deleted in Mailchimp by the operator, and a change
    # for all three that needs only their tags (found by a review: the member's 404 failed
    # the whole batch on every sweep)
    sync, ids = _synced_then_retagged(mailchimp_api, store, rules)
    mailchimp_api.members = {k: v for k, v in mailchimp_api.members.items()
                             if v["email_address"] != READERS[1]}
    # WHEN the sweep runs
    report = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN only the deleted contact is refused; the other two are stored
    assert counts(report) == (2, 1, 0, 0)
    assert store.esp_synced("mailchimp", ids)[ids[1]].refused is not None


def test_an_audience_deleted_in_mailchimp_keeps_no_member_back(
        mailchimp_api: MailchimpFake, store: Any, rules: Rules) -> None:
    # GIVEN three synced readers whose tags must change, and the audience deleted since
    sync, ids = _synced_then_retagged(mailchimp_api, store, rules)
    mailchimp_api.list_id = "deleted-audience"
    # WHEN the sweep runs
    report = sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    # THEN no member is refused for good: the batch fails whole and is sent again later
    assert counts(report)[:2] == (0, 0) and report.failed + report.pending == 3
    assert all(r.refused is None for r in store.esp_synced("mailchimp", ids).values())


def _synced_then_retagged(mailchimp_api: MailchimpFake, store: Any,
                          rules: Rules) -> tuple[Any, list[str]]:
    """Three readers synced to Mailchimp, each last accepted with another band tag, so the
    next sweep sends tags-only changes (no batch call first)."""
    sync = mailchimp(mailchimp_api)
    ids = readers(store, rules)
    assert sync_tool(store, sync, rules, NOW, sleep=no_sleep).synced == 3
    kept = store.esp_synced("mailchimp", ids)
    store.record_esp_synced([EspSynced(tool="mailchimp", lead_id=i, synced_at=NOW,
                                       member={**r.member, "band_target": "old-band"})
                             for i, r in kept.items()])
    return sync, ids


@pytest.mark.parametrize("tool", ["brevo", "mailchimp", "sendgrid"])
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_with_the_key_and_is_retried(
        brevo_api: BrevoFake, mailchimp_api: MailchimpFake, sendgrid_api: SendGridFake,
        tool: str, status: int) -> None:
    # GIVEN the tool's API answering the first call with a redirect (a proxy, a moved
    # host): followed, the SDKs sent the key's header to wherever it points
    fake, sync = {"brevo": (brevo_api, lambda: brevo(brevo_api)),
                  "mailchimp": (mailchimp_api, lambda: mailchimp(mailchimp_api)),
                  "sendgrid": (sendgrid_api, lambda: sendgrid(sendgrid_api))}[tool]
    calls = len(fake.requests)
    fake.fail_next(status, "moved", {"Location": fake.url + "/elsewhere"})
    # WHEN its setup runs
    with pytest.raises(RetryableDelivery) as moved:
        sync().setup()
    # THEN it is worth trying again, with the status, and nothing went to the new address
    assert moved.value.status == status
    assert len(fake.requests) == calls + 1
    assert all("elsewhere" not in path for _, path in fake.requests)
