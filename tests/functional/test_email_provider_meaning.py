"""Every documented payload of Postmark, Brevo, SparkPost, Resend and Amazon SES (SNS and
EventBridge) means what its source says: posted through the functions-framework client,
signed as each provider documents, then read back from the lead's history.

The tables below are the meaning tables of the provider modules and the README, fixture by
fixture (tests/events/email/<provider>/SOURCES.md names each fixture's source and what the
source says it means). Every fixture is addressed to ana@example.com. `[]` means
"acknowledged, ignored": a 200 with status "ignored" and nothing written. A second delivery
of every fixture changes nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import EVENTS_DIR, NOW
from signatures import svix

from functional.conftest import SNS, EdgeContainer, client_for
from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.store.sqlite import SqliteStore

NOW_TS = int(NOW.timestamp())
RECIPIENT = "ana@example.com"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"  # the research fixtures' topic
POSTMARK_AUTH = "postmark-hook:pm-pass-31"
SPARKPOST_AUTH = "sparkpost-hook:sp-pass-47"
EVENTBRIDGE_KEY = "eb-key-6f1d0c9a8b7e"
RESEND_SECRET = "whsec_" + base64.b64encode(b"leadscore-resend-test-key-32byte").decode()

POSTMARK = {
    "bounce_addresschange": [],
    "bounce_autoresponder": [],
    "bounce_bademailaddress": ["hard_bounce @ 2024-03-05T14:15:16.123456-05:00"],
    "bounce_blocked": [],
    "bounce_challengeverification": [],
    "bounce_dmarcpolicy": [],
    "bounce_dnserror": [],
    "bounce_hardbounce": ["hard_bounce @ 2024-03-05T14:15:16.123456-05:00"],
    "bounce_inbounderror": [],
    "bounce_manuallydeactivated": [],
    "bounce_openrelaytest": [],
    "bounce_smtpapierror": [],
    "bounce_softbounce": ["soft_bounce @ 2024-03-05T14:15:16.123456-05:00"],
    "bounce_spamcomplaint": ["complained @ 2024-03-05T14:15:16.123456-05:00"],
    "bounce_spamnotification": ["complained @ 2024-03-05T14:15:16.123456-05:00"],
    "bounce_subscribe": [],
    "bounce_templaterenderingfailed": [],
    "bounce_transient": [],
    "bounce_unconfirmed": [],
    "bounce_unknown": [],
    "bounce_unsubscribe": ["unsubscribed @ 2024-03-05T14:15:16.123456-05:00"],
    "bounce_unsubscribe_minimal": [],
    "bounce_virusnotification": [],
    "click": [
        "click https://example.com/pricing?utm_source=mail @ 2024-03-05T14:31:11.906561+00:00"
    ],
    "delivery": ["delivered @ 2024-03-05T14:10:02.273539-05:00"],
    "open_apple_proxy": ["open @ 2024-03-05T14:10:09-05:00"],
    "open_first": ["open @ 2024-03-05T14:30:10-05:00"],
    "open_repeat": ["open @ 2024-03-05T16:02:44-05:00"],
    "spamcomplaint": ["complained @ 2024-03-05T14:20:00-05:00"],
    "subscriptionchange_hardbounce": ["hard_bounce @ 2024-03-06T09:00:00.416071+00:00"],
    "subscriptionchange_manual_customer": [],
    "subscriptionchange_reactivated": ["resubscribed @ 2024-03-06T09:00:00.416071+00:00"],
    "subscriptionchange_spamcomplaint": ["complained @ 2024-03-06T09:00:00.416071+00:00"],
    "subscriptionchange_unsubscribe": ["unsubscribed @ 2024-03-06T09:00:00.416071+00:00"],
}
BREVO = {
    "mk_click": ["click https://example.com/pricing @ 2024-03-05T19:05:00+00:00"],
    "mk_contact_deleted": [],
    "mk_contact_updated": [],
    "mk_delivered": ["delivered @ 2024-03-05T19:05:00+00:00"],
    "mk_hard_bounce": ["hard_bounce @ 2024-03-05T19:05:00+00:00"],
    "mk_list_addition": [],
    "mk_opened": ["open @ 2024-03-05T19:05:00+00:00"],
    "mk_proxy_open": ["machine_open @ 2024-03-05T19:05:00+00:00"],
    "mk_soft_bounce": ["soft_bounce @ 2024-03-05T19:05:00+00:00"],
    "mk_spam": ["complained @ 2024-03-05T19:05:00+00:00"],
    "mk_unsubscribe": ["unsubscribed @ 2024-03-05T19:05:00+00:00"],
    "tx_batch": [
        "delivered @ 2024-03-05T19:00:00.123000+00:00",
        "open @ 2024-03-05T19:00:00.123000+00:00",
        "click https://example.com/pricing @ 2024-03-05T19:00:00.123000+00:00",
    ],
    "tx_blocked": [],
    "tx_click": ["click https://example.com/pricing @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_complaint": ["complained @ 2024-03-05T19:00:00+00:00"],
    "tx_deferred": [],
    "tx_delivered": ["delivered @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_error": [],
    "tx_hard_bounce": ["hard_bounce @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_invalid_email": ["hard_bounce @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_opened": ["open @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_proxy_open_s_epoch": ["machine_open @ 2024-03-05T19:01:00+00:00"],
    "tx_request": [],
    "tx_soft_bounce": ["soft_bounce @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_spam": ["complained @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_ts_epoch_only": ["delivered @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_unique_opened": ["open @ 2024-03-05T19:00:00.123000+00:00"],
    "tx_unique_proxy_open_s_epoch": ["machine_open @ 2024-03-05T19:01:00+00:00"],
    "tx_unsubscribed": ["unsubscribed @ 2024-03-05T19:00:00.123000+00:00"],
}
SPARKPOST = {
    "amp_click": ["click https://example.com/amp-pricing @ 2024-03-05T19:00:05+00:00"],
    "amp_initial_open": [],
    "amp_open": ["open @ 2024-03-05T19:00:05+00:00"],
    "batch_mixed": [
        "delivered @ 2024-03-05T19:00:05+00:00",
        "open @ 2024-03-05T19:00:05+00:00",
        "click https://example.com/pricing @ 2024-03-05T19:00:05+00:00",
    ],
    "bounce_class1": ["soft_bounce @ 2024-03-05T19:00:05+00:00"],
    "bounce_class10": ["hard_bounce @ 2024-03-05T19:00:05+00:00"],
    "bounce_class100": [],
    "bounce_class20": ["soft_bounce @ 2024-03-05T19:00:05+00:00"],
    "bounce_class22": ["soft_bounce @ 2024-03-05T19:00:05+00:00"],
    "bounce_class25": [],
    "bounce_class30": ["hard_bounce @ 2024-03-05T19:00:05+00:00"],
    "bounce_class50": [],
    "bounce_class51": [],
    "bounce_class60": [],
    "bounce_class80": [],
    "bounce_class90": ["unsubscribed @ 2024-03-05T19:00:05+00:00"],
    "click": ["click https://example.com/pricing @ 2024-03-05T19:00:05+00:00"],
    "delay": [],
    "delivery": ["delivered @ 2024-03-05T19:00:05+00:00"],
    "generation_failure": [],
    "generation_rejection": [],
    "initial_open": [],
    "injection": [],
    "link_unsubscribe": ["unsubscribed @ 2024-03-05T19:00:05+00:00"],
    "list_unsubscribe": ["unsubscribed @ 2024-03-05T19:00:05+00:00"],
    "open": ["open @ 2024-03-05T19:00:05+00:00"],
    "open_mpp": ["open @ 2024-03-05T19:00:05+00:00"],
    "out_of_band": ["hard_bounce @ 2024-03-05T19:00:05+00:00"],
    "ping": [],
    "policy_rejection": [],
    "relay_delivery": [],
    "spam_complaint": ["complained @ 2024-03-05T19:00:05+00:00"],
}
SES_SNS = {
    "bounce_permanent_general": ["hard_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_permanent_noemail": ["hard_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_permanent_onaccountsuppressionlist": [],
    "bounce_permanent_suppressed": ["hard_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_transient_attachmentrejected": ["soft_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_transient_contentrejected": ["soft_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_transient_general": ["soft_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_transient_mailboxfull": ["soft_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_transient_messagetoolarge": ["soft_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "bounce_undetermined_undetermined": ["soft_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "click": ["click https://example.com/pricing @ 2024-03-05T19:11:25.570000+00:00"],
    "complaint_abuse": ["complained @ 2024-03-06T08:00:00+00:00"],
    "complaint_onaccountsuppressionlist": [],
    "delivery": ["delivered @ 2024-03-05T19:00:02.123000+00:00"],
    "deliverydelay": [],
    "notification_bounce_permanent_general": ["hard_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "notification_complaint": ["complained @ 2024-03-06T08:00:00+00:00"],
    "notification_delivery": ["delivered @ 2024-03-05T19:00:02.123000+00:00"],
    "notification_received_inbound": [],
    "notification_signature_v2": ["delivered @ 2024-03-05T19:00:02.123000+00:00"],
    "open": ["open @ 2024-03-05T19:10:19.652000+00:00"],
    "reject": [],
    "rendering_failure": [],
    "send": [],
    # one topic (AWS: topic preferences), as SendGrid's group unsubscribes: not every mail
    "subscription_topic_optout": ["activity email_topic_unsubscribed @ 2024-03-06T10:05:00+00:00"],
    "subscription_unsubscribe_all": ["unsubscribed @ 2024-03-06T10:00:00+00:00"],
    "validation_success": [],
}
SES_EVENTBRIDGE = {
    "bounce_permanent_general": ["hard_bounce @ 2024-03-05T19:00:03.456000+00:00"],
    "click": ["click https://example.com/pricing @ 2024-03-05T19:11:25.570000+00:00"],
    "complaint": ["complained @ 2024-03-06T08:00:00+00:00"],
    "delivery": ["delivered @ 2024-03-05T19:00:02.123000+00:00"],
    "deliverydelay": [],
    "open": ["open @ 2024-03-05T19:10:19.652000+00:00"],
    "subscription": ["unsubscribed @ 2024-03-06T10:00:00+00:00"],
}
RESEND = {
    "contact_created": [],
    "contact_deleted": [],
    "contact_updated_resubscribed": [],
    "contact_updated_unsubscribed": ["unsubscribed @ 2024-03-06T10:00:00.126000+00:00"],
    "domain_updated": [],
    "email_bounced_legacy_message_only": ["soft_bounce @ 2024-03-05T19:00:04.101000+00:00"],
    "email_bounced_permanent": ["hard_bounce @ 2024-03-05T19:00:04.101000+00:00"],
    "email_bounced_suppressed": [],
    "email_clicked": ["click https://example.com/pricing @ 2024-03-05T19:11:35.257000+00:00"],
    "email_complained": ["complained @ 2024-03-06T08:00:00.126000+00:00"],
    "email_delivered": ["delivered @ 2024-03-05T19:00:03.126000+00:00"],
    "email_delivery_delayed": [],
    "email_failed": [],
    "email_opened": ["open @ 2024-03-05T19:10:38.990000+00:00"],
    "email_scheduled": [],
    "email_sent": [],
    "email_suppressed": [],
}


TABLES: dict[str, tuple[str, str, dict[str, list[str]]]] = {
    "postmark": ("postmark", "postmark_", POSTMARK),
    "brevo": ("brevo", "brevo_", BREVO),
    "sparkpost": ("sparkpost", "sparkpost_", SPARKPOST),
    "ses": ("ses", "ses_sns_", SES_SNS),
    "ses-eventbridge": ("ses", "ses_eventbridge_", SES_EVENTBRIDGE),
    "resend": ("resend", "resend_", RESEND),
}
CASES = [(provider, name) for provider, (_, _, table) in TABLES.items() for name in table]


class Edges(EdgeContainer):
    """The SNS certificate served locally; SNS subscription confirmations recorded."""

    confirmed: list[tuple[str, str]]

    def confirm_sns_subscription(self, topic_arn: str, token: str) -> str:
        self.confirmed.append((topic_arn, token))
        return f"{topic_arn}:c0ffee00-0000-4000-8000-000000000001"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Edges]:
    store = SqliteStore(tmp_path / "leads.db")
    built = Edges(
        Settings(
            postmark_basic_auth=POSTMARK_AUTH,
            brevo_token="brevo-token-5e2",
            sparkpost_basic_auth=SPARKPOST_AUTH,
            ses_topic_arns=TOPIC,
            ses_eventbridge_secret=EVENTBRIDGE_KEY,
            resend_secret=RESEND_SECRET,
        ),
        store=store,
        clock=lambda: NOW,
    )
    built.confirmed = []
    install(built)
    yield built
    install(None)
    store.close()


def fixture_path(provider: str, name: str) -> Path:
    folder, prefix, _ = TABLES[provider]
    return EVENTS_DIR / "email" / folder / f"{prefix}{name}.json"


def basic(pair: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def post(provider: str, raw: bytes, svix_id: str = "msg_2W2D3qXLS5fOaPja1GDg7rF2CwB") -> Any:
    """One delivery, authenticated as the provider documents it."""
    client = client_for("email_webhook")
    if provider == "ses":
        message = json.loads(raw)
        message["Timestamp"] = NOW.isoformat().replace("+00:00", "Z")
        signed = SNS.sign(message, version=message.get("SignatureVersion", "2"))
        return client.post(
            "/ses",
            data=json.dumps(signed),
            content_type="text/plain",
            headers={"x-amz-sns-message-type": message["Type"]},
        )
    headers = {
        "postmark": basic(POSTMARK_AUTH),
        "sparkpost": basic(SPARKPOST_AUTH),
        "brevo": {"Authorization": "Bearer brevo-token-5e2"},
        "ses-eventbridge": {"X-Leadscore-Key": EVENTBRIDGE_KEY},
    }.get(provider)
    if provider == "resend":
        headers = svix(raw, RESEND_SECRET, svix_id, NOW_TS)
    return client.post(f"/{provider}", data=raw, headers=headers, content_type="application/json")


def described(event: dict[str, Any]) -> tuple[str, datetime]:
    """A stored canonical event in the tables' words: (kind and flags, instant)."""
    kind = event["type"].removeprefix("email_")
    if kind == "opened":
        kind = "machine_open" if event.get("machine_open") else "open"
    elif kind == "bounced":
        kind = "hard_bounce" if event["hard"] else "soft_bounce"
    elif kind == "clicked":
        kind = f"click {event['url']}"
    elif kind == "activity":
        kind = f"activity {event['activity']}"
    at = event["occurred_at"]
    return kind, at if isinstance(at, datetime) else datetime.fromisoformat(at)


def expected(rows: list[str]) -> list[tuple[str, datetime]]:
    pairs = [row.rsplit(" @ ", 1) for row in rows]
    return sorted((kind, datetime.fromisoformat(at)) for kind, at in pairs)


def recorded(app: Container, email: str = RECIPIENT) -> list[tuple[str, datetime]]:
    entries = app.store.history(lead_id_for(email))
    assert all(e.event is None or e.event["email"] == email for e in entries)
    return sorted(described(e.event) for e in entries if e.event is not None)


@pytest.mark.parametrize(("provider", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_each_documented_payload_means_what_its_source_says(
    app: Edges, provider: str, name: str
) -> None:
    # GIVEN a payload from the provider's documentation or an established parser's tests
    raw = fixture_path(provider, name).read_bytes()
    want = expected(TABLES[provider][2][name])
    # WHEN it is delivered, authenticated as the provider does
    first = post(provider, raw)
    # THEN it is acknowledged (never a 4xx or 5xx) and means what the source says
    assert first.status_code == 200, first.get_json()
    assert recorded(app) == want
    if not want:
        assert first.get_json()["status"] == "ignored"
        assert app.store.list_leads() == []
    # AND a second delivery changes nothing
    lead = app.store.get_lead(lead_id_for(RECIPIENT))
    second = post(provider, raw)
    assert second.status_code == 200, second.get_json()
    assert recorded(app) == want
    assert app.store.get_lead(lead_id_for(RECIPIENT)) == lead
    if want:
        assert second.get_json()["applied"] == 0


def test_brevo_first_open_reported_as_unique_opened_and_opened_counts_once(app: Edges) -> None:
    # GIVEN Brevo's unique_opened and opened for the same open (same message, same time)
    for name in ("tx_unique_opened", "tx_opened"):
        assert post("brevo", fixture_path("brevo", name).read_bytes()).status_code == 200
    # THEN one open is recorded
    assert [kind for kind, _ in recorded(app)] == ["open"]
    lead = app.store.get_lead(lead_id_for(RECIPIENT))
    assert lead is not None and lead.counters == {"email_opened": 1}


def test_postmark_bounce_and_subscription_change_of_one_message_count_once(app: Edges) -> None:
    # GIVEN the Bounce webhook and the Subscription Change webhook both on: Postmark reports
    # one hard bounce (and one complaint) of one message through each
    for name in (
        "bounce_hardbounce",
        "subscriptionchange_hardbounce",
        "spamcomplaint",
        "subscriptionchange_spamcomplaint",
    ):
        assert post("postmark", fixture_path("postmark", name).read_bytes()).status_code == 200
    # THEN the bounce and the complaint count once each
    assert sorted(kind for kind, _ in recorded(app)) == ["complained", "hard_bounce"]


def test_ses_record_through_sns_and_eventbridge_counts_once(app: Edges) -> None:
    # GIVEN one SES delivery record published both to SNS and to EventBridge
    assert post("ses", fixture_path("ses", "delivery").read_bytes()).status_code == 200
    answer = post("ses-eventbridge", fixture_path("ses-eventbridge", "delivery").read_bytes())
    # THEN the second route finds it already counted
    assert answer.status_code == 200 and answer.get_json()["duplicates"] == 1
    assert [kind for kind, _ in recorded(app)] == ["delivered"]


def test_sns_subscription_and_unsubscribe_confirmations(app: Edges) -> None:
    # GIVEN SNS's subscription confirmation for an allowed topic
    raw = fixture_path("ses", "subscriptionconfirmation").read_bytes()
    answer = post("ses", raw)
    # THEN it is confirmed with SNS, and nothing is written
    assert answer.status_code == 200 and answer.get_json()["subscription_arn"].startswith(TOPIC)
    assert app.confirmed == [(TOPIC, json.loads(raw)["Token"])]
    # AND an unsubscribe confirmation is acknowledged, never re-confirmed
    answer = post("ses", fixture_path("ses", "unsubscribeconfirmation").read_bytes())
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert len(app.confirmed) == 1 and app.store.list_leads() == []


def test_sparkpost_ping_is_answered_even_before_credentials_are_set(app: Edges) -> None:
    # GIVEN SparkPost's test batch when a webhook is saved (it refuses the webhook on non-200)
    answer = client_for("email_webhook").post(
        "/sparkpost", data=b'[{"msys": {}}]', content_type="application/json"
    )
    # THEN it is a 200 that writes nothing; anything else unauthenticated is a 401
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    raw = fixture_path("sparkpost", "open").read_bytes()
    assert (
        client_for("email_webhook")
        .post("/sparkpost", data=raw, content_type="application/json")
        .status_code
        == 401
    )
    assert app.store.list_leads() == []


def test_resend_accepts_the_independent_svix_test_vector() -> None:
    # GIVEN a signature computed outside this code base with the Svix algorithm
    from leadscore.providers.base import Inbound
    from leadscore.providers.resend import PROVIDER

    vector = json.loads(
        (EVENTS_DIR / "email" / "resend" / "resend_signature_vector.json").read_text()
    )
    inbound = Inbound(vector["body"].encode(), vector["headers"])
    at = datetime.fromtimestamp(int(vector["headers"]["svix-timestamp"]), NOW.tzinfo)
    # THEN it verifies with its secret, and not with another
    PROVIDER.verify(inbound, ["whsec_b3RoZXI=", vector["secret"]], at, None)  # type: ignore[arg-type]
    from leadscore.errors import Unauthorized

    with pytest.raises(Unauthorized):
        PROVIDER.verify(inbound, [RESEND_SECRET], at, None)  # type: ignore[arg-type]


def test_resend_redelivery_keeps_its_svix_id_and_counts_once(app: Edges) -> None:
    raw = fixture_path("resend", "email_opened").read_bytes()
    assert post("resend", raw, svix_id="msg_first").get_json()["applied"] == 1
    assert post("resend", raw, svix_id="msg_first").get_json()["duplicates"] == 1
    # a different message (another open) counts
    assert post("resend", raw, svix_id="msg_second").get_json()["applied"] == 1


IGNORED = [(p, n) for p, n in CASES if not TABLES[p][2][n]]


@pytest.mark.parametrize(("provider", "name"), IGNORED, ids=[f"{p}:{n}" for p, n in IGNORED])
def test_what_is_ignored_is_named_for_the_log_without_personal_data(app: Edges, provider: str,
                                                                    name: str) -> None:
    # GIVEN a documented payload we acknowledge without scoring
    from leadscore.providers.base import Inbound
    from leadscore.providers.registry import REGISTRY

    found = REGISTRY.lookup("email_webhook", f"/{provider}")
    assert found is not None
    raw = fixture_path(provider, name).read_bytes()
    # WHEN it is parsed
    result = found.parse(Inbound(raw, {"svix-id": "msg_1"}), app.settings, app)
    # THEN it names what it ignored, in the provider's documented words, never an address
    assert result.events == [] and result.ignored
    assert not [label for label in result.ignored if "@" in label or "unknown" in label]


def test_epoch_times_in_seconds_or_milliseconds_read_the_same() -> None:
    from leadscore.providers.brevo import epoch
    from leadscore.providers.sparkpost import timestamp

    at = datetime.fromisoformat("2024-03-05T19:00:00+00:00")
    # Brevo documents ts_epoch in milliseconds, and its own examples send seconds
    assert epoch(1709665200) == epoch(1709665200000) == at
    assert epoch(1709665200123) == datetime.fromisoformat("2024-03-05T19:00:00.123+00:00")
    # what is not a time is no time (the event is then acknowledged and ignored)
    assert [epoch(v) for v in (0, -5, 10**13, 10**40, True, 1.5e9, "1709665200")] == [None] * 7
    # SparkPost: epoch seconds as a string, or ISO 8601 with an offset
    assert timestamp("1709665200") == timestamp("2024-03-05T19:00:00.000+00:00") == at
    assert [timestamp(v) for v in ("2024-03-05T19:00:00", "²", "1" * 40, None, [])] == [None] * 5


def _resend_to_several(name: str, **fields: Any) -> bytes:
    body = json.loads(fixture_path("resend", name).read_bytes())
    body["data"].update(fields)
    return json.dumps(body).encode()


@pytest.mark.parametrize("recipients", [{"to": [RECIPIENT, "ben@example.com"]},
                                        {"to": [RECIPIENT], "cc": ["ben@example.com"]}])
def test_resend_bounce_of_a_message_to_several_is_nobodys(app: Edges,
                                                          recipients: dict[str, Any]) -> None:
    # GIVEN a permanent bounce of a message to ana and ben: Resend sends one event per
    # recipient and does not say whose it is (django-anymail, webhooks/resend.py)
    raw = _resend_to_several("email_bounced_permanent", **recipients)
    answer = post("resend", raw, svix_id="msg_bounce_of_one_of_two")
    # THEN nobody is marked bounced: it is acknowledged and ignored
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app.store.list_leads() == []


def test_resend_open_of_a_message_to_several_is_the_first_recipients_once(app: Edges) -> None:
    # GIVEN the open of a message to ana and ben (one event; Resend does not say whose)
    raw = _resend_to_several("email_opened", to=[RECIPIENT, "ben@example.com"])
    assert post("resend", raw, svix_id="msg_open_of_one_of_two").status_code == 200
    # THEN it is recorded once, on the first recipient, and ben has nothing
    assert recorded(app) == expected(RESEND["email_opened"])
    assert app.store.get_lead(lead_id_for("ben@example.com")) is None


def test_ses_topic_opt_out_and_back_in_leaves_the_address_subscribed(app: Edges) -> None:
    # GIVEN a contact opting out of one topic (ses_sns_subscription_topic_optout.json: weekly
    # OptIn -> OptOut), then back in a day later (the same preferences, reversed)
    out = json.loads(fixture_path("ses", "subscription_topic_optout").read_bytes())
    record = json.loads(out["Message"])
    back = dict(record, subscription=dict(
        record["subscription"], timestamp="2024-03-07T10:05:00.000Z",
        newTopicPreferences=record["subscription"]["oldTopicPreferences"],
        oldTopicPreferences=record["subscription"]["newTopicPreferences"]))
    back_in = dict(out, MessageId="another-sns-message", Message=json.dumps(back))
    for message in (out, back_in):
        assert post("ses", json.dumps(message).encode()).status_code == 200
    # THEN both are recorded as topic activities and the address still takes mail: a topic
    # is one kind of mail (AWS list management), as a SendGrid unsubscribe group
    assert recorded(app) == expected([  # sorted by kind, then time
        "activity email_topic_unsubscribed @ 2024-03-06T10:05:00+00:00",
        "activity email_topic_resubscribed @ 2024-03-07T10:05:00+00:00"])
    lead = app.store.get_lead(lead_id_for(RECIPIENT))
    assert lead is not None and lead.email_status == "active"
