# ruff: noqa: E501  (the meaning table in the docstring has long rows; code lines stay short)
"""An Amazon SES event record as canonical events: one mapping for SNS and EventBridge.

The same record arrives as the JSON string in an SNS `Message` (`/email_webhook/ses`) and as
the `detail` of an EventBridge event (`/email_webhook/ses-eventbridge`). The type is
`eventType` (configuration-set event publishing) or `notificationType` (the older identity
feedback notifications: Bounce, Complaint, Delivery only).

What each documented type means here (sources: docs.aws.amazon.com/ses/latest/dg/
event-publishing-retrieving-sns-contents.html, -examples.html, notification-contents.html,
monitoring-eventbridge.html; django-anymail's tests/test_amazon_ses_webhooks.py):

| type / sub-type | canonical event |
|---|---|
| Delivery | email_delivered, each of `delivery.recipients` |
| Open | email_opened, each of `mail.destination` (SES has no machine-open flag) |
| Click | email_clicked, url = `click.link`, each of `mail.destination` |
| Bounce Permanent (General, NoEmail, Suppressed) | email_bounced hard, each bounced recipient |
| Bounce Permanent OnAccountSuppressionList | acknowledged, ignored (your own suppression list; SES did not try) |
| Bounce Transient (any sub-type), Undetermined | email_bounced soft |
| Complaint | email_complained, each complained recipient |
| Complaint with complaintSubType OnAccountSuppressionList, or feedback type `not-spam` | acknowledged, ignored (nobody complained) |
| Subscription: `unsubscribeAll` turned on | email_unsubscribed (the contact: `mail.destination`) |
| Subscription: `unsubscribeAll` turned off | email_resubscribed |
| Subscription: a topic turned OptIn -> OptOut (or back) | activity `email_topic_unsubscribed` (`email_topic_resubscribed`): one kind of mail, as SendGrid's group unsubscribes; the address stays subscribed to the rest |
| Send, Reject, Rendering Failure, DeliveryDelay, Received (inbound), other | acknowledged, ignored |

Keys come from the record, not the envelope, so a redelivery (SNS retry, EventBridge
retry) and the same record through both routes count once: bounces and complaints by SES's
`feedbackId` and address, the rest by `mail.messageId`, type, address and the event's time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadscore.domain.events import Event
from leadscore.providers.email_events import canonical, iso_time

SOURCE = "ses"
IGNORED_SUBTYPE = "OnAccountSuppressionList"


DOCUMENTED = {"Send", "Delivery", "Open", "Click", "Bounce", "Complaint", "Reject",
              "Rendering Failure", "DeliveryDelay", "Subscription", "Received"}


def record_label(record: dict[str, Any]) -> str:
    """What an ignored record was, in SES's documented words only (log-safe)."""
    kind = record.get("eventType") or record.get("notificationType")
    return kind if isinstance(kind, str) and kind in DOCUMENTED else "unknown"



def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _addresses(items: Any, key: str | None = None) -> list[str]:
    """Strings from a list, or from each item's `key`; anything else is skipped."""
    if not isinstance(items, list):
        return []
    values = [_dict(item).get(key) for item in items] if key else items
    return [v for v in values if isinstance(v, str)]


def _topics(preferences: dict[str, Any], status: str) -> set[str]:
    found = set()
    for item in preferences.get("topicSubscriptionStatus") or []:
        item = _dict(item)
        if item.get("subscriptionStatus") == status and isinstance(item.get("topicName"), str):
            found.add(item["topicName"])
    return found


def _subscription(body: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """(canonical kind, extra) of a contact's preference change, else None."""
    new, old = _dict(body.get("newTopicPreferences")), _dict(body.get("oldTopicPreferences"))
    if new.get("unsubscribeAll") is True and old.get("unsubscribeAll") is not True:
        return "email_unsubscribed", {}
    if new.get("unsubscribeAll") is False and old.get("unsubscribeAll") is True:
        return "email_resubscribed", {}
    # one topic: one kind of mail stops (or starts again), not all of it (an audit: a topic
    # opt-out unsubscribed the address for good, and opting back in was ignored)
    if _topics(new, "OptOut") - _topics(old, "OptOut"):
        return "activity", {"activity": "email_topic_unsubscribed"}
    if _topics(old, "OptOut") - _topics(new, "OptOut"):
        return "activity", {"activity": "email_topic_resubscribed"}
    return None


def record_events(record: dict[str, Any], where: str) -> list[Event]:
    """The canonical events of one SES record; `where` names it in a 422 (`Message`)."""
    kind = record.get("eventType") or record.get("notificationType")
    mail = _dict(record.get("mail"))
    message = str(mail.get("messageId") or "")
    destination = _addresses(mail.get("destination"))
    out: list[Event] = []

    def add(field: str, mapped: str, recipients: list[str], at: datetime | None,
            key: Callable[[str], str], **extra: Any) -> None:
        if at is None:
            return  # no time we can trust: acknowledged, ignored
        for i, email in enumerate(recipients):
            out.append(canonical(f"{where}.{field}.{i}", mapped, email, SOURCE, key(email), at,
                                 **extra))

    def by_message(label: str, at: datetime | None) -> Callable[[str], str]:
        stamp = at.isoformat() if at else ""
        return lambda email: f"{label}:{message}:{email.lower()}:{stamp}"

    if kind == "Delivery":
        body = _dict(record.get("delivery"))
        at = iso_time(body.get("timestamp"))
        add("delivery.recipients", "email_delivered", _addresses(body.get("recipients")), at,
            by_message("delivery", None))
    elif kind == "Open":
        at = iso_time(_dict(record.get("open")).get("timestamp"))
        add("mail.destination", "email_opened", destination, at, by_message("open", at))
    elif kind == "Click":
        body = _dict(record.get("click"))
        at, link = iso_time(body.get("timestamp")), body.get("link")
        add("mail.destination", "email_clicked", destination, at,
            lambda email: f"{by_message('click', at)(email)}:{link}",
            url=link if isinstance(link, str) else None)
    elif kind == "Bounce":
        body = _dict(record.get("bounce"))
        if body.get("bounceSubType") != IGNORED_SUBTYPE:
            feedback = body.get("feedbackId") or message
            add("bounce.bouncedRecipients", "email_bounced",
                _addresses(body.get("bouncedRecipients"), "emailAddress"),
                iso_time(body.get("timestamp")), lambda email: f"bounce:{feedback}:{email.lower()}",
                hard=body.get("bounceType") == "Permanent")
    elif kind == "Complaint":
        body = _dict(record.get("complaint"))
        if (body.get("complaintSubType") != IGNORED_SUBTYPE
                and body.get("complaintFeedbackType") != "not-spam"):
            feedback = body.get("feedbackId") or message
            add("complaint.complainedRecipients", "email_complained",
                _addresses(body.get("complainedRecipients"), "emailAddress"),
                iso_time(body.get("timestamp")),
                lambda email: f"complaint:{feedback}:{email.lower()}")
    elif kind == "Subscription":
        body = _dict(record.get("subscription"))
        change, at = _subscription(body), iso_time(body.get("timestamp"))
        if change:
            add("mail.destination", change[0], destination, at,
                by_message("subscription", at), **change[1])
    return out  # Send, Reject, Rendering Failure, DeliveryDelay, Received, new types
