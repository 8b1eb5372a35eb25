"""HubSpot setup and contact sync over a real HTTP fake of the CRM v3 API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import NOW
from fakes.hubspot_api import HubSpotFake

from integrations.conftest import HUBSPOT_TOKEN
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.integrations.crm_sync import sync_matters, sync_records
from leadscore.integrations.hubspot import PROPERTIES, HubSpotCrm
from leadscore.integrations.ports import PermanentDelivery, RetryableDelivery, ScoreRecord


def record(n: int, stage: str = "mql", score: float = 55.5) -> ScoreRecord:
    return ScoreRecord(lead_id=f"l_{n:04d}", email=f"buyer{n}@example.com", score=score,
                       fit_score=20, engagement_score=score - 20, grade="B2", stage=stage,
                       top_reasons="Requested a demo (+44.3); Industry: retail (+8)",
                       scored_at=NOW)


@pytest.fixture
def crm(hubspot_api: HubSpotFake) -> HubSpotCrm:
    client = HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url)
    client.setup_properties()
    return client


class Marks:
    def __init__(self) -> None:
        self.synced: list[str] = []
        self.rejected: dict[str, str] = {}
        self.failed: dict[str, str] = {}

    def __call__(self, synced: list[str], rejected: dict[str, str],
                 failed: dict[str, str]) -> None:
        self.synced += synced
        self.rejected.update(rejected)
        self.failed.update(failed)


def test_setup_creates_the_group_and_properties_once(hubspot_api: HubSpotFake) -> None:
    client = HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url)
    # WHEN setup runs twice
    first, second = client.setup_properties(), client.setup_properties()
    # THEN the first run created everything and the second found it all (HubSpot's 409)
    names = ["group leadscore"] + [p["name"] for p in PROPERTIES]
    assert (first.created, first.existing) == (names, [])
    assert (second.created, second.existing) == ([], names)
    kinds = {n: (p["type"], p["fieldType"]) for n, p in hubspot_api.properties.items()}
    assert kinds["leadscore_score"] == ("number", "number")
    assert kinds["leadscore_stage"] == ("enumeration", "select")
    assert kinds["leadscore_last_scored"] == ("datetime", "date")
    assert kinds["leadscore_top_reasons"] == ("string", "textarea")
    assert [o["value"] for o in hubspot_api.properties["leadscore_stage"]["options"]] == [
        "lead", "mql", "sql", "customer"]


def test_the_cli_sets_hubspot_up(hubspot_api: HubSpotFake) -> None:
    from leadscore.cli import main

    install(Container(Settings(store="memory", hubspot_token=HUBSPOT_TOKEN,
                               hubspot_api_url=hubspot_api.url)))
    try:
        result = CliRunner().invoke(main, ["hubspot", "setup"])
        again = CliRunner().invoke(main, ["hubspot", "setup"])
    finally:
        install(None)
    assert result.exit_code == 0 and "created  leadscore_score" in result.output
    assert again.exit_code == 0 and "exists   leadscore_score" in again.output


def test_a_wrong_token_is_a_permanent_failure(hubspot_api: HubSpotFake) -> None:
    with pytest.raises(PermanentDelivery, match="401"):
        HubSpotCrm("wrong", hubspot_api.url).setup_properties()


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_with_the_token_and_is_retryable(
        hubspot_api: HubSpotFake, status: int) -> None:
    # GIVEN an API address answering with a redirect (a proxy, a moved host)
    client = HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url)
    client.setup_properties()
    before = len(hubspot_api.requests)
    hubspot_api.fail_next(status, "moved", {"Location": hubspot_api.url + "/elsewhere"})
    # WHEN the sync sends its batch
    with pytest.raises(RetryableDelivery) as moved:
        client.upsert([record(1)])
    # THEN the batch waits for the next attempt and nothing (nor the token) went elsewhere
    assert moved.value.status == status
    assert hubspot_api.requests[before:] == [("POST", "/crm/v3/objects/contacts/batch/upsert")]
    assert hubspot_api.contacts == {}


def test_without_setup_the_properties_do_not_exist_and_nothing_is_stored(
        hubspot_api: HubSpotFake) -> None:
    with pytest.raises(PermanentDelivery, match="does not exist"):
        HubSpotCrm(HUBSPOT_TOKEN, hubspot_api.url).upsert([record(1)])
    assert hubspot_api.contacts == {}


def test_250_records_go_in_three_batches_with_typed_values(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    marks = Marks()
    report = sync_records(crm, [record(n) for n in range(250)], marks)
    assert [len(b) for b in hubspot_api.batches] == [100, 100, 50]
    assert len(report.synced) == 250 and sorted(marks.synced) == sorted(report.synced)
    assert set(hubspot_api.stored.values()) == {1}
    stored = hubspot_api.contacts["buyer7@example.com"]
    assert stored["leadscore_stage"] == "mql" and float(stored["leadscore_score"]) == 55.5
    assert stored["leadscore_last_scored"] == "2026-11-22T12:00:00.000Z"


def test_a_failing_batch_marks_nothing_and_the_retry_sends_each_record_once(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    records = [record(n) for n in range(250)]
    marks = Marks()
    # GIVEN HubSpot fails the second batch with a 502
    original = hubspot_api.handle
    calls = {"n": 0}

    def second_fails(request):  # type: ignore[no-untyped-def]
        if request.path.endswith("/batch/upsert"):
            calls["n"] += 1
            if calls["n"] == 2:
                return hubspot_api.answer(502, {"status": "error", "message": "Bad gateway"})
        return original(request)

    hubspot_api.handle = second_fails  # type: ignore[method-assign]
    first = sync_records(crm, records, marks)
    # THEN only the first batch is marked; the failing one and the rest stay pending
    assert len(first.synced) == 100 and marks.synced == first.synced
    assert first.pending == [r.lead_id for r in records[100:]]
    assert all(r.lead_id not in marks.synced for r in records[100:200])
    # WHEN the pending records are sent again
    retry = sync_records(crm, [r for r in records if r.lead_id in first.pending], marks)
    # THEN every record was stored exactly once, and marked once
    assert len(retry.synced) == 150 and retry.pending == []
    assert len(hubspot_api.stored) == 250 and set(hubspot_api.stored.values()) == {1}
    assert sorted(marks.synced) == sorted(r.lead_id for r in records)


def test_a_429_is_retryable_after_hubspots_wait(hubspot_api: HubSpotFake,
                                                crm: HubSpotCrm) -> None:
    hubspot_api.rate_limited(retry_after=3)
    with pytest.raises(RetryableDelivery) as with_header:
        crm.upsert([record(1)])
    assert with_header.value.retry_after_s == 3
    hubspot_api.rate_limited()  # only the X-HubSpot-RateLimit-* headers
    report = sync_records(crm, [record(1), record(2)])
    assert report.pending == ["l_0001", "l_0002"] and report.retry_after_s == 10
    assert hubspot_api.stored == {}
    assert sync_records(crm, [record(1), record(2)]).synced == ["l_0001", "l_0002"]


def test_a_server_error_is_retryable(hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    hubspot_api.fail_next(503, {"status": "error", "message": "unavailable"})
    with pytest.raises(RetryableDelivery):
        crm.upsert([record(1)])


def test_records_hubspot_refuses_one_by_one_are_rejected_and_the_rest_synced(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    hubspot_api.refuse_emails = {"buyer2@example.com"}
    marks = Marks()
    report = sync_records(crm, [record(n) for n in range(1, 4)], marks)
    assert report.synced == ["l_0001", "l_0003"] and list(report.rejected) == ["l_0002"]
    assert marks.rejected == report.rejected and "buyer2@example.com" not in hubspot_api.stored


def test_a_lead_queued_twice_is_sent_once_with_its_latest_score(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    sync_records(crm, [record(1, score=50), record(1, score=61)])
    assert hubspot_api.batches == [["buyer1@example.com"]]
    assert hubspot_api.contacts["buyer1@example.com"]["leadscore_score"] == "61"


def test_only_changes_a_rep_would_see_matter() -> None:
    last = record(1, stage="mql", score=50)
    assert sync_matters(None, last, 5)
    assert not sync_matters(last, record(1, stage="mql", score=54.9), 5)
    assert sync_matters(last, record(1, stage="mql", score=55.1), 5)
    assert sync_matters(last, record(1, stage="sql", score=50), 5)
    assert sync_matters(last, record(1, score=50).model_copy(update={"grade": "A1"}), 5)
    assert not sync_matters(last, record(1, score=50).model_copy(
        update={"scored_at": NOW + timedelta(days=1)}), 5)


def test_erase_deletes_by_record_id_only_a_contact_hubspot_has(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    sync_records(crm, [record(1)])
    # WHEN a contact HubSpot has and an address it has none for are erased
    assert crm.erase("Buyer1@example.com") is True
    assert crm.erase("nobody@example.com") is False
    # THEN the first is gone, and neither address was blocklisted or put in a URL
    assert hubspot_api.gdpr_deleted == ["buyer1@example.com"]
    assert not hubspot_api.blocklist and "buyer1@example.com" not in hubspot_api.contacts
    assert all("@" not in path for _, path in hubspot_api.requests)


def test_erase_takes_no_unknown_read_answer_for_no_contact(
        hubspot_api: HubSpotFake, crm: HubSpotCrm) -> None:
    sync_records(crm, [record(1)])
    # GIVEN HubSpot's read answers a 207 with an error other than OBJECT_NOT_FOUND
    hubspot_api.fail_next(207, {"status": "COMPLETE", "results": [], "errors": [
        {"status": "error", "category": "INTERNAL_ERROR", "message": "failed"}]})
    # THEN the erasure is retryable, not done
    with pytest.raises(RetryableDelivery):
        crm.erase("buyer1@example.com")
    # WHEN the contact went between the read and the delete (a 404 on the delete)
    hubspot_api.fail_next(200, {"status": "COMPLETE", "errors": [], "results": [
        {"id": "12345", "properties": {"email": "buyer1@example.com"}}]})
    # THEN it is retryable too (the next try reads again), and nothing is deleted meanwhile
    with pytest.raises(RetryableDelivery):
        crm.erase("buyer1@example.com")
    assert hubspot_api.gdpr_deleted == [] and "buyer1@example.com" in hubspot_api.contacts
    assert crm.erase("buyer1@example.com") is True


@pytest.mark.parametrize("status,body", [
    (200, {}),  # a proxy or a wrong base URL answering 200 to anything
    (200, {"status": "COMPLETE", "results": [], "errors": []}),  # no contact, no absence
    (207, {"status": "COMPLETE", "results": [], "errors": [  # another address is missing
        {"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["x@y.com"]}}]}),
])
def test_erase_takes_only_hubspots_own_not_found_for_no_contact(
        hubspot_api: HubSpotFake, crm: HubSpotCrm, status: int, body: dict[str, Any]) -> None:
    # GIVEN a synced contact, and a read answer that does not say this address is missing
    sync_records(crm, [record(1)])
    hubspot_api.fail_next(status, body)
    # WHEN it is erased THEN the answer is unknown (retried), never "nothing to delete"
    with pytest.raises(RetryableDelivery):
        crm.erase("buyer1@example.com")
    # AND the next try, with HubSpot's real answers, deletes the contact
    assert crm.erase("buyer1@example.com") is True
    assert "buyer1@example.com" not in hubspot_api.contacts
