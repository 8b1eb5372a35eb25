"""POST /form_submission: plain forms, scripts and Typeform become scored, explained leads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import EVENTS_DIR, NOW
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from functional.conftest import client_for
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for

TYPEFORM_SECRET = "tf-secret-42"
THANKS = "https://www.example.com/thanks"
SETTINGS = dict(
    form_allowed_origins="https://www.example.com", form_redirect_urls=f"{THANKS},"
    "https://www.example.com/gracias", typeform_secret=f"old,{TYPEFORM_SECRET}",
    typeform_forms={"lT4Z3j": "webinar"}, form_max_bytes=4096)
CARLOS = "carlos.mendez@globex-software.com"


def fixture(name: str) -> bytes:
    return (EVENTS_DIR / "forms" / name).read_bytes()


@pytest.fixture
def app(durable_store: Any) -> Iterator[Container]:
    built = Container(Settings(**SETTINGS), store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


@pytest.fixture
def client(app: Container) -> Any:
    return client_for("form_submission")


def lead(app: Container, email: str) -> Any:
    return app.store.get_lead(lead_id_for(email))


def post_form(client: Any, body: bytes | dict[str, Any], query: str = "",
              headers: dict[str, str] | None = None, json_body: bool = False) -> Any:
    if json_body:
        return client.post(f"/{query}", data=json.dumps(body), content_type="application/json",
                           headers=headers or {})
    return client.post(f"/{query}", data=body, headers=headers or {},
                       content_type=None if isinstance(body, dict)
                       else "application/x-www-form-urlencoded")


def test_a_browser_form_post_is_scored_and_redirected(client: Any, app: Container) -> None:
    # GIVEN a plain HTML form post (urlencoded, as a browser sends it)
    answer = post_form(client, fixture("demo_request_en.txt"),
                       headers={"Accept": "text/html,application/xhtml+xml"})
    # THEN the browser goes to the thank-you page, which reveals nothing about the lead
    assert answer.status_code == 303 and answer.headers["Location"] == THANKS
    carlos = lead(app, CARLOS)
    assert carlos.profile["company"] == "Globex Software"  # from "Company name"
    assert carlos.profile["company_size"] == "250"  # from "company-size"
    assert carlos.profile["favourite_color"] == "teal"  # unknown fields are kept
    assert carlos.profile["utm_campaign"] == "demo-q4"
    assert "form" not in carlos.profile and carlos.stage == "sql"
    entry = app.store.history(carlos.lead_id)[0]
    assert entry.kind == "form_submitted" and "form.demo_request" in entry.reason


def test_spanish_multipart_fields_are_mapped(client: Any, app: Container) -> None:
    answer = post_form(client, {"correo": "ana.ruiz@acme.es", "nombre": "Ana", "apellidos": "Ruiz",
                                "empresa": "Acme Iberia", "cargo": "Directora General",
                                "tamaño de la empresa": "80", "país": "ES"},
                       query="?form=content_download", headers={"Accept": "application/json"})
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok",
                                                               "message": "thank you"}
    ana = lead(app, "ana.ruiz@acme.es")
    assert ana.profile == {"first_name": "Ana", "last_name": "Ruiz", "company": "Acme Iberia",
                           "job_title": "Directora General", "company_size": "80",
                           "country": "ES"}
    assert ana.counters == {"form_submitted": 1}


def test_a_script_posts_json(client: Any, app: Container) -> None:
    answer = post_form(client, {"email": "dev@initech.io", "company": "Initech"},
                       query="?form=webinar", json_body=True)
    assert answer.status_code == 200 and "score" not in answer.get_json()
    assert lead(app, "dev@initech.io").profile == {"company": "Initech"}


def _score(app: Container, email: str) -> float:
    return float(lead(app, email).score)


def test_demo_beats_newsletter_and_students_and_competitors_lose_fit(client: Any,
                                                                     app: Container) -> None:
    profile = {"job_title": "Marketing Manager", "industry": "Retail"}
    post_form(client, {"email": "a@shop.com", "form": "newsletter", **profile}, json_body=True)
    post_form(client, {"email": "b@shop.com", "form": "demo_request", **profile}, json_body=True)
    post_form(client, {"email": "s@uni.edu", "form": "demo_request", "job_title": "Student"},
              json_body=True)
    post_form(client, {"email": "spy@hubspot.com", "form": "demo_request"}, json_body=True)
    post_form(client, {"email": "plain@shop.com", "form": "demo_request"}, json_body=True)
    assert _score(app, "b@shop.com") > _score(app, "a@shop.com")
    assert lead(app, "s@uni.edu").fit_score < lead(app, "plain@shop.com").fit_score
    assert lead(app, "spy@hubspot.com").fit_score < lead(app, "plain@shop.com").fit_score
    # AND the history says why
    why = app.store.history(lead_id_for("s@uni.edu"))[0]
    assert any(i.rule == "fit.student" and i.points < 0 for i in why.items)
    assert "students rarely buy" in why.reason


def test_a_double_click_counts_once(client: Any, app: Container) -> None:
    body = fixture("demo_request_en.txt")
    for _ in range(2):
        assert post_form(client, body).status_code in (200, 303)
    assert lead(app, CARLOS).counters == {"form_submitted": 1}
    assert len(app.store.history(lead_id_for(CARLOS))) == 1


def test_a_double_click_across_a_window_boundary_counts_once(durable_store: Any) -> None:
    # GIVEN the clock one second before a 10-minute boundary, then one second after
    window = 600
    before = NOW.replace(minute=9, second=59)
    clock = iter([before, before + timedelta(seconds=2)])
    install(Container(Settings(**SETTINGS), store=durable_store, clock=lambda: next(clock)))
    try:
        client = client_for("form_submission")
        body = {"email": "twice@example.com", "form": "contact", "message": "call me"}
        for _ in range(2):
            post_form(client, body, json_body=True)
    finally:
        install(None)
    assert before.timestamp() // window != (before.timestamp() + 2) // window
    assert durable_store.get_lead(lead_id_for("twice@example.com")).counters == {
        "form_submitted": 1}


def test_an_idempotency_key_makes_a_retry_count_once(client: Any, app: Container) -> None:
    body = {"email": "retry@example.com", "form": "contact"}
    for note in ("first", "edited"):  # even if the retry differs, the key says it is one
        post_form(client, {**body, "note": note}, json_body=True,
                  headers={"Idempotency-Key": "7e1c0d2a"})
    assert lead(app, "retry@example.com").counters == {"form_submitted": 1}


def test_a_filled_honeypot_looks_like_success_and_stores_nothing(
        client: Any, app: Container, capsys: pytest.CaptureFixture[str]) -> None:
    answer = post_form(client, {"email": "bot@spam.example", "form": "contact",
                                "_gotcha": "http://cheap-pills.example"}, json_body=True)
    assert answer.status_code == 200 and answer.get_json()["status"] == "ok"
    assert app.store.list_leads() == []
    assert "spam submission dropped" in capsys.readouterr().out


@pytest.mark.parametrize(("body", "content_type", "status", "names"), [
    ({"form": "contact", "company": "X"}, "json", 422, "email"),
    ({"email": "not-an-address", "form": "contact"}, "json", 422, "email"),
    ({"email": "x@y.com"}, "json", 422, "form"),
    (b'{"email": ', "application/json", 400, "not valid JSON"),
    (b"email=x@y.com", "text/plain", 415, "text/plain"),
    (b"a" * 5000, "application/x-www-form-urlencoded", 413, "exceeds"),
], ids=["no-email", "bad-email", "no-kind", "bad-json", "text-plain", "too-large"])
def test_bad_submissions_are_refused_and_write_nothing(client: Any, app: Container, body: Any,
                                                       content_type: str, status: int,
                                                       names: str) -> None:
    if content_type == "json":
        answer = post_form(client, body, json_body=True)
    else:
        answer = client.post("/", data=body, content_type=content_type)
    assert answer.status_code == status and names in json.dumps(answer.get_json())
    assert app.store.list_leads() == []


def test_redirects_only_to_allowed_urls(client: Any, app: Container) -> None:
    ok = post_form(client, fixture("demo_request_en.txt"),
                   query="?redirect=https://www.example.com/gracias")
    assert ok.status_code == 303 and ok.headers["Location"] == "https://www.example.com/gracias"
    bad = post_form(client, {"email": "x@example.com", "form": "contact",
                             "_redirect": "https://evil.example/phish"})
    assert bad.status_code == 400 and "not in" in bad.get_json()["message"]
    assert lead(app, "x@example.com") is None


def test_cors_preflight_and_headers(client: Any) -> None:
    allowed = client.options("/", headers={"Origin": "https://www.example.com",
                                           "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    denied = client.options("/", headers={"Origin": "https://evil.example"})
    assert denied.status_code == 403 and "Access-Control-Allow-Origin" not in denied.headers
    posted = post_form(client, {"email": "cors@example.com", "form": "contact"}, json_body=True,
                       headers={"Origin": "https://www.example.com"})
    assert posted.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    refused = post_form(client, {"form": "contact"}, json_body=True,
                        headers={"Origin": "https://www.example.com"})
    assert refused.status_code == 422  # errors carry CORS too, so the page can read them
    assert refused.headers["Access-Control-Allow-Origin"] == "https://www.example.com"


# --- Typeform ------------------------------------------------------------------------------
def typeform_post(client: Any, body: bytes, secret: str | None = TYPEFORM_SECRET) -> Any:
    headers = {}
    if secret is not None:  # Typeform's documented scheme: sha256= + base64(HMAC-SHA256)
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        headers["Typeform-Signature"] = "sha256=" + base64.b64encode(digest).decode()
    return client.post("/typeform", data=body, headers=headers, content_type="application/json")


def test_typeform_response_maps_refs_and_hidden_fields(client: Any, app: Container) -> None:
    body = fixture("typeform_response.json")
    assert typeform_post(client, body).status_code == 200
    assert typeform_post(client, body).status_code == 200  # Typeform's retry
    elena = lead(app, "elena.garcia@iberia-retail.es")
    assert elena.profile == {"first_name": "Elena García", "company": "Iberia Retail",
                             "job_title": "Directora de Marketing", "company_size": "420",
                             "utm_source": "newsletter", "utm_campaign": "webinar-dec"}
    history = app.store.history(elena.lead_id)
    assert len(history) == 1 and "form.webinar" in history[0].reason  # kind by form id


@pytest.mark.parametrize("forge", ["wrong-secret", "tampered", "missing"])
def test_typeform_forgeries_are_refused(client: Any, app: Container, forge: str) -> None:
    body = fixture("typeform_response.json")
    if forge == "wrong-secret":
        answer = typeform_post(client, body, secret="guess")
    elif forge == "tampered":
        # the signature of the original body, sent with an edited one
        digest = hmac.new(TYPEFORM_SECRET.encode(), body, hashlib.sha256).digest()
        answer = client.post("/typeform", data=body.replace(b"420", b"999"),
                             content_type="application/json", headers={
                                 "Typeform-Signature": "sha256=" +
                                 base64.b64encode(digest).decode()})
    else:
        answer = typeform_post(client, body, secret=None)
    assert answer.status_code == 401
    assert app.store.list_leads() == []


def test_a_signed_typeform_response_without_an_email_is_acknowledged_and_writes_nothing(
        client: Any, app: Container) -> None:
    # GIVEN Typeform's own response, signed, whose email answer was left out (an optional
    # email question): Typeform retries any non-2xx and disables the webhook after failures
    body = json.loads(fixture("typeform_response.json"))
    answers = body["form_response"]["answers"]
    body["form_response"]["answers"] = [a for a in answers if a["type"] != "email"]
    # WHEN it arrives signed
    answer = typeform_post(client, json.dumps(body).encode())
    # THEN it is acknowledged as ignored, names the problem, and nothing is written
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored"
    assert "email" in answer.get_json()["message"]
    assert app.store.list_leads() == []


# --- captcha against a local stand-in of the verifier -------------------------------------
@pytest.fixture
def verifier() -> Iterator[str]:
    seen: list[dict[str, str]] = []

    @Request.application  # type: ignore[misc]
    def answer(request: Request) -> Response:
        seen.append(dict(request.form))
        ok = request.form.get("secret") == "captcha-secret" and request.form.get(
            "response") == "good-token"
        return Response(json.dumps({"success": ok}), mimetype="application/json")

    server = make_server("127.0.0.1", 0, answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/siteverify"
    server.shutdown()


@pytest.mark.parametrize(("token", "status"), [("good-token", 200), ("bad-token", 403),
                                               (None, 403)])
def test_captcha_is_checked_with_the_verifier(durable_store: Any, verifier: str,
                                              token: str | None, status: int) -> None:
    install(Container(Settings(captcha_secret="captcha-secret", captcha_verify_url=verifier),
                      store=durable_store, clock=lambda: NOW))
    try:
        body: dict[str, Any] = {"email": "human@example.com", "form": "contact"}
        if token:
            body["cf-turnstile-response"] = token
        answer = post_form(client_for("form_submission"), body, json_body=True)
    finally:
        install(None)
    assert answer.status_code == status
    stored = durable_store.get_lead(lead_id_for("human@example.com"))
    assert (stored is not None) is (status == 200)
    if stored:
        assert "cf_turnstile_response" not in stored.profile


# --- Tally ---------------------------------------------------------------------------------
def tally_post(client: Any, body: bytes, secret: str | None = "tally-secret-7") -> Any:
    headers = {}
    if secret is not None:  # Tally's documented scheme: base64(HMAC-SHA256(secret, body))
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        headers["Tally-Signature"] = base64.b64encode(digest).decode()
    return client.post("/tally", data=body, headers=headers, content_type="application/json")


@pytest.fixture
def tally_client(durable_store: Any) -> Iterator[Any]:
    install(Container(Settings(tally_secret="tally-secret-7",
                               tally_forms={"VwbNEw": "free_sample"}),
                      store=durable_store, clock=lambda: NOW))
    yield client_for("form_submission")
    install(None)


def test_tally_response_maps_labels_choices_and_hidden_fields(tally_client: Any,
                                                              durable_store: Any) -> None:
    body = fixture("tally_response.json")
    for _ in range(2):  # Tally retries with the same response id
        assert tally_post(tally_client, body).status_code == 200
    ines = durable_store.get_lead(lead_id_for("ines.torres@contoso-labs.mx"))
    assert ines.profile == {"company": "Contoso Labs", "job_title": "Directora",
                            "company_size": "140", "utm_source": "partner-newsletter"}
    history = durable_store.history(ines.lead_id)
    assert len(history) == 1 and "form.free_sample" in history[0].reason


@pytest.mark.parametrize("secret", ["wrong", None])
def test_tally_forgeries_are_refused(tally_client: Any, durable_store: Any,
                                     secret: str | None) -> None:
    assert tally_post(tally_client, fixture("tally_response.json"), secret).status_code == 401
    assert durable_store.list_leads() == []
