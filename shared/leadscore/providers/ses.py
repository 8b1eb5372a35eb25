# ruff: noqa: E501  (the meaning table in the docstring has long rows; code lines stay short)
"""Amazon SES events delivered by SNS HTTP(S) notifications (`/email_webhook/ses`).

The SES record is a JSON string in the SNS `Message`; what each record type means is in
`ses_records` (shared with the EventBridge route). Verification, cheapest and local checks
first, so a stranger never makes us fetch anything:

1. the envelope: `Type` is a notification, a subscription or an unsubscribe confirmation,
   and every signed field is a string (a `Subject` may be absent);
2. the `TopicArn` is one of `LEADSCORE_SES_TOPIC_ARNS`;
3. the `Timestamp` is within an hour of our clock, the `Signature` is base64 and the
   `SignatureVersion` is 1 (SHA1withRSA) or 2 (SHA256withRSA);
4. the `SigningCertURL` parses strictly: `https`, host exactly `sns.<region>.amazonaws.com`
   (China `...amazonaws.com.cn`, GovCloud `us-gov-*`), default port, no user info, no query
   or fragment, no backslash or percent escape, a path of one segment ending `.pem`;
5. only then the certificate, fetched from the URL rebuilt from those parts and cached by it
   (at most `CERT_CACHE_SIZE` entries, least recently used dropped). A failed fetch or an
   unreadable certificate is a 401, never a 500;
6. the RSA signature over SNS's canonical string.

| SNS message | answer |
|---|---|
| SubscriptionConfirmation (allowed topic) | confirmed with SNS (`ConfirmSubscription`), 200 |
| UnsubscribeConfirmation | 200, ignored (never re-subscribed) |
| Notification "Successfully validated SNS topic for Amazon SES event publishing." (plain text) | 200, ignored |
| Notification whose `Message` is not an SES record | 200, ignored |
| Notification with an SES record | the events of `ses_records` |
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from leadscore.errors import BadRequest, TransientError, Unauthorized
from leadscore.providers.base import Edges, Inbound, ParseResult, Reply, WebhookProvider
from leadscore.providers.ses_records import SOURCE, record_events, record_label
from leadscore.providers.signing import require_configured
from leadscore.providers.wire import parse_json

if TYPE_CHECKING:
    from leadscore.config import Settings

TOLERANCE_S = 3600
CERT_CACHE_SIZE = 32
MAX_CERT_BYTES = 64 * 1024
REGION = r"(?P<region>(?:[a-z]{2}-gov|[a-z]{2})-[a-z]+-[0-9]{1,2})"
CERT_HOST = re.compile(rf"^sns\.{REGION}\.amazonaws\.com(?P<china>\.cn)?$")
CERT_PATH = re.compile(r"^/[A-Za-z0-9_-]{1,128}\.pem$")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
SIGNED_KEYS["UnsubscribeConfirmation"] = SIGNED_KEYS["SubscriptionConfirmation"]
OPTIONAL_KEYS = {"Subject"}
VALIDATION = "Successfully validated SNS topic"

CertificateFetcher = Callable[[str], bytes]
_keys: OrderedDict[str, Any] = OrderedDict()
_keys_lock = threading.Lock()
# Someone who knows a topic ARN can name any file on an SNS host, so a forged message costs
# one outbound fetch. A certificate the host says does not exist (403/404/410: a forged
# name) is remembered for a while, so naming it again costs nothing and is a 401. Any other
# failure (network, timeout, 5xx) is transient: a 503, which SNS retries (it does not
# retry a 4xx), and nothing is remembered, so a genuine certificate is never locked out.
MISSING_KEPT = timedelta(minutes=10)
MISSING_CACHE_SIZE = 1024
_missing: OrderedDict[str, datetime] = OrderedDict()


def fetch_certificate(url: str) -> bytes:
    """The real fetch: only ever called with a URL rebuilt by `certificate_url`."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - https, checked host
        return bytes(answer.read(MAX_CERT_BYTES + 1))[:MAX_CERT_BYTES + 1]


def certificate_url(url: str) -> str:
    """The canonical form of an acceptable SigningCertURL, or a 401 saying what is wrong.

    Strict on purpose: every spelling a URL parser and an HTTP client could read differently
    (user info, backslashes, escapes, ports, odd hosts) is refused, not normalised."""
    refused = Unauthorized("SigningCertURL must be https://sns.<region>.amazonaws.com/<name>.pem")
    if not url.isascii() or any(c in url for c in "\\%@ \t\r\n") or len(url) > 512:
        raise refused
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused from None
    host = parts.netloc
    match = CERT_HOST.match(host)
    if (parts.scheme != "https" or port is not None or parts.query or parts.fragment
            or url.endswith(("?", "#")) or match is None or not CERT_PATH.match(parts.path)):
        raise refused
    if bool(match.group("china")) != match.group("region").startswith("cn-"):
        raise refused  # China regions live under amazonaws.com.cn, and only they do
    return f"https://{host}{parts.path}"


def _public_key(url: str, fetch: CertificateFetcher, now: datetime) -> Any:
    from cryptography import x509

    with _keys_lock:
        cached = _keys.get(url)
        if cached is not None:
            _keys.move_to_end(url)
            return cached
        seen = _missing.get(url)
        if seen is not None and now - seen < MISSING_KEPT:
            raise Unauthorized("the signing certificate does not exist")
    try:
        pem = fetch(url)
    except Exception as exc:  # noqa: BLE001 - any failed fetch is a 401 or 503, never a 500
        if getattr(exc, "code", None) in (403, 404, 410):  # urllib's HTTPError: no such file
            with _keys_lock:
                _missing[url] = now
                _missing.move_to_end(url)
                while len(_missing) > MISSING_CACHE_SIZE:
                    _missing.popitem(last=False)
            raise Unauthorized("the signing certificate does not exist") from None
        raise TransientError("the signing certificate could not be fetched; retry") from None
    if len(pem) > MAX_CERT_BYTES:
        raise Unauthorized("the signing certificate is too large")
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except (ValueError, TypeError):
        raise Unauthorized("the signing certificate could not be read") from None
    with _keys_lock:
        _keys[url] = key
        _keys.move_to_end(url)
        while len(_keys) > CERT_CACHE_SIZE:
            _keys.popitem(last=False)
    return key


def parse_envelope(raw: bytes) -> dict[str, Any]:
    message = parse_json(raw)
    if not isinstance(message, dict) or message.get("Type") not in TYPES:
        raise BadRequest("not an SNS message: Type must be one of " + ", ".join(TYPES))
    return message


def signing_string(message: dict[str, Any]) -> bytes:
    lines = []
    for key in SIGNED_KEYS[message["Type"]]:
        if key in message and message[key] is not None:
            lines.append(f"{key}\n{message[key]}\n")
    return "".join(lines).encode()


def _check_fields(message: dict[str, Any]) -> None:
    wanted = (*SIGNED_KEYS[message["Type"]], "Signature", "SignatureVersion", "SigningCertURL")
    for key in wanted:
        value = message.get(key)
        if value is None and key in OPTIONAL_KEYS:
            continue
        if not isinstance(value, str) or not value:
            raise Unauthorized(f"SNS message without a valid {key}")


def verify(message: dict[str, Any], topics: list[str], fetch: CertificateFetcher,
           now: datetime) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    topics = require_configured(topics, "LEADSCORE_SES_TOPIC_ARNS")
    if not isinstance(message.get("TopicArn"), str) or message["TopicArn"] not in topics:
        raise Unauthorized("topic is not in LEADSCORE_SES_TOPIC_ARNS")
    _check_fields(message)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(  # noqa: S303
        message["SignatureVersion"])
    if algorithm is None:
        raise Unauthorized("unknown SNS SignatureVersion")
    try:
        if len(message["Timestamp"]) > 40:
            raise ValueError("too long for a timestamp")
        sent = datetime.fromisoformat(message["Timestamp"])
    except ValueError:
        raise Unauthorized("malformed SNS Timestamp") from None
    if sent.tzinfo is None or abs((now - sent).total_seconds()) > TOLERANCE_S:
        raise Unauthorized(f"SNS Timestamp is outside the {TOLERANCE_S} s tolerance")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("SNS Signature is not base64") from None
    key = _public_key(certificate_url(message["SigningCertURL"]), fetch, now)
    try:
        key.verify(signature, signing_string(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, TypeError):
        raise Unauthorized("SNS signature does not match the message") from None


def parse(message: dict[str, Any]) -> ParseResult:
    """The events of a verified notification; a `Message` that is not an SES record (SES's
    "Successfully validated SNS topic" text, anything new) is acknowledged and ignored."""
    text = str(message.get("Message") or "")
    if text.startswith(VALIDATION):
        return ParseResult(ignored=["validation"])
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        record = None
    if not isinstance(record, dict):
        return ParseResult(ignored=["not-an-ses-record"])
    events = record_events(record, "Message")
    return ParseResult(events=events, ignored=[] if events else [record_label(record)])


def confirm_subscription(topic_arn: str, token: str) -> str:
    """Confirm with SNS. ConfirmSubscription needs no AWS credentials: the token proves it."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    region = topic_arn.split(":")[3]
    client = boto3.client("sns", region_name=region, config=Config(signature_version=UNSIGNED))
    answer = client.confirm_subscription(TopicArn=topic_arn, Token=token)
    return str(answer.get("SubscriptionArn", ""))


class Ses(WebhookProvider):
    """SES through SNS; its `secrets` are the accepted topic ARNs."""

    name, function, path = SOURCE, "email_webhook", "/ses"
    settings = ("ses_topic_arns",)
    json_body = False  # SNS posts JSON as text/plain
    # the SNS signature is inside the body; an SNS message is at most 256 KiB, and its
    # JSON escaping in the envelope at most doubles it (a quote becomes \")
    max_body = 640 * 1024

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(parse_envelope(request.raw), list(secrets), edges.fetch_sns_certificate, now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        message = parse_envelope(request.raw)
        if message["Type"] == "SubscriptionConfirmation":
            arn = edges.confirm_sns_subscription(message["TopicArn"],
                                                 str(message.get("Token")))
            return ParseResult(reply=Reply(200, {"status": "ok",
                                                 "message": "subscription confirmed",
                                                 "subscription_arn": arn}))
        if message["Type"] == "UnsubscribeConfirmation":
            return ParseResult(reply=Reply(200, {"status": "ignored",
                                                 "message": "unsubscribed from topic"}))
        return parse(message)


PROVIDER = Ses()
