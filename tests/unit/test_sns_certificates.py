"""SNS verification is cheap and strict before it is expensive: the topic and the message's
fields are checked before any certificate fetch, the SigningCertURL is parsed strictly, the
certificate cache is keyed by the canonical URL and bounded, and a failed fetch is a 401."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from conftest import NOW
from functional.conftest import SNS

from leadscore.errors import TransientError, Unauthorized
from leadscore.http import status_of
from leadscore.providers import ses

TOPIC = "arn:aws:sns:eu-west-1:123456789012:leadscore-ses-events"

HOSTILE_URLS = [
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",  # not https
    "https://sns.s3.amazonaws.com/SimpleNotificationService-a.pem",  # not a region
    "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-a.pem",
    "https://evil.example/sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-a.pem",  # a port
    "https://sns.eu-west-1.amazonaws.com:443/SimpleNotificationService-a.pem",  # even 443
    "https://user:pw@sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "https://evil.example@sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com\\@evil.example/SimpleNotificationService-a.pem",
    "https://evil.example\\.sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem?v=2",  # new key
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem?",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem#x",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.txt",
    "https://sns.eu-west-1.amazonaws.com/../SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com/a/SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com/%2e%2e/SimpleNotificationService-a.pem",
    "https://SNS.EU-WEST-1.AMAZONAWS.COM/SimpleNotificationService-a.pem",  # odd spelling
    "https://sns.eu-west-1.amazonaws.com./SimpleNotificationService-a.pem",  # trailing dot
    "https://sns.eu-west-1.amazonaws.com.cn/SimpleNotificationService-a.pem",  # .cn, not cn-
    "https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-a.pem",  # cn- without .cn
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem\n",
    "https://sns.eu-west-1.amazonaws.com /SimpleNotificationService-a.pem",
    "https://sns.\u0435u-west-1.amazonaws.com/SimpleNotificationService-a.pem",  # Cyrillic
    "https://[::1]/SimpleNotificationService-a.pem",
    "https:///SimpleNotificationService-a.pem",
    "//sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "",
]
GOOD_URLS = [
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-a.pem",
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "https://sns.ap-southeast-2.amazonaws.com/SimpleNotificationService-a.pem",
]


class CountingFetch:
    """The outside edge: serves our test certificate and counts every fetch."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.urls: list[str] = []
        self.fail = fail

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.fail is not None:
            raise self.fail
        return SNS.certificate


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    with ses._keys_lock:
        saved = dict(ses._keys)
        ses._keys.clear()
        ses._missing.clear()
    yield
    with ses._keys_lock:
        ses._keys.clear()
        ses._keys.update(saved)
        ses._missing.clear()


def signed(message_id: str = "5a1b-0001", **override: Any) -> dict[str, Any]:
    message = {"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
               "Message": json.dumps({"eventType": "Send", "mail": {}}),
               "Timestamp": NOW.isoformat().replace("+00:00", "Z")}
    return {**SNS.sign(message), **override}


def refused(message: dict[str, Any], fetch: CountingFetch, now: datetime = NOW) -> str:
    with pytest.raises(Unauthorized) as caught:
        ses.verify(message, [TOPIC], fetch, now)
    assert status_of(caught.value) == 401
    return caught.value.message


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_hostile_certificate_url_is_refused_without_a_fetch(url: str) -> None:
    # GIVEN a correctly signed message whose SigningCertURL is hostile
    fetch = CountingFetch()
    # THEN it is a 401 and nothing was fetched
    assert "SigningCertURL" in refused(signed(SigningCertURL=url), fetch)
    assert fetch.urls == []


@pytest.mark.parametrize("url", GOOD_URLS)
def test_the_documented_certificate_hosts_are_accepted(url: str) -> None:
    assert ses.certificate_url(url) == url


@pytest.mark.parametrize("forge", ["other-topic", "no-topic", "stale", "future", "no-signature",
                                   "signature-not-base64", "unknown-version", "number-message",
                                   "no-timestamp"])
def test_cheap_checks_come_before_any_fetch(forge: str) -> None:
    # GIVEN a message wrong in a way that needs no certificate to see
    hour = timedelta(seconds=ses.TOLERANCE_S + 1)
    changes: dict[str, Any] = {
        "other-topic": {"TopicArn": "arn:aws:sns:eu-west-1:999999999999:evil"},
        "no-topic": {"TopicArn": None},
        "stale": {"Timestamp": (NOW - hour).isoformat()},
        "future": {"Timestamp": (NOW + hour).isoformat()},
        "no-signature": {"Signature": None},
        "signature-not-base64": {"Signature": "not base64 !"},
        "unknown-version": {"SignatureVersion": "3"},
        "number-message": {"Message": 12345},
        "no-timestamp": {"Timestamp": None},
    }[forge]
    fetch = CountingFetch()
    # THEN it is refused and no certificate was fetched
    refused(signed(**changes), fetch)
    assert fetch.urls == []


@pytest.mark.parametrize("failure", [OSError("connection refused"), TimeoutError("slow"),
                                     ValueError("bad redirect"), RuntimeError("anything")])
def test_a_failed_certificate_fetch_is_a_503_and_is_not_cached(failure: Exception) -> None:
    # GIVEN a fetch that fails for a reason that may pass (network, timeout, anything but
    # the host saying there is no such file)
    fetch = CountingFetch(fail=failure)
    # WHEN a message needs it, twice THEN each is a 503 (SNS retries a 5xx, never a 4xx:
    # a 401 here lost the event) and each fetches again: nothing is remembered
    for _ in range(2):
        with pytest.raises(TransientError) as caught:
            ses.verify(signed(), [TOPIC], fetch, NOW)
        assert status_of(caught.value) == 503
    assert len(fetch.urls) == 2 and ses._keys == {} and ses._missing == {}


def test_an_unreadable_certificate_is_a_401() -> None:
    with pytest.raises(Unauthorized):
        ses.verify(signed(), [TOPIC], lambda url: b"not a certificate", NOW)


def test_the_certificate_is_fetched_once_by_its_canonical_url() -> None:
    # GIVEN two correctly signed messages from the same certificate
    fetch = CountingFetch()
    ses.verify(signed(), [TOPIC], fetch, NOW)
    ses.verify(signed("5a1b-0002"), [TOPIC], fetch, NOW)
    # THEN it was fetched once, from the URL rebuilt from its checked parts
    assert fetch.urls == [SNS.CERT_URL]


def test_the_certificate_cache_is_bounded() -> None:
    # GIVEN more distinct valid certificate URLs than the cache holds
    fetch = CountingFetch()
    for i in range(ses.CERT_CACHE_SIZE + 8):
        url = f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-{i}.pem"
        ses.verify(signed(SigningCertURL=url), [TOPIC], fetch, NOW)
    # THEN each was fetched once, and the cache holds at most its bound, the newest last
    assert len(fetch.urls) == ses.CERT_CACHE_SIZE + 8
    assert len(ses._keys) == ses.CERT_CACHE_SIZE
    assert f"SimpleNotificationService-{ses.CERT_CACHE_SIZE + 7}.pem" in next(reversed(ses._keys))


def test_a_certificate_the_host_says_does_not_exist_is_a_401_remembered_for_a_while() -> None:
    # GIVEN someone who knows the topic, sending forged messages that name a missing file on
    # the SNS host (it answers 404), 50 times the same name and once 30 other names
    missing = urllib.error.HTTPError("https://sns", 404, "Not Found", Message(), None)
    failing = CountingFetch(fail=missing)
    same = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-gone.pem"
    for _ in range(50):
        assert "does not exist" in refused(signed(SigningCertURL=same), failing)
    for i in range(30):
        url = f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x{i}.pem"
        refused(signed(SigningCertURL=url), failing)
    # THEN the same name was fetched once, each other name once
    assert failing.urls.count(same) == 1 and len(failing.urls) == 31
    # AND a genuine message whose certificate is not cached yet still verifies (no budget
    # a stranger could spend to lock real SNS traffic out)
    ses.verify(signed("5a1b-0009"), [TOPIC], CountingFetch(), NOW)
    # AND once remembered long enough, the missing name is asked again
    later = CountingFetch(fail=missing)
    refused(signed(SigningCertURL=same), later, NOW + ses.MISSING_KEPT)
    assert later.urls == [same]
