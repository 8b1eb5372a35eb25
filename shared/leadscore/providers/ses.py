"""Amazon SES events delivered by SNS HTTP(S) notifications.

The SES event is a JSON string in the SNS `Message`. We verify the SNS signature
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with the certificate at
`SigningCertURL`, which must be an HTTPS URL on `sns.<region>.amazonaws.com` (fetched once
per process and cached); accept only topics listed in `LEADSCORE_SES_TOPIC_ARNS`; and treat a
`Timestamp` more than an hour from our clock as stale. Events are de-duplicated on the SNS
`MessageId` (and the recipient: one bounce can name several).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from leadscore.domain.events import Event
from leadscore.errors import BadRequest, Unauthorized, ValidationFailed
from leadscore.providers.base import Edges, Inbound, ParseResult, Reply, WebhookProvider
from leadscore.providers.email_events import canonical
from leadscore.providers.wire import parse_json

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "ses"
TOLERANCE_S = 3600
CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
SIGNED_KEYS["UnsubscribeConfirmation"] = SIGNED_KEYS["SubscriptionConfirmation"]

CertificateFetcher = Callable[[str], bytes]
_keys: dict[str, Any] = {}
_keys_lock = threading.Lock()


def fetch_certificate(url: str) -> bytes:
    """The real fetch: only ever called with a URL that passed `check_certificate_url`."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - https, checked host
        return bytes(answer.read())


def check_certificate_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme != "https" or not CERT_HOST.match(parsed.hostname or "") or (
            not parsed.path.endswith(".pem")):
        raise Unauthorized("SigningCertURL must be an https .pem URL on sns.<region>.amazonaws.com")


def _public_key(url: str, fetch: CertificateFetcher) -> Any:
    from cryptography import x509

    with _keys_lock:
        cached = _keys.get(url)
    if cached is None:
        try:
            cached = x509.load_pem_x509_certificate(fetch(url)).public_key()
        except ValueError:
            raise Unauthorized("the signing certificate could not be read") from None
        with _keys_lock:
            _keys[url] = cached
    return cached


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


def verify(message: dict[str, Any], topics: list[str], fetch: CertificateFetcher,
           now: datetime) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    if not topics:
        raise Unauthorized("this endpoint is not configured: set LEADSCORE_SES_TOPIC_ARNS")
    if message.get("TopicArn") not in topics:
        raise Unauthorized("topic is not in LEADSCORE_SES_TOPIC_ARNS")
    version = message.get("SignatureVersion")
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(version))  # noqa: S303
    if algorithm is None or not message.get("Signature") or not message.get("SigningCertURL"):
        raise Unauthorized("missing or unknown SNS signature")
    try:
        sent = datetime.fromisoformat(str(message.get("Timestamp")))
    except ValueError:
        raise Unauthorized("missing or malformed SNS Timestamp") from None
    if sent.tzinfo is None or abs((now - sent).total_seconds()) > TOLERANCE_S:
        raise Unauthorized(f"SNS Timestamp is outside the {TOLERANCE_S} s tolerance")
    check_certificate_url(str(message["SigningCertURL"]))
    try:
        signature = base64.b64decode(str(message["Signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("SNS Signature is not base64") from None
    key = _public_key(str(message["SigningCertURL"]), fetch)
    try:
        key.verify(signature, signing_string(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, TypeError):
        raise Unauthorized("SNS signature does not match the message") from None


def _ses_event(message: dict[str, Any]) -> dict[str, Any]:
    try:
        event = json.loads(str(message.get("Message") or ""))
    except (json.JSONDecodeError, RecursionError):
        raise ValidationFailed("Message is not an SES event (not JSON)", details=[
            {"field": "Message", "problem": "not JSON"}]) from None
    if not isinstance(event, dict) or not isinstance(event.get("mail"), dict):
        raise ValidationFailed("Message is not an SES event", details=[
            {"field": "Message.mail", "problem": "required"}])
    return event


def _time(value: Any, where: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(f"{where} is not a timestamp", details=[
            {"field": where, "problem": "not an ISO 8601 timestamp"}]) from None


def parse(message: dict[str, Any]) -> list[Event]:
    event = _ses_event(message)
    kind = event.get("eventType") or event.get("notificationType")
    mail, msg_id = event["mail"], str(message.get("MessageId"))
    destination = [d for d in mail.get("destination", []) if isinstance(d, str)]
    out: list[Event] = []

    def add(where: str, mapped: str, recipients: list[Any], at: datetime, **extra: Any) -> None:
        for i, email in enumerate(recipients):
            out.append(canonical(f"{where}.{i}", mapped, email, SOURCE, f"{msg_id}:{email}", at,
                                 **extra))

    if kind == "Delivery":
        body = event.get("delivery", {})
        add("Message.delivery.recipients", "email_delivered", body.get("recipients", []),
            _time(body.get("timestamp"), "Message.delivery.timestamp"))
    elif kind == "Open":
        body = event.get("open", {})
        add("Message.mail.destination", "email_opened", destination,
            _time(body.get("timestamp"), "Message.open.timestamp"))
    elif kind == "Click":
        body = event.get("click", {})
        add("Message.mail.destination", "email_clicked", destination,
            _time(body.get("timestamp"), "Message.click.timestamp"), url=body.get("link"))
    elif kind == "Bounce":
        body = event.get("bounce", {})
        add("Message.bounce.bouncedRecipients", "email_bounced",
            [r.get("emailAddress") for r in body.get("bouncedRecipients", [])],
            _time(body.get("timestamp"), "Message.bounce.timestamp"),
            hard=body.get("bounceType") == "Permanent")
    elif kind == "Complaint":
        body = event.get("complaint", {})
        add("Message.complaint.complainedRecipients", "email_complained",
            [r.get("emailAddress") for r in body.get("complainedRecipients", [])],
            _time(body.get("timestamp"), "Message.complaint.timestamp"))
    return out  # Send, Reject, DeliveryDelay and new types: accepted, ignored


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
        return ParseResult(events=parse(message))


PROVIDER = Ses()
