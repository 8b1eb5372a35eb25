"""HubSpot erasure of an address kept only as a merged contact's secondary email
(`integrations/hubspot_merged.py`), against the fake over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes.hubspot_api import HubSpotFake, _record_id

from integrations.conftest import HUBSPOT_TOKEN
from integrations.test_hubspot import record
from leadscore.integrations import hubspot_merged
from leadscore.integrations.crm_sync import sync_records
from leadscore.integrations.http_out import Answer
from leadscore.integrations.hubspot import HubSpotCrm
from leadscore.integrations.ports import RetryableDelivery


@pytest.fixture
def crm(hubspot_api: HubSpotFake) -> HubSpotCrm:
    client = HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url)
    client.setup_properties()
    return client


def not_found(email: str) -> dict[str, object]:
    """HubSpot's 207 for a batch read by email that finds no contact with the address."""
    return {"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [{
        "status": "error", "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
        "context": {"ids": [email]}}]}


def test_erase_deletes_the_contact_a_merge_kept_the_address_on(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    # GIVEN two contacts, which HubSpot then merged: buyer2's address lives on only in
    # buyer1's hs_additional_emails (the batch read by email does not find it)
    sync_records(crm, [record(1), record(2)])
    hubspot_api.merge("buyer1@example.com", "buyer2@example.com")
    assert hubspot_api.holder_of("buyer2@example.com") == "buyer1@example.com"
    # WHEN the person whose address was buyer2's is erased
    deleted = crm.erase("Buyer2@example.com")
    # THEN the surviving contact, which holds their address, is deleted for good
    assert deleted is True and hubspot_api.gdpr_deleted == ["buyer1@example.com"]
    assert hubspot_api.holder_of("buyer2@example.com") is None
    # AND the address went in request bodies only, never in a URL, and blocklisted nothing
    assert all("@" not in path for _, path in hubspot_api.requests)
    assert "buyer2@example.com" in str(hubspot_api.searches[-1]) and not hubspot_api.blocklist


def test_a_search_result_that_does_not_hold_the_address_exactly_is_not_deleted(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    # GIVEN the read finds no contact, and the search answers with a contact whose emails
    # only look like the address (a token match, not the address itself)
    sync_records(crm, [record(9)])
    hubspot_api.fail_next(207, not_found("buyer9@example.com"))
    hubspot_api.fail_next(200, {"total": 1, "results": [{
        "id": _record_id("buyer9@example.com"), "archived": False, "properties": {
            "email": "buyer9@example.com.other.example",
            "hs_additional_emails": "old.buyer9@example.com;buyer9@example.community"}}]})
    # WHEN it is erased THEN nothing is deleted: the address is none of the contact's emails
    assert crm.erase("buyer9@example.com") is False
    assert hubspot_api.gdpr_deleted == [] and "buyer9@example.com" in hubspot_api.contacts


def test_many_merged_erasures_stay_under_the_search_limit(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    # GIVEN seven people whose contacts HubSpot merged into seven others
    sync_records(crm, [record(n) for n in range(14)])
    for n in range(7):
        hubspot_api.merge(f"buyer{n}@example.com", f"buyer{n + 7}@example.com")
    # WHEN all seven are erased one after the other
    assert all(crm.erase(f"buyer{n + 7}@example.com") for n in range(7))
    # THEN HubSpot's 5 searches per second were never exceeded, and all seven are gone
    assert hubspot_api.search_refused == 0 and len(hubspot_api.searches) == 7
    assert sorted(hubspot_api.gdpr_deleted) == sorted(f"buyer{n}@example.com"
                                                      for n in range(7))


def test_a_search_over_its_limit_is_retried_after_a_second(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    # GIVEN the read finds nothing and the search answers 429 (its own limit, no headers)
    hubspot_api.fail_next(207, not_found("buyer3@example.com"))
    hubspot_api.fail_next(429, {"status": "error", "category": "RATE_LIMITS",
                                "message": "You have reached your secondly limit.",
                                "errorType": "RATE_LIMIT", "policyName": "SECONDLY"})
    # WHEN it is erased THEN the erasure is retryable after a second, not taken for done
    with pytest.raises(RetryableDelivery) as raised:
        crm.erase("buyer3@example.com")
    assert raised.value.retry_after_s == 1.0


def test_when_the_batch_read_finds_the_secondary_address_no_search_is_made(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    # GIVEN a HubSpot whose batch read by email resolves a merged secondary address
    sync_records(crm, [record(1), record(2)])
    hubspot_api.merge("buyer1@example.com", "buyer2@example.com")
    hubspot_api.reads_find_secondary = True
    # WHEN it is erased THEN the contact is deleted from the read alone
    assert crm.erase("buyer2@example.com") is True
    assert hubspot_api.searches == [] and hubspot_api.gdpr_deleted == ["buyer1@example.com"]


def test_a_search_whose_matches_run_past_its_pages_is_no_answer() -> None:
    # GIVEN a search that keeps answering pages of near matches, none holding the address
    # exactly, with more pages to come (found by a review: after five pages it answered
    # "absent", so the erasure settled while the holder could be on page six)
    asked: list[Any] = []

    def post(path: str, body: Any) -> Answer:
        asked.append(body)
        page = {"results": [{"id": str(len(asked)), "properties": {
            "email": "other@example.com", "hs_additional_emails": "ana.other@example.com"}}],
            "paging": {"next": {"after": str(len(asked) * 100)}}}
        return Answer(200, {}, json.dumps(page).encode())

    def refused(answer: Answer, what: str) -> None:
        raise AssertionError(what)

    # WHEN the merged contact is looked for
    with pytest.raises(RetryableDelivery):
        hubspot_merged.merged_contact_id(post, "ana@example.com",
                                         hubspot_merged.Pacer(0.0), refused)
    # THEN it read its pages, no more, and gave no answer rather than "absent"
    assert len(asked) == hubspot_merged.MAX_PAGES
