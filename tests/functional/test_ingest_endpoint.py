"""POST /ingest: canonical events in, lead out; bad input refused with nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import event_json

from functional.conftest import client_for
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.service import writes as uow

AUTH = {"Authorization": "Bearer current-token-123"}
MARIA = lead_id_for("maria.lopez@acme-analytics.io")


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("ingest")


def post(client: Any, body: Any, headers: dict[str, str] | None = None,
         content_type: str = "application/json") -> Any:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/", data=data, headers=headers if headers is not None else AUTH,
                       content_type=content_type)


def test_events_posted_are_scored_and_stored(client: Any, app_container: Container) -> None:
    # GIVEN a batch of canonical events from several systems
    body = event_json("ingest_demo_request_and_opens.json")
    # WHEN it is posted
    answer = post(client, body)
    # THEN all are applied and the lead is stored with its score
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok", "received": 6, "applied": 6,
                                 "duplicates": 0, "leads": 1}
    lead = app_container.store.get_lead(MARIA)
    assert lead is not None and lead.stage == "sql"
    assert "score" not in answer.get_json()  # the caller learns nothing about the lead


def test_a_redelivery_changes_nothing(client: Any, app_container: Container) -> None:
    body = event_json("ingest_demo_request_and_opens.json")
    post(client, body)
    before = app_container.store.get_lead(MARIA)
    again = post(client, body)
    assert again.status_code == 200 and again.get_json()["duplicates"] == 6
    assert app_container.store.get_lead(MARIA) == before


def test_a_single_event_object_is_accepted(client: Any, app_container: Container) -> None:
    answer = post(client, event_json("ingest_single_activity.json"))
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Y3VycmVudA=="},
    {"Authorization": "Bearer "},
], ids=["missing", "wrong", "other-scheme", "empty"])
def test_without_a_valid_token_nothing_is_written(client: Any, app_container: Container,
                                                  headers: dict[str, str]) -> None:
    answer = post(client, event_json("ingest_demo_request_and_opens.json"), headers=headers)
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthorized"
    assert app_container.store.get_lead(MARIA) is None


def test_a_rotated_token_still_works(client: Any) -> None:
    answer = post(client, event_json("ingest_single_activity.json"),
                  headers={"Authorization": "Bearer previous-token-456"})
    assert answer.status_code == 200


def _one_bad(**change: Any) -> list[Any]:
    good = event_json("ingest_demo_request_and_opens.json")
    good[2] = {**good[2], **change}
    return good  # five good events and one bad: the whole request is refused


@pytest.mark.parametrize(("body", "content_type", "status", "names"), [
    (b'[{"type": "email_opened", ', "application/json", 400, "not valid JSON"),
    (b"\xff\xfe\x00", "application/json", 400, "not valid JSON"),
    (b"[]", "application/json", 422, "no events"),
    (_one_bad(email="not-an-email"), "application/json", 422, "2.email_opened.email"),
    (_one_bad(type="email_teleported"), "application/json", 422, "2"),
    (_one_bad(occurred_at="2026-11-19T08:41:37"), "application/json", 422, "occurred_at"),
    (_one_bad(occurred_at="2027-01-01T00:00:00Z"), "application/json", 422, "in the future"),
    (_one_bad(idempotency_key=""), "application/json", 422, "idempotency_key"),
    (_one_bad(extra_field=1), "application/json", 422, "extra_field"),
    (b"type=email_opened", "application/x-www-form-urlencoded", 415, "application/json"),
], ids=["truncated", "not-utf8", "empty-list", "bad-email", "unknown-type", "naive-time",
        "future", "empty-key", "unknown-field", "form-encoded"])
def test_bad_bodies_are_refused_with_the_problem_named_and_nothing_written(
        client: Any, app_container: Container, body: Any, content_type: str, status: int,
        names: str) -> None:
    answer = post(client, body, content_type=content_type)
    assert answer.status_code == status
    payload = answer.get_json()
    assert names in json.dumps(payload)
    assert "Traceback" not in answer.get_data(as_text=True)
    assert app_container.store.get_lead(MARIA) is None


def test_an_oversized_body_is_refused_before_it_is_read(client: Any,
                                                        app_container: Container) -> None:
    big = json.dumps(event_json("ingest_demo_request_and_opens.json") * 200)
    answer = post(client, big)
    assert answer.status_code == 413 and "exceeds the limit" in answer.get_json()["message"]
    assert app_container.store.get_lead(MARIA) is None


def test_other_methods_are_refused(client: Any) -> None:
    answer = client.get("/", headers=AUTH)
    assert answer.status_code == 405 and answer.get_json()["error"] == "method_not_allowed"


def test_a_store_failure_is_a_retryable_5xx_without_details(
        client: Any, app_container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("connection reset by peer")

    monkeypatch.setattr(uow, "apply_events", broken)
    answer = post(client, event_json("ingest_single_activity.json"))
    assert answer.status_code == 500
    assert answer.get_json() == {"error": "internal_error",
                                 "message": "unexpected failure; retry later"}


def test_logs_never_show_the_address(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    post(client, event_json("ingest_demo_request_and_opens.json"))
    post(client, _one_bad(email="bad-address@@x"))
    out = capsys.readouterr()
    logged = out.out + out.err
    assert '"message": "events ingested"' in logged
    assert "maria.lopez" not in logged.lower() and "bad-address" not in logged
    for line in filter(None, logged.splitlines()):
        assert json.loads(line)["severity"] in {"INFO", "WARNING", "ERROR"}
