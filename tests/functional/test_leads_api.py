"""`leads_api`: bearer auth, one lead, history, paged lists, non-openers, erasure."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from builders import event, form
from conftest import NOW

from functional.conftest import client_for
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.service.writes import apply_events

AUTH = {"Authorization": "Bearer current-token-123"}


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("leads_api")


def lookup(client: Any, email: str) -> Any:
    return client.post("/leads/lookup", json={"email": email}, headers=AUTH)


def seed(app: Container, count: int = 7) -> list[str]:
    emails = []
    for i in range(count):
        email = f"person{i}@acme{i % 3}.com"
        kind = "demo_request" if i % 2 else "newsletter"
        apply_events(app.store, lead_id_for(email), email, [
            form(email, f"f{i}", NOW - timedelta(days=i), kind=kind, job_title="CTO" * (i % 3)),
        ], app.rules, NOW)
        emails.append(email)
    return emails


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic x"}])
def test_without_a_valid_token_nothing_is_shown(client: Any, app_container: Container,
                                                headers: dict[str, str]) -> None:
    seed(app_container, 1)
    for path in ("/leads", f"/leads/{lead_id_for('person0@acme0.com')}", "/non-openers"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401 and "person0" not in answer.get_data(as_text=True)
    assert client.delete(f"/leads/{lead_id_for('person0@acme0.com')}",
                         headers=headers).status_code == 401
    assert app_container.store.get_lead(lead_id_for("person0@acme0.com")) is not None


def test_a_rotated_token_works(client: Any, app_container: Container) -> None:
    answer = client.get("/leads", headers={"Authorization": "Bearer previous-token-456"})
    assert answer.status_code == 200


def test_one_lead_by_email_or_id_and_its_history(client: Any, app_container: Container) -> None:
    seed(app_container, 2)
    by_email = lookup(client, "Person1@Acme1.com").get_json()
    by_id = client.get(f"/leads/{lead_id_for('person1@acme1.com')}", headers=AUTH).get_json()
    assert by_email == by_id and by_email["email"] == "person1@acme1.com"
    assert by_email["score"] == pytest.approx(by_email["fit_score"] +
                                              by_email["engagement_score"], abs=0.02)
    history = client.get(f"/leads/{by_id['lead_id']}/history", headers=AUTH).get_json()
    assert [h["kind"] for h in history["history"]] == ["form_submitted"]
    assert lookup(client, "nobody@x.com").status_code == 404


def test_pages_with_cursors_and_filters(client: Any, app_container: Container) -> None:
    emails = seed(app_container)
    pages, cursor = [], None
    while True:
        query = "/leads?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(query, headers=AUTH).get_json()
        pages += body["leads"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(x["email"] for x in pages) == sorted(emails)
    scores = [x["score"] for x in pages]
    assert scores == sorted(scores, reverse=True)
    mqls = client.get("/leads?stage=mql", headers=AUTH).get_json()["leads"]
    assert mqls and all(x["stage"] == "mql" for x in mqls)
    grade = pages[0]["grade"]
    graded = client.get(f"/leads?grade={grade}&min_score=1", headers=AUTH).get_json()["leads"]
    assert graded and all(x["grade"] == grade and x["score"] >= 1 for x in graded)


def _cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("query", ["stage=warm", "min_score=high", "grade=E9", "limit=0",
                                   "limit=100000", "non_opener=maybe", "cursor=%%%",
                                   "sort=score",
                                   # found by a review: a lone surrogate was a 500 on SQLite
                                   "cursor=" + _cursor_of(rb'[1, "\ud800"]'),
                                   "cursor=" + _cursor_of(b'[NaN, "l_1"]'),
                                   "cursor=" + _cursor_of(b'[1, "' + b"x" * 200 + b'"]'),
                                   # found by a review: no Firestore document ids (a 500)
                                   "cursor=" + _cursor_of(b'[1, "a/b"]'),
                                   "cursor=" + _cursor_of(b'[1, "__x__"]')])
def test_malformed_parameters_are_400(client: Any, query: str) -> None:
    answer = client.get(f"/leads?{query}", headers=AUTH)
    assert answer.status_code == 400
    assert query.split("=")[0] in json.dumps(answer.get_json()["details"])


def test_non_openers_as_json_and_csv(client: Any, app_container: Container) -> None:
    email = "quiet@acme.com"
    apply_events(app_container.store, lead_id_for(email), email, [event(
        "email_delivered", email, "d", NOW - timedelta(days=300), source="esp")],
        app_container.rules, NOW)
    seed(app_container, 2)
    listed = client.get("/non-openers", headers=AUTH).get_json()["non_openers"]
    assert [x["email"] for x in listed] == [email]
    text = client.get("/non-openers?format=csv", headers=AUTH).get_data(as_text=True)
    assert [r["email"] for r in csv.DictReader(io.StringIO(text))] == [email]


def test_an_address_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(
        client: Any, app_container: Container) -> None:
    # GIVEN a non-opener whose valid address begins with "=" (RFC 5322 allows it)
    email = "=cmd|calc!a0@acme.com"
    apply_events(app_container.store, lead_id_for(email), email, [event(
        "email_delivered", email, "d", NOW - timedelta(days=300), source="esp")],
        app_container.rules, NOW)
    # WHEN the non-openers are exported as CSV
    text = client.get("/non-openers?format=csv", headers=AUTH).get_data(as_text=True)
    # THEN the cell starts with an apostrophe, which spreadsheets show as text (OWASP)
    assert [r["email"] for r in csv.DictReader(io.StringIO(text))] == ["'" + email]
    # AND the JSON export keeps the address as it is
    listed = client.get("/non-openers", headers=AUTH).get_json()["non_openers"]
    assert [x["email"] for x in listed] == [email]


def customer(app: Container, email: str, order_id: str) -> str:
    """A lead with a demo request and an order in the order index; its id."""
    lead_id = lead_id_for(email)
    apply_events(app.store, lead_id, email, [
        form(email, "f", NOW, kind="demo_request", first_name="Erin"),
        event("purchase_made", email, "p", NOW, source="shop", order_id=order_id,
              amount_minor=9900, currency="EUR")], app.rules, NOW)
    return lead_id


def test_erasure_removes_every_document_of_the_lead(client: Any,
                                                    app_container: Container) -> None:
    # GIVEN a customer with history, an order in the order index and a stage change
    email = "erase.me@acme.com"
    lead_id = customer(app_container, email, "O-1")
    store = app_container.store
    assert store.order_owner("shop:O-1") == lead_id
    assert any(h.lead_id == lead_id for h in store.pending_handovers(NOW + timedelta(days=1)))
    # WHEN it is erased (by address: in the body)
    answer = client.post("/leads/erase", json={"email": email}, headers=AUTH)
    # THEN nothing of it is left anywhere
    assert answer.status_code == 200 and answer.get_json()["lead_id"] == lead_id
    assert store.get_lead(lead_id) is None and store.history(lead_id) == []
    assert store.order_owner("shop:O-1") is None
    assert not any(h.lead_id == lead_id for h in store.pending_handovers(NOW + timedelta(1)))
    assert client.get(f"/leads/{lead_id}", headers=AUTH).status_code == 404
    # AND a later form submission (consent, after the erasure) starts a new lead
    later = NOW + timedelta(minutes=1)
    apply_events(store, lead_id, email, [form(email, "f2", later)], app_container.rules, later)
    assert store.get_lead(lead_id).counters == {"form_submitted": 1}


def test_unknown_paths_and_methods(client: Any) -> None:
    assert client.get("/people", headers=AUTH).status_code == 404
    assert client.post("/leads", headers=AUTH).status_code == 405


def test_logs_carry_no_lead_data(client: Any, app_container: Container,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    seed(app_container, 2)
    assert lookup(client, "person1@acme1.com").status_code == 200
    client.get("/leads?stage=bogus", headers=AUTH)
    assert client.post("/leads/erase", json={"email": "person0@acme0.com"},
                       headers=AUTH).status_code == 200
    assert client.get("/leads/person1@acme1.com", headers=AUTH).status_code == 400  # refused
    logged = capsys.readouterr().out
    assert "acme" not in logged and "person" not in logged


def test_history_pages_take_a_limit(client: Any, app_container: Container) -> None:
    email = "long@acme.com"
    apply_events(app_container.store, lead_id_for(email), email, [
        form(email, f"f{i}", NOW - timedelta(hours=i), kind="webinar") for i in range(6)],
        app_container.rules, NOW)
    lead_id = lead_id_for(email)
    newest = client.get(f"/leads/{lead_id}/history?limit=2", headers=AUTH).get_json()
    assert len(newest["history"]) == 2
    assert client.get(f"/leads/{lead_id}/history?limit=0", headers=AUTH).status_code == 400
    assert client.get(f"/leads/{lead_id}/history?limit=x", headers=AUTH).status_code == 400


ADDRESS_PATHS = [("GET", "/leads/{}"), ("GET", "/leads/{}/history"), ("DELETE", "/leads/{}")]
SPELLINGS_IN_PATHS = ["ana@acme.com", "ana%40acme.com", "ana%2540acme.com", "Ana%40Acme.com"]


def _calls_to(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The store reads and erasures the requests make (recorded, then done as asked)."""
    calls: list[str] = []
    for name in ("get_lead", "history", "erase", "tombstone"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _n=name, _r=real, **k: (
            calls.append(_n), _r(*a, **k))[1])
    return calls


@pytest.mark.parametrize(("method", "path"), ADDRESS_PATHS)
@pytest.mark.parametrize("spelling", SPELLINGS_IN_PATHS)
def test_an_address_in_a_url_is_refused_before_anything_is_looked_up(
        client: Any, app_container: Container, monkeypatch: pytest.MonkeyPatch,
        method: str, path: str, spelling: str) -> None:
    # GIVEN ana's lead (request logs, Cloud Run's too, keep every URL in clear)
    seed_one = "ana@acme.com"
    apply_events(app_container.store, lead_id_for(seed_one), seed_one,
                 [form(seed_one, "f", NOW, kind="demo_request")], app_container.rules, NOW)
    calls = _calls_to(app_container.store, monkeypatch)
    # WHEN a caller puts her address, or an unknown one, in a path
    known = client.open(path.format(spelling), method=method, headers=AUTH)
    unknown = client.open(path.format(spelling.replace("ana", "bob")), method=method,
                          headers=AUTH)
    # THEN both are the same 400 naming the problem and the route that takes a body
    assert known.status_code == unknown.status_code == 400
    assert known.get_json() == unknown.get_json()
    message = known.get_json()["message"]
    assert "POST /leads/lookup" in message and "in a URL" in message and "ana" not in message
    # AND nothing was read or erased: the answer cannot tell whether the address is known
    assert calls == []
    assert app_container.store.get_lead(lead_id_for(seed_one)) is not None


def test_a_stranger_gets_401_before_any_route_or_body_is_read(client: Any,
                                                              app_container: Container) -> None:
    # GIVEN a known lead
    seed(app_container, 1)
    # WHEN a caller without the token asks by address (body, path) or by id
    answers = [client.post("/leads/lookup", json={"email": "person0@acme0.com"}),
               client.post("/leads/lookup", json={"email": "nobody@acme0.com"}),
               client.post("/leads/erase", json={"email": "person0@acme0.com"}),
               client.post("/leads/erase", json={"email": "nobody@acme0.com"}),
               client.post("/leads/lookup", data=b"not json", content_type="application/json"),
               client.get("/leads/person0@acme0.com"), client.get("/leads/__x__"),
               client.get(f"/leads/{lead_id_for('person0@acme0.com')}"),
               client.get(f"/leads/{lead_id_for('nobody@acme0.com')}")]
    # THEN every answer is the same 401: known or not, nothing tells
    assert {a.status_code for a in answers} == {401}
    assert all(a.get_json() == answers[0].get_json() for a in answers)
    assert answers[0].get_json()["error"] == "unauthorized"
    # AND nothing was erased
    assert app_container.store.get_lead(lead_id_for("person0@acme0.com")) is not None


def test_a_lead_is_found_and_erased_by_the_address_in_a_body(client: Any,
                                                            app_container: Container) -> None:
    # GIVEN a lead with a form and an order
    email = "erin@acme.com"
    lead_id = customer(app_container, email, "O-7")
    store = app_container.store
    # WHEN it is looked up by another spelling of its address, in the body
    found = lookup(client, " Erin@ACME.com ")
    # THEN the answer is the lead, as `GET /leads/{id}` gives it
    assert found.status_code == 200
    assert found.get_json() == client.get(f"/leads/{lead_id}", headers=AUTH).get_json()
    assert found.get_json()["lead_id"] == lead_id
    # WHEN it is erased by address, in the body
    erased = client.post("/leads/erase", json={"email": "ERIN@acme.com"}, headers=AUTH)
    # THEN it is gone, with its order index entry, and a tombstone keeps it erased
    assert erased.status_code == 200
    assert erased.get_json() == {"status": "erased", "lead_id": lead_id}
    assert store.get_lead(lead_id) is None and store.history(lead_id) == []
    assert store.order_owner("shop:O-7") is None
    stone = store.tombstone(lead_id)
    assert stone is not None and stone.erased_at == NOW
    assert lookup(client, email).status_code == 404
    # AND an address with nothing stored is a 404 that still leaves its tombstone
    gone = client.post("/leads/erase", json={"email": "never@acme.com"}, headers=AUTH)
    assert gone.status_code == 404 and gone.get_json()["error"] == "not_found"
    assert store.tombstone(lead_id_for("never@acme.com")) is not None


@pytest.mark.parametrize("route", ["/leads/lookup", "/leads/erase"])
@pytest.mark.parametrize(("body", "names"), [
    (b"", "not valid JSON"),
    (b'{"email": ', "not valid JSON"),
    (b'{"email": "\\ud800@acme.com"}', "lone surrogate"),
    (b'["ana@acme.com"]', "JSON object"),
    (b"{}", '"field": "email", "problem": "required'),
    (b'{"email": null}', '"field": "email", "problem": "must be a string'),
    (b'{"email": 5}', '"field": "email", "problem": "must be a string'),
    (b'{"email": ["ana@acme.com"]}', '"field": "email", "problem": "must be a string'),
    (b'{"email": "ana"}', "not a valid email address"),
    (b'{"email": "ana@@acme.com"}', "not a valid email address"),
    (b'{"email": ""}', "not a valid email address"),
    (b'{"email": "ana@acme.com", "history": true}', '"field": "history", "problem": "unknown'),
])
def test_a_bad_address_body_is_a_400_naming_it(client: Any, app_container: Container,
                                               route: str, body: bytes, names: str) -> None:
    # GIVEN a known lead
    seed(app_container, 1)
    # WHEN a body that is not {"email": <an address>} is posted
    answer = client.post(route, data=body, content_type="application/json", headers=AUTH)
    # THEN it is a 400 naming the problem, and nothing is erased
    assert answer.status_code == 400, answer.get_json()
    assert names in json.dumps(answer.get_json()), answer.get_json()
    assert app_container.store.get_lead(lead_id_for("person0@acme0.com")) is not None


def test_an_address_body_must_be_small_json(client: Any, app_container: Container) -> None:
    # GIVEN a known lead
    seed(app_container, 1)
    # WHEN the body is a form, or JSON over 4 KiB (an address is at most 254 characters)
    form_post = client.post("/leads/erase", data={"email": "person0@acme0.com"}, headers=AUTH)
    padded = json.dumps({"email": "person0@acme0.com", "pad": "x" * 5000})
    big = client.post("/leads/erase", data=padded, content_type="application/json",
                      headers=AUTH)
    # THEN they are refused as every JSON endpoint refuses them, and nothing is erased
    assert form_post.status_code == 415 and big.status_code == 413
    assert app_container.store.get_lead(lead_id_for("person0@acme0.com")) is not None


LONE_SURROGATE = "%ED%A0%80"  # "\ud800" as a URL spells it (no UTF-8 text can hold it)


@pytest.mark.parametrize("key", ["__x__", ".", "..", "l___x__", "l_" + "a" * 2000,
                                 "a" * 2000, LONE_SURROGATE, "L_" + "0" * 32,
                                 "l_" + "0" * 31, "l_" + "g" * 32, "lookup", "erase"])
@pytest.mark.parametrize(("method", "path"), ADDRESS_PATHS)
def test_a_path_that_is_no_lead_id_is_a_400_without_a_store_read(
        client: Any, app_container: Container, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, key: str, method: str, path: str) -> None:
    # GIVEN the leads API on a store (Firestore refuses "__x__", "..", ids over 1,500 bytes)
    calls = _calls_to(app_container.store, monkeypatch)
    # WHEN a path names something that is not a lead id
    answer = client.open(path.format(key), method=method, headers=AUTH)
    # THEN it is a 400 saying what an id is, nothing is read, nothing is logged as a failure
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert "not a lead id" in answer.get_json()["message"]
    assert calls == []
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
