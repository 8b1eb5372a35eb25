# ruff: noqa: E501  (the meaning table in the docstring has long rows; code lines stay short)
"""Postmark webhooks: one JSON record per request, `RecordType` says which.

Postmark does not sign webhooks; it sends HTTP basic auth from the credentials in the
webhook URL (`https://user:password@.../email_webhook/postmark`), checked against
`LEADSCORE_POSTMARK_BASIC_AUTH` (`user:password`, several comma-separated). The recipient
is `Recipient` on opens, clicks, deliveries and subscription changes, `Email` on bounces and
spam complaints. A bounce record's meaning is its `Type` string, never `TypeCode` (Postmark's
own examples give SpamComplaint both 512 and 100001).

What each documented record means here (sources: postmarkapp.com/developer/webhooks/*-webhook
and /developer/api/bounce-api#bounce-types; django-anymail's tests/test_postmark_webhooks.py):

| RecordType / Type | canonical event |
|---|---|
| Delivery | email_delivered |
| Open (`FirstOpen` true or false) | email_opened (every open counts; Postmark has no machine-open flag) |
| Click | email_clicked, url = `OriginalLink` |
| SpamComplaint; Bounce SpamComplaint, SpamNotification | email_complained |
| Bounce HardBounce, BadEmailAddress | email_bounced hard |
| Bounce SoftBounce | email_bounced soft |
| Bounce Unsubscribe | email_unsubscribed |
| Bounce Subscribe | acknowledged, ignored (a request by mail, not a confirmed opt-in) |
| Bounce Transient, DnsError (delays), AutoResponder, AddressChange, OpenRelayTest, Unknown, VirusNotification, ChallengeVerification | acknowledged, ignored (not an outcome for the person) |
| Bounce ManuallyDeactivated, Blocked, DMARCPolicy, Unconfirmed, SMTPApiError, InboundError, TemplateRenderingFailed | acknowledged, ignored (the sender's action or problem; the address is not shown bad) |
| SubscriptionChange, SuppressSending true, ManualSuppression by the Recipient | email_unsubscribed |
| SubscriptionChange, ManualSuppression by Customer or Admin | acknowledged, ignored (not the person's act) |
| SubscriptionChange, HardBounce / SpamComplaint | email_bounced hard / email_complained, keyed like the Bounce / SpamComplaint record of the same message so both webhooks count once (broadcast streams send only this one) |
| SubscriptionChange, SuppressSending false | email_resubscribed |
| a record without its address or time (Postmark's real Unsubscribe records may lack both), Inbound, unknown types | acknowledged, ignored |
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore.domain.events import Event
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.basic_auth import verify_basic
from leadscore.providers.email_events import canonical
from leadscore.providers.wire import WireSchema, load_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "postmark"
# Bounce `Type` -> (canonical kind, extra fields); any other Type is acknowledged and ignored.
BOUNCE_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "HardBounce": ("email_bounced", {"hard": True}),
    "BadEmailAddress": ("email_bounced", {"hard": True}),
    "SoftBounce": ("email_bounced", {"hard": False}),
    "Unsubscribe": ("email_unsubscribed", {}),
    "SpamNotification": ("email_complained", {}),
    "SpamComplaint": ("email_complained", {}),
}


RECORD_TYPES = {"Delivery", "Open", "Click", "Bounce", "SpamComplaint", "SubscriptionChange",
                "Inbound"}
DOCUMENTED_BOUNCES = {*BOUNCE_TYPES, "Transient", "DnsError", "AutoResponder", "AddressChange",
                      "OpenRelayTest", "Unknown", "VirusNotification", "ChallengeVerification",
                      "Subscribe", "ManuallyDeactivated", "Blocked", "DMARCPolicy",
                      "Unconfirmed", "SMTPApiError", "InboundError", "TemplateRenderingFailed"}
REASONS = {"HardBounce", "SpamComplaint", "ManualSuppression"}
ORIGINS = {None, "", "Recipient", "Customer", "Admin"}  # who changed a subscription


class RecordSchema(WireSchema):
    RecordType = fields.String(load_default=None, allow_none=True)
    MessageID = fields.String(load_default=None, allow_none=True)
    ID = fields.Raw(load_default=None, allow_none=True)
    Recipient = fields.String(load_default=None, allow_none=True)
    Email = fields.String(load_default=None, allow_none=True)
    Type = fields.String(load_default=None, allow_none=True)
    Origin = fields.String(load_default=None, allow_none=True)
    ReceivedAt = fields.AwareDateTime(load_default=None, allow_none=True)
    DeliveredAt = fields.AwareDateTime(load_default=None, allow_none=True)
    BouncedAt = fields.AwareDateTime(load_default=None, allow_none=True)
    ChangedAt = fields.AwareDateTime(load_default=None, allow_none=True)
    OriginalLink = fields.String(load_default=None, allow_none=True)
    SuppressSending = fields.Boolean(load_default=None, allow_none=True)
    SuppressionReason = fields.String(load_default=None, allow_none=True)


def verify(authorization: str | None, credentials: list[str]) -> None:
    verify_basic(authorization, credentials, "LEADSCORE_POSTMARK_BASIC_AUTH")


def _outcome_key(kind: str, r: dict[str, Any], email: str, fallback: str) -> str:
    """Bounce and complaint keys shared by the Bounce and SubscriptionChange webhooks.

    Both report the same hard bounce or complaint of the same message; keyed by message and
    address they count once, whichever arrives first."""
    if r["MessageID"]:
        return f"{kind}:{r['MessageID']}:{email.lower()}"
    return fallback


def _bounce(r: dict[str, Any]) -> list[Event]:
    mapped = BOUNCE_TYPES.get(r["Type"] or "")
    if mapped is None or not r["Email"] or r["BouncedAt"] is None:
        return []  # not an outcome for the person, or nothing to attach it to
    kind, extra = mapped
    key = f"bounce:{r['ID']}"
    if kind == "email_bounced" and extra["hard"]:
        key = _outcome_key("hard-bounce", r, r["Email"], key)
    elif kind == "email_complained":
        key = _outcome_key("complaint", r, r["Email"], key)
    return [canonical("Email", kind, r["Email"], SOURCE, key, r["BouncedAt"], **extra)]


def _subscription_change(r: dict[str, Any]) -> list[Event]:
    email, at = r["Recipient"], r["ChangedAt"]
    if not email or at is None:
        return []
    key = f"subscription:{email}:{at.isoformat()}:{r['SuppressSending']}"
    reason = r["SuppressionReason"]
    extra: dict[str, Any] = {}
    if not r["SuppressSending"]:
        kind = "email_resubscribed"
    elif reason == "HardBounce":
        kind, extra = "email_bounced", {"hard": True}
        key = _outcome_key("hard-bounce", r, email, key)
    elif reason == "SpamComplaint":
        kind, key = "email_complained", _outcome_key("complaint", r, email, key)
    elif reason == "ManualSuppression" and r["Origin"] in (None, "Recipient"):
        kind = "email_unsubscribed"
    else:
        return []  # suppressed by the sender (Customer, Admin) or a reason not documented
    return [canonical("Recipient", kind, email, SOURCE, key, at, **extra)]


def label(r: dict[str, Any]) -> str:
    """What an ignored record was, in Postmark's documented words only (log-safe)."""
    kind = r["RecordType"] if r["RecordType"] in RECORD_TYPES else "unknown"
    if kind == "Bounce":
        return f"Bounce/{r['Type'] if r['Type'] in DOCUMENTED_BOUNCES else 'unknown'}"
    if kind == "SubscriptionChange":
        reason = r["SuppressionReason"] if r["SuppressionReason"] in REASONS else "other"
        origin = r["Origin"] if r["Origin"] in ORIGINS else "other"  # never free text
        return f"SubscriptionChange/{reason}/{origin or 'none'}"
    return kind


def parse(raw: bytes) -> ParseResult:
    r: dict[str, Any] = load_json(schema_for(RecordSchema), raw)
    events = record_events(r)
    return ParseResult(events=events, ignored=[] if events else [label(r)])


def record_events(r: dict[str, Any]) -> list[Event]:
    kind, msg = r["RecordType"], r["MessageID"] or ""
    if kind == "Open" and r["ReceivedAt"] and r["Recipient"]:
        return [canonical("Recipient", "email_opened", r["Recipient"], SOURCE,
                          f"open:{msg}:{r['ReceivedAt'].isoformat()}", r["ReceivedAt"])]
    if kind == "Click" and r["ReceivedAt"] and r["Recipient"]:
        return [canonical("Recipient", "email_clicked", r["Recipient"], SOURCE,
                          f"click:{msg}:{r['ReceivedAt'].isoformat()}:{r['OriginalLink']}",
                          r["ReceivedAt"], url=r["OriginalLink"])]
    if kind == "Delivery" and r["DeliveredAt"] and r["Recipient"]:
        return [canonical("Recipient", "email_delivered", r["Recipient"], SOURCE,
                          f"delivery:{msg}:{r['Recipient']}", r["DeliveredAt"])]
    if kind == "Bounce":
        return _bounce(r)
    if kind == "SpamComplaint":
        return _bounce({**r, "Type": "SpamComplaint"})
    if kind == "SubscriptionChange":
        return _subscription_change(r)
    return []  # Inbound, new record types: acknowledged, ignored


class Postmark(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/postmark"
    settings = ("postmark_basic_auth",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.headers.get("authorization"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return parse(request.raw)


PROVIDER = Postmark()
