"""POST /email_webhook/<provider>: verified, parsed, applied lead by lead, exactly once."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any

import pytest
from conftest import EVENTS_DIR, NOW
from signatures import mailgun

from functional.conftest import SECRETS, SENDGRID, SES_TOPIC, SNS, client_for
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.service import writes as uow

NOW_TS = int(NOW.timestamp())


def fixture(name: str) -> bytes:
    return (EVENTS_DIR / "email" / name).read_bytes()


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("email_webhook")


def lead(app: Container, email: str) -> Any:
    return app.store.get_lead(lead_id_for(email))


def nothing_written(app: Container) -> bool:
    return app.store.list_leads() == []


# --- SendGrid ----------------------------------------------------------------------------
def sendgrid_post(client: Any, body: bytes, timestamp: int = NOW_TS,
                  headers: dict[str, str] | None = None) -> Any:
    signed = SENDGRID.headers(body, timestamp) if headers is None else headers
    return client.post("/sendgrid", data=body, headers=signed, content_type="application/json")


def test_sendgrid_batch_sets_scores_and_statuses(client: Any, app_container: Container) -> None:
    # GIVEN a realistic signed batch: deliveries, human and machine opens, bounces, complaints
    answer = sendgrid_post(client, fixture("sendgrid_batch.json"))
    # THEN the scored events are applied and the ignored ones (processed, deferred, new) skipped
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["applied"] == 8
    priya = lead(app_container, "priya.shah@fabrikam-logistics.com")
    assert priya.counters == {"email_delivered": 1, "email_opened_machine": 1,
                              "email_opened": 1, "email_clicked": 1}
    assert priya.last_open_at is not None and priya.last_sent_at is not None
    assert lead(app_container, "old.contact@contoso-foods.net").email_status == "bounced"
    assert lead(app_container, "busy.inbox@tailspin-toys.org").email_status == "active"
    assert lead(app_container, "annoyed.reader@wingtip-travel.com").email_status == "complained"
    assert lead(app_container, "leaving.soon@woodgrove-bank.com").email_status == "unsubscribed"
    assert lead(app_container, "slow.server@adventure-works.com") is None


@pytest.mark.parametrize("forge", ["tampered", "wrong-key", "stale", "missing", "not-base64"])
def test_sendgrid_forgeries_are_refused(client: Any, app_container: Container,
                                        forge: str) -> None:
    body = fixture("sendgrid_batch.json")
    headers = SENDGRID.headers(body, NOW_TS)
    if forge == "tampered":
        body = body.replace(b'"open"', b'"click"', 1)
    elif forge == "wrong-key":
        from signatures import SendGridSigner

        headers = SendGridSigner().headers(body, NOW_TS)
    elif forge == "stale":
        headers = SENDGRID.headers(body, NOW_TS - 601)
    elif forge == "missing":
        headers = {}
    else:
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%not base64%%%"
    answer = sendgrid_post(client, body, headers=headers)
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthorized"
    assert nothing_written(app_container)


def test_an_unparseable_sendgrid_body_is_refused_and_writes_nothing(
        client: Any, app_container: Container) -> None:
    answer = sendgrid_post(client, b"[{]")
    assert answer.status_code == 400 and "not valid JSON" in answer.get_json()["message"]
    assert nothing_written(app_container)


@pytest.mark.parametrize(("body", "label"), [
    (b'{"email": "a@b.co"}', "(none) (invalid)"),
    (b'[{"email": "a@b.co", "event": "open"}]', "open (invalid)"),
    (b'[{"email": "not-an-address", "event": "open", "timestamp": 1795338000}]',
     "open (invalid)"),
    (b'[{"email": ["a@b.co"], "event": "click", "timestamp": "soon"}]', "click (invalid)"),
    (b'[7, null, "open"]', "(none) (invalid)"),
])
def test_signed_items_we_cannot_read_are_acknowledged_and_write_nothing(
        client: Any, app_container: Container, body: bytes, label: str) -> None:
    # GIVEN a correctly signed batch whose items have missing fields, wrong JSON types or
    # an address that is not one: SendGrid would resend it for 24 hours, never succeeding
    answer = sendgrid_post(client, body)
    # THEN it is acknowledged as ignored, naming what was ignored, and nothing is written
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "ignored"
    assert label in answer.get_json()["ignored"]
    assert nothing_written(app_container)


def state(app: Container) -> list[Any]:
    leads = app.store.list_leads(limit=1000)
    return sorted(((x.lead_id, x.counters, x.email_status, round(x.score, 6)) for x in leads),
                  key=str)


def test_a_batch_delivered_three_times_equals_one_delivery(client: Any,
                                                           app_container: Container) -> None:
    body = fixture("sendgrid_batch.json")
    sendgrid_post(client, body)
    once = state(app_container)
    # WHEN SendGrid redelivers it twice in a row and three times at once
    for _ in range(2):
        assert sendgrid_post(client, body).get_json()["duplicates"] == 8
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(
        sendgrid_post(client_for("email_webhook"), body).status_code)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN the store holds exactly what one delivery left
    assert answers == [200, 200, 200]
    assert state(app_container) == once


def test_a_thousand_events_over_a_hundred_leads_take_one_commit_per_lead(
        client: Any, app_container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 1,000 opens and clicks for 100 leads in one SendGrid request
    events = [{"email": f"reader{i % 100}@example.org", "timestamp": NOW_TS - 3600 + i,
               "event": "open" if i % 3 else "click", "url": "https://example.org/x",
               "sg_event_id": f"ev-{i}", "sg_message_id": f"m-{i % 100}"} for i in range(1000)]
    writes: list[int] = []
    real = uow.apply_events

    def counted(*args: Any, **kwargs: Any) -> Any:
        outcome = real(*args, **kwargs)
        writes.append(outcome.commits)
        return outcome

    monkeypatch.setattr(uow, "apply_events", counted)
    answer = sendgrid_post(client, json.dumps(events).encode())
    # THEN every event counts, in one atomic write per lead
    assert answer.get_json()["applied"] == 1000 and answer.get_json()["leads"] == 100
    assert len(writes) == 100 and sum(writes) == 100
    assert sum(x.counters.get("email_opened", 0) + x.counters.get("email_clicked", 0)
               for x in app_container.store.list_leads(limit=200)) == 1000


# --- Mailgun -----------------------------------------------------------------------------
def mailgun_body(name: str, token: str | None = None, timestamp: int = NOW_TS,
                 key: str = SECRETS["mailgun"]) -> bytes:
    data = json.loads(fixture(name))
    token = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]
    data["signature"] = {"timestamp": str(timestamp), "token": token,
                         "signature": mailgun(key, str(timestamp), token)}
    return json.dumps(data).encode()


def mailgun_post(client: Any, body: bytes) -> Any:
    return client.post("/mailgun", data=body, content_type="application/json")


def test_mailgun_open_and_permanent_failure(client: Any, app_container: Container) -> None:
    assert mailgun_post(client, mailgun_body("mailgun_opened.json")).get_json()["applied"] == 1
    assert lead(app_container, "jonas.berg@litware-analytics.se").last_open_at is not None
    mailgun_post(client, mailgun_body("mailgun_failed_permanent.json"))
    assert lead(app_container, "gone.away@litware-analytics.se").email_status == "bounced"


def test_mailgun_retry_is_a_duplicate_and_a_reused_token_a_replay(
        client: Any, app_container: Container) -> None:
    first = mailgun_body("mailgun_opened.json", token="t" * 50)
    assert mailgun_post(client, first).get_json()["applied"] == 1
    assert mailgun_post(client, first).get_json()["duplicates"] == 1  # Mailgun's retry
    replay = mailgun_body("mailgun_failed_permanent.json", token="t" * 50)
    answer = mailgun_post(client, replay)
    assert answer.status_code == 401 and "replay" in answer.get_json()["message"]
    assert lead(app_container, "gone.away@litware-analytics.se") is None


@pytest.mark.parametrize("forge", ["wrong-key", "stale", "tampered", "missing"])
def test_mailgun_forgeries_are_refused(client: Any, app_container: Container,
                                       forge: str) -> None:
    if forge == "wrong-key":
        body = mailgun_body("mailgun_opened.json", key="key-wrong")
    elif forge == "stale":
        body = mailgun_body("mailgun_opened.json", timestamp=NOW_TS - 901)
    elif forge == "tampered":
        data = json.loads(mailgun_body("mailgun_opened.json"))
        data["signature"]["timestamp"] = str(NOW_TS - 1)
        body = json.dumps(data).encode()
    else:
        data = json.loads(fixture("mailgun_opened.json"))
        del data["signature"]
        body = json.dumps(data).encode()
    assert mailgun_post(client, body).status_code == 401
    assert nothing_written(app_container)


# --- Mailchimp ---------------------------------------------------------------------------
def mailchimp_post(client: Any, name: str, key: str = SECRETS["mailchimp"]) -> Any:
    return client.post(f"/mailchimp?key={key}", data=fixture(name),
                       content_type="application/x-www-form-urlencoded")


def test_mailchimp_validation_get_and_wrong_key(client: Any) -> None:
    assert client.get(f"/mailchimp?key={SECRETS['mailchimp']}").status_code == 200
    assert client.get("/mailchimp?key=guess").status_code == 401
    assert client.get("/mailchimp").status_code == 401


def test_mailchimp_subscribe_unsubscribe_cleaned(client: Any, app_container: Container) -> None:
    assert mailchimp_post(client, "mailchimp_subscribe.txt").status_code == 200
    sofia = lead(app_container, "sofia.rossi@bellini-design.it")
    assert sofia.profile["first_name"] == "Sofia" and sofia.profile["company"] == "Bellini Design"
    assert sofia.counters == {"form_submitted": 1}
    mailchimp_post(client, "mailchimp_unsubscribe.txt")
    assert lead(app_container, "sofia.rossi@bellini-design.it").email_status == "unsubscribed"
    mailchimp_post(client, "mailchimp_cleaned.txt")
    assert lead(app_container, "typo.address@bellini-desing.it").email_status == "bounced"
    assert mailchimp_post(client, "mailchimp_subscribe.txt").get_json()["duplicates"] == 1


def test_mailchimp_upemail_moves_the_lead_with_its_history(client: Any,
                                                           app_container: Container) -> None:
    mailchimp_post(client, "mailchimp_subscribe.txt")
    old = lead(app_container, "sofia.rossi@bellini-design.it")
    # WHEN the subscriber changes address, and Mailchimp retries the notice
    for _ in range(2):
        assert mailchimp_post(client, "mailchimp_upemail.txt").status_code == 200
    # THEN the lead lives at the new address with its history, the old one is gone
    moved = lead(app_container, "sofia@bellini-studio.it")
    assert lead(app_container, "sofia.rossi@bellini-design.it") is None
    assert moved.profile == old.profile and moved.counters == old.counters
    assert moved.score == pytest.approx(old.score)
    history = app_container.store.history(moved.lead_id)
    assert [h.kind for h in history] == ["form_submitted"]


def test_mailchimp_retry_of_a_subscribe_after_upemail_counts_once(
        client: Any, app_container: Container) -> None:
    mailchimp_post(client, "mailchimp_subscribe.txt")
    mailchimp_post(client, "mailchimp_upemail.txt")
    moved = lead(app_container, "sofia@bellini-studio.it")
    # WHEN Mailchimp retries the subscribe of the old address after the move
    assert mailchimp_post(client, "mailchimp_subscribe.txt").get_json()["duplicates"] == 1
    # THEN it is a duplicate on the moved lead, and the old address has no lead again
    assert lead(app_container, "sofia.rossi@bellini-design.it") is None
    assert lead(app_container, "sofia@bellini-studio.it").counters == moved.counters


def test_mailchimp_wrong_key_writes_nothing(client: Any, app_container: Container) -> None:
    assert mailchimp_post(client, "mailchimp_subscribe.txt", key="nope").status_code == 401
    assert nothing_written(app_container)


# --- Postmark ----------------------------------------------------------------------------
def postmark_post(client: Any, name: str, credentials: str = SECRETS["postmark"]) -> Any:
    auth = base64.b64encode(credentials.encode()).decode()
    return client.post("/postmark", data=fixture(name), content_type="application/json",
                       headers={"Authorization": f"Basic {auth}"})


@pytest.mark.parametrize(("name", "email", "check"), [
    ("postmark_open.json", "dana.kim@proseware-inc.com", lambda x: x.last_open_at is not None),
    ("postmark_click.json", "dana.kim@proseware-inc.com", lambda x: x.last_click_at is not None),
    ("postmark_delivery.json", "dana.kim@proseware-inc.com",
     lambda x: x.last_sent_at is not None),
    ("postmark_bounce.json", "nobody.here@proseware-inc.com",
     lambda x: x.email_status == "bounced"),
    ("postmark_spam.json", "grumpy@proseware-inc.com", lambda x: x.email_status == "complained"),
    ("postmark_subscription_change.json", "dana.kim@proseware-inc.com",
     lambda x: x.email_status == "unsubscribed"),
])
def test_postmark_record_types(client: Any, app_container: Container, name: str, email: str,
                               check: Any) -> None:
    answer = postmark_post(client, name)
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1
    assert check(lead(app_container, email))


def test_postmark_wrong_credentials_write_nothing(client: Any, app_container: Container) -> None:
    assert postmark_post(client, "postmark_open.json", "postmark:wrong").status_code == 401
    answer = client.post("/postmark", data=fixture("postmark_open.json"),
                         content_type="application/json")
    assert answer.status_code == 401
    assert nothing_written(app_container)


def test_an_unsigned_mailgun_body_over_its_limit_is_refused_before_parsing(
        client: Any, app_container: Container) -> None:
    # GIVEN a stranger's 1 MiB JSON body for Mailgun, whose signature lies inside the body
    # (a review measured 4 MiB of unsigned JSON parsed before the check: 0.5 s, 108 MiB)
    body = json.dumps({"signature": {}, "event-data": [{"a": 1}] * 120_000}).encode()
    # WHEN it is posted THEN it is refused for its size and nothing is written
    answer = mailgun_post(client, body)
    assert answer.status_code == 413 and "limit of 524288 bytes" in answer.get_json()["message"]
    assert nothing_written(app_container)


# --- Amazon SES through SNS --------------------------------------------------------------
MIB_TEST = 1024 * 1024
def sns_notification(ses_event: bytes, message_id: str = "2f6b1c5e-3c5d-5b0e-9f1e-1a2b3c4d5e6f",
                     **override: str) -> dict[str, str]:
    return {"Type": "Notification", "MessageId": message_id, "TopicArn": SES_TOPIC,
            "Message": ses_event.decode(), "Timestamp": NOW.isoformat().replace("+00:00", "Z"),
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
            **override}


def sns_post(client: Any, message: dict[str, str]) -> Any:
    return client.post("/ses", data=json.dumps(message), content_type="text/plain",
                       headers={"x-amz-sns-message-type": message["Type"]})


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_names_several_recipients(client: Any, app_container: Container,
                                             version: str) -> None:
    message = SNS.sign(sns_notification(fixture("ses_bounce.json")), version=version)
    answer = sns_post(client, message)
    assert answer.status_code == 200 and answer.get_json()["applied"] == 2
    for email in ("left.company@margie-travel.com", "also.gone@margie-travel.com"):
        assert lead(app_container, email).email_status == "bounced"
    assert sns_post(client, message).get_json()["duplicates"] == 2  # SNS redelivery


def test_ses_open(client: Any, app_container: Container) -> None:
    sns_post(client, SNS.sign(sns_notification(fixture("ses_open.json"))))
    assert lead(app_container, "grace.lee@margie-travel.com").last_open_at is not None


def test_ses_bodies_are_capped_above_the_largest_sns_message(
        client: Any, app_container: Container) -> None:
    # GIVEN a signed SES event as large as SNS allows (256 KiB), its quotes escaped in the
    # envelope, and a stranger's unsigned body of 1 MiB
    event = json.loads(fixture("ses_open.json"))
    event["mail"]["tags"] = {"pad": ['"' * 1000] * (255 * 1024 // 2004 - 1)}  # 2 bytes each
    large = json.dumps(event).encode()
    assert 250 * 1024 < len(large) <= 256 * 1024
    stranger = json.dumps({"Type": "Notification", "Message": "x" * MIB_TEST}).encode()
    # WHEN each is posted
    signed = sns_post(client, SNS.sign(sns_notification(large)))
    refused = client.post("/ses", data=stranger, content_type="text/plain",
                          headers={"x-amz-sns-message-type": "Notification"})
    # THEN the signed one counts and the stranger's is refused for its size
    assert signed.status_code == 200, signed.get_json()
    assert lead(app_container, "grace.lee@margie-travel.com").last_open_at is not None
    assert refused.status_code == 413


@pytest.mark.parametrize("forge", ["tampered", "other-topic", "foreign-cert-url", "http-cert",
                                   "stale", "unsigned"])
def test_ses_forgeries_are_refused(client: Any, app_container: Container, forge: str) -> None:
    message = SNS.sign(sns_notification(fixture("ses_bounce.json")))
    if forge == "tampered":
        message["Message"] = message["Message"].replace("Permanent", "Transient")
    elif forge == "other-topic":
        message = SNS.sign(sns_notification(fixture("ses_bounce.json"),
                                            TopicArn="arn:aws:sns:eu-west-1:999:evil"))
    elif forge == "foreign-cert-url":
        message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem"
    elif forge == "http-cert":
        message["SigningCertURL"] = SNS.CERT_URL.replace("https", "http")
    elif forge == "stale":
        message = SNS.sign(sns_notification(fixture("ses_bounce.json"),
                                            Timestamp="2026-11-22T10:59:59Z"))
    else:
        del message["Signature"]
    answer = sns_post(client, message)
    assert answer.status_code == 401, answer.get_json()
    assert nothing_written(app_container)


def test_ses_subscription_is_confirmed_with_sns(client: Any, app_container: Container,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        sns = boto3.client("sns", region_name="eu-west-1")
        topic = sns.create_topic(Name="leadscore-ses-events")["TopicArn"]
        assert topic == SES_TOPIC
        # GIVEN SNS's confirmation request for our endpoint
        message = SNS.sign({
            "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747",
            "TopicArn": SES_TOPIC, "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": NOW.isoformat().replace("+00:00", "Z")})
        # WHEN it reaches the function
        answer = sns_post(client, message)
    # THEN the function confirmed it with SNS and stored nothing
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["subscription_arn"].startswith(SES_TOPIC)
    assert nothing_written(app_container)


def test_unknown_provider_is_a_404(client: Any) -> None:
    assert client.post("/hotmail", data=b"{}", content_type="application/json").status_code == 404


def test_a_batch_over_the_event_limit_is_413_and_writes_nothing(
        client: Any, app_container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.providers import sendgrid

    monkeypatch.setattr(sendgrid, "MAX_BATCH", 5)
    answer = sendgrid_post(client, fixture("sendgrid_batch.json"))  # 11 events
    assert answer.status_code == 413 and "limit is 5" in answer.get_json()["message"]
    assert nothing_written(app_container)


# --- Brevo -------------------------------------------------------------------------------
def brevo_post(client: Any, body: bytes, token: str | None = "brevo-token-9f3") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/brevo", data=body, headers=headers, content_type="application/json")


def test_brevo_batched_events(client: Any, app_container: Container) -> None:
    body = fixture("brevo_batch.json")
    answer = brevo_post(client, body)
    # request and unique_opened are ignored: seven events count
    assert answer.status_code == 200 and answer.get_json()["applied"] == 7
    hugo = lead(app_container, "hugo.martin@fourth-coffee.fr")
    assert hugo.counters == {"email_delivered": 1, "email_opened_machine": 1,
                             "email_opened": 1, "email_clicked": 1}
    assert lead(app_container, "left@fourth-coffee.fr").email_status == "bounced"
    assert lead(app_container, "angry@fourth-coffee.fr").email_status == "complained"
    assert lead(app_container, "bye@fourth-coffee.fr").email_status == "unsubscribed"
    assert brevo_post(client, body).get_json()["duplicates"] == 7  # Brevo's retry
    single = json.dumps(json.loads(body)[3]).encode()  # one event, not batched
    assert brevo_post(client, single).get_json()["duplicates"] == 1


@pytest.mark.parametrize("token", [None, "guess"])
def test_brevo_without_the_token_writes_nothing(client: Any, app_container: Container,
                                                token: str | None) -> None:
    assert brevo_post(client, fixture("brevo_batch.json"), token).status_code == 401
    assert nothing_written(app_container)
