"""What a session-9 audit found reaching log lines, driven with a distinctive address and name
(none of the suite's fixtures holds them), and checked in everything logged:

- a dict's keys are scrubbed as its values are, and a provider's free text (a dropped
  event's `reason`, an event type holding an address) is never made into a label;
- every spelling the app itself reads as an address becomes its lead id: IDNA's dots, a
  decomposed accent, a one-letter top-level domain, percent-encoded dots, a script's marks;
- error texts that reach logs name the problem without the value (money, decay messages,
  unknown provider paths), and a 503 tells a public caller nothing of the store's host.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from typing import Any
from urllib.parse import urlencode

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from conftest import PROJECT
from emulator import free_port

from functional.conftest import MAIN, SECRETS, client_for
from functional.email_senders import fixture, mailgun_post, mailgun_signed
from leadscore import logs
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain import money
from leadscore.domain.events import checked_email
from leadscore.domain.identity import lead_id_for, normalise_email
from leadscore.providers.email_events import kind_label

ADDRESS = "zzq.alice@example.com"
NAME, SURNAME = "ZzqAlice", "ZzqSmith"
# what must never be in a log line: the name, and any part of the address but its domain
STORE_UNAVAILABLE = "the store is unavailable, try again"  # what a caller is told
SECRET_PARTS = (NAME, SURNAME, "zzq", "Zzq")


def logged(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[dict[str, Any]]]:
    out = capsys.readouterr()
    text = out.out + out.err
    return text, [json.loads(line) for line in out.out.splitlines() if line.strip()]


def assert_clean(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text, text


# --- 1. keys and labels -------------------------------------------------------------------
def test_an_address_in_a_key_becomes_its_lead_id() -> None:
    # GIVEN a count keyed by text holding an address (as "webhook items ignored" logs)
    # WHEN it is scrubbed
    line = logs.scrub({"types": {f"dropped ({ADDRESS} {NAME})": 1}})
    # THEN the key holds the lead id, not the address
    assert line == {"types": {f"dropped ({lead_id_for(ADDRESS)} {NAME})": 1}}


@pytest.mark.parametrize(("value", "label"), [
    ("delivered", "delivered"), ("blacklist:add", "blacklist:add"),
    ("suppress-bounce", "suppress-bounce"), (None, "(none)"), ("", "(none)"), (7, "int"),
    (f"{NAME}-{ADDRESS}", "other"), (ADDRESS.replace("@", "%40"), "other"),
    ("Delivered", "other"), ("a" * 41, "other"), (f"{NAME} {SURNAME}", "other"),
])
def test_a_provider_event_type_is_a_label_of_a_fixed_shape(value: Any, label: str) -> None:
    # GIVEN an event type as a signed payload carries it WHEN it is made a label
    # THEN it is kept only in the shape providers document, else "other"
    assert kind_label(value) == label


def test_a_legacy_dropped_reason_is_not_logged(app_container: Container,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a signed legacy Mailgun post of a dropped event whose reason is free text
    form = {"event": "dropped", "recipient": ADDRESS, "reason": f"{ADDRESS} {NAME} {SURNAME}",
            "code": "605", "Message-Id": "<m1@mg.example.org>", "timestamp": "1795338000"}
    raw = mailgun_signed(urlencode(form).encode())
    # WHEN it is delivered
    answer = client_for("email_webhook").open(method="POST", **mailgun_post(raw))
    # THEN it is acknowledged under a fixed label, and nothing of the reason is logged
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["ignored"] == {"dropped (other)": 1}
    text, lines = logged(capsys)
    assert_clean(text)
    assert [x["types"] for x in lines if x["message"] == "webhook items ignored"] == [
        {"dropped (other)": 1}]


def test_an_event_type_holding_an_address_is_logged_as_other(
        app_container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a signed Mailgun event whose type is a name and an address
    body = json.loads(fixture("mailgun", "mailgun_accepted.json"))
    body["event-data"]["event"] = f"{NAME}-{ADDRESS}"
    raw = mailgun_signed(json.dumps(body).encode())
    # WHEN it is delivered
    answer = client_for("email_webhook").open(method="POST", **mailgun_post(raw))
    # THEN it is acknowledged as "other", and the log holds neither (the old "?" for "@"
    # hid the address from the scrubber)
    assert answer.status_code == 200 and answer.get_json()["ignored"] == {"other": 1}
    text, _ = logged(capsys)
    assert_clean(text)


def test_a_postmark_origin_of_free_text_is_not_a_label(
        app_container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an authenticated Postmark subscription change whose Origin is a name
    body = json.loads(fixture("postmark", "postmark_subscriptionchange_manual_customer.json"))
    body["Origin"] = f"{NAME} {SURNAME}"
    auth = base64.b64encode(SECRETS["postmark"].encode()).decode()
    # WHEN it is delivered
    answer = client_for("email_webhook").post(
        "/postmark", data=json.dumps(body), content_type="application/json",
        headers={"Authorization": f"Basic {auth}"})
    # THEN it is acknowledged under a fixed label, and the name is logged nowhere
    assert answer.status_code == 200, answer.get_data(as_text=True)
    text, _ = logged(capsys)
    assert_clean(text)
    assert "SubscriptionChange/ManualSuppression/other" in text


# --- 2. spellings the app reads as the same address ----------------------------------------
@pytest.mark.parametrize("written", [
    "zzq.alice@example\u3002com", "zzq.alice@example\uff0ecom", "zzq.alice@example\uff61com",
    "zzq%2Ealice%40example%2Ecom", "zzq.alice%40example%2ecom",
    "zzq.alice@example.c", "josé\u0301zzq@example.com", "zzq\u0939\u093f\u0902@example.com",
])
def test_a_spelling_the_app_accepts_becomes_the_lead_id_the_app_gives_it(
        written: str) -> None:
    # GIVEN a spelling the app accepts as an address (a lead is made for it)
    from urllib.parse import unquote

    accepted = checked_email(normalise_email(unquote(written)))
    # WHEN a log line carries it
    line = logs.scrub(f"refused {written} for now")
    # THEN the lead's own id stands in its place, and nothing of it is readable
    assert line == f"refused {lead_id_for(accepted)} for now", line
    assert "zzq" not in line and "example" not in line


def test_scrubbing_the_new_spellings_reads_each_character_a_bounded_number_of_times() -> None:
    # GIVEN runs of the characters the new spellings added (marks, IDNA dots, encoded dots),
    # a million characters long, without an address in them
    probe = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        from leadscore.logs import EMAIL
        n = 1_000_000
        for text in ("\\u093f" * n + "@b", "a\\u3002" * (n // 2) + "@b", "a%2E" * (n // 4),
                     "a@b%2E" * (n // 6), "\\u00e9@\\u00e9\\u3002" * (n // 4),
                     "a@b\\u3002" * (n // 4), "%2E%40" * (n // 6)):
            EMAIL.sub(lambda m: "x", text)
        print("done")
    """)
    # WHEN the pattern scrubs them, with a CPU limit far above what a linear reading needs
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, check=False)
    # THEN it finishes
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-500:]


# --- 3. error texts without the values -----------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: money.to_minor(NAME, "EUR"), lambda: money.to_minor(f"1.{NAME}", "EUR"),
    lambda: money.currency_code(SURNAME), lambda: money.currency_code("ZZQ"),
    lambda: money.to_minor("Infinity", "EUR"),
])
def test_a_money_error_names_the_problem_without_the_value(call: Any) -> None:
    with pytest.raises(money.MoneyError) as refused:
        call()
    assert NAME not in str(refused.value) and SURNAME not in str(refused.value)
    assert "ZZQ" not in str(refused.value) and "Infinity" not in str(refused.value)


def _decay_event(payload: bytes) -> tuple[dict[str, str], bytes]:
    message = {"messageId": "1", "data": base64.b64encode(payload).decode()}
    event = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished",
                        "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/d"},
                       {"message": message})
    headers, body = to_binary(event)
    return dict(headers), body


def test_refusals_driven_with_a_name_never_log_it(
        app_container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    import functions_framework

    from functional.test_purchase_webhook import _generic, signed

    # GIVEN requests that carry a name where a value, a path or a type belongs
    answers = [client_for("email_webhook").post(f"/{NAME}", data=b"{}",
                                                content_type="application/json"),
               client_for("purchase_webhook").post(f"/{SURNAME}", data=b"{}",
                                                   content_type="application/json")]
    decay = functions_framework.create_app("inactivity_decay", str(MAIN),
                                           "cloudevent").test_client()
    for payload in (json.dumps({"now": NAME}), json.dumps({"buckets": [NAME, SURNAME]}),
                    json.dumps({"now": 7, "buckets": SURNAME}), f'{{"{NAME}": ',
                    NAME):
        headers, body = _decay_event(payload.encode())
        answers.append(decay.post("/", headers=headers, data=body))
    for change in ({"amount": NAME}, {"currency": SURNAME}, {"amount": f"12.{NAME}"}):
        body = _generic(**change)
        answers.append(client_for("purchase_webhook").post(
            "/generic", data=body, headers=signed("generic", body),
            content_type="application/json"))
    answers += [client_for("form_submission").post("/?form=contact", data=b"x=1",
                                                   content_type=f"application/{NAME}"),
                client_for("email_webhook").post("/sendgrid", data=b"[]",
                                                 content_type=f"text/{SURNAME}"),
                client_for("ingest").open("/", method=NAME.upper())]
    # WHEN they are answered
    text, lines = logged(capsys)
    # THEN each was refused or acknowledged, and no log line and no answer repeats the name
    assert [a.status_code for a in answers] == [404, 404] + [200] * 8 + [415, 415, 405]
    assert NAME.upper() not in text
    assert_clean(text)
    assert_clean(" ".join(a.get_data(as_text=True) for a in answers))
    assert any(x["message"].startswith("decay message refused") for x in lines)


# --- 8. a public caller learns nothing of the store's host ---------------------------------
def test_a_store_that_does_not_answer_is_a_plain_503_and_a_detailed_log_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN Firestore configured at an emulator address nobody answers on
    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", dead)
    install(Container(Settings(store="firestore", firestore_emulator_host=dead,
                               google_cloud_project="demo-project")))
    try:
        # WHEN a form is posted
        answer = client_for("form_submission").post(
            "/?form=contact", json={"email": "down@example.org"})
    finally:
        install(None)
    # THEN the caller gets a 503 that says to retry, and nothing of the setting or host
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.get_json() == {"error": "store_unavailable", "message": STORE_UNAVAILABLE}
    assert dead not in answer.get_data(as_text=True)
    # AND the log line has the detail for the operator
    _, lines = logged(capsys)
    assert any(dead in str(x.get("problem")) for x in lines), lines


def test_store_unavailable_on_a_browser_form_is_a_plain_page(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", dead)
    install(Container(Settings(store="firestore", firestore_emulator_host=dead,
                               google_cloud_project="demo-project")))
    try:
        answer = client_for("form_submission").post(
            "/?form=contact", data={"email": "down@example.org"},
            headers={"Accept": "text/html"})
    finally:
        install(None)
    assert answer.status_code == 503
    assert dead not in answer.get_data(as_text=True)
    assert "FIRESTORE_EMULATOR_HOST" not in answer.get_data(as_text=True)


def test_a_folded_string_stays_within_the_line_bound() -> None:
    from leadscore.logs import LONGEST, scrub

    # GIVEN text whose NFKC form is 18 times longer (U+FDFA), under the cut before folding
    text = "\ufdfa " * (LONGEST // 2 - 10)
    # WHEN it is scrubbed for a log line THEN it stays within the bound (Cloud Logging
    # refuses entries over 256 KB; one such field was 752 KB)
    assert len(scrub(text)) <= LONGEST + 64
