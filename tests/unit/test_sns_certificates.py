"""SNS verification is cheap and strict before it is expensive: the topic and the message's
fields are checked before any certificate fetch, the SigningCertURL is parsed strictly, the
certificate cache is keyed by the canonical URL and bounded, and a failed fetch is a 401."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW
from functional.conftest import SNS

from leadscore.errors import Unauthorized
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
        ses._failed_fetches.clear()
    yield
    with ses._keys_lock:
        ses._keys.clear()
        ses._keys.update(saved)
        ses._failed_fetches.clear()


def signed(message_id: str = "5a1b-0001", **override: Any) -> dict[str, Any]:
    message = {"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
               "Message": json.dumps({"eventType": "Send", "mail": {}}),
               "Timestamp": NOW.isoformat().replace("+00:00", "Z")}
    return {**SNS.sign(message), **override}


def refused(message: dict[str, Any], fetch: CountingFetch) -> str:
    with pytest.raises(Unauthorized) as caught:
        ses.verify(message, [TOPIC], fetch, NOW)
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
def test_a_failed_certificate_fetch_is_a_401_and_is_not_cached(failure: Exception) -> None:
    fetch = CountingFetch(fail=failure)
    assert "could not be fetched" in refused(signed(), fetch)
    assert "could not be fetched" in refused(signed(), fetch)
    assert len(fetch.urls) == 2 and ses._keys == {}


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


def test_after_many_failed_fetches_new_certificates_wait_and_cached_ones_still_verify() -> None:
    # GIVEN the real certificate cached, then someone who knows the topic sending forged
    # messages that each name another file on the SNS host (each one a failed fetch)
    ses.verify(signed(), [TOPIC], CountingFetch(), NOW)
    failing = CountingFetch(fail=OSError("404"))
    for i in range(ses.FAILED_FETCHES_ALLOWED + 30):
        url = f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x{i}.pem"
        refused(signed(SigningCertURL=url), failing)
    # THEN only the allowance was fetched, the rest refused without a fetch
    assert len(failing.urls) == ses.FAILED_FETCHES_ALLOWED
    # AND real SNS traffic under the cached certificate still verifies
    ses.verify(signed("5a1b-0009"), [TOPIC], CountingFetch(fail=OSError("unused")), NOW)
    # AND once the window has passed, a new certificate is fetched again
    later = CountingFetch()
    url = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-new.pem"
    ses.verify(signed("5a1b-0010", SigningCertURL=url), [TOPIC], later,
               NOW + ses.FAILED_FETCH_WINDOW)
    assert later.urls == [url]

