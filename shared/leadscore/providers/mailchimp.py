"""Mailchimp audience (Marketing) webhooks: form-encoded, one event per request, unsigned.

Mailchimp signs nothing, so the URL carries a secret (`?key=`, `LEADSCORE_MAILCHIMP_SECRET`)
compared in constant time. Mailchimp checks the URL with a GET when the webhook is saved
(answered 200; an empty POST, which one guide describes instead, is acknowledged too), and
disables a webhook that answers 410, which we never send. Mailchimp sends no event id: an
event is known by its type, list and a hash of the body.

What each documented event means here (sources: "Synchronize Audience Data with Webhooks"
[MC-GUIDE], the List Webhooks API [MC-API], the classic webhook documentation's samples
[MC-LEGACY]; see tests/events/email/mailchimp/SOURCES.md):

- `subscribe` -> `form_submitted(form_kind="newsletter", opt_in=True)` with the merge fields
  as profile: a signup; it makes the address active again [MC-GUIDE] (`opt_in`: the status
  becomes active, as after a resubscribe, without a resubscribe's points)
- `unsubscribe`, `reason: manual`, `action: unsub` -> `email_unsubscribed`: the person opted out
  [MC-LEGACY]
- `unsubscribe`, `reason: abuse` -> `email_complained`: unsubscribed because of a spam complaint
  [MC-LEGACY]
- `unsubscribe`, `action: delete` (not abuse) -> acknowledged, ignored: an admin or API deleted
  the member: not the person's opt-out [MC-LEGACY]
- `profile` -> `activity("profile_updated")` with the merge fields: [MC-API]
- `upemail` -> the lead moves from `old_email` to `new_email` with its history: [MC-LEGACY]
- `cleaned`, `reason: hard` (or none) -> `email_bounced(hard=True)`: undeliverable after hard
  bounces [MC-LEGACY]
- `cleaned`, `reason: abuse` -> `email_complained`: cleaned after a complaint [MC-LEGACY]
- `campaign` -> acknowledged, ignored: a campaign was sent or cancelled: no recipient [MC-API]
- any other type, an empty body -> acknowledged, ignored

`fired_at` (`YYYY-MM-DD HH:MM:SS`) is read as UTC (Mailchimp does not say). An event with no
usable address or time is acknowledged and ignored; only a body that is not form-encoded
is refused (400).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadscore.errors import Unauthorized
from leadscore.providers import signing
from leadscore.providers.base import (
    Edges,
    EmailMove,
    Inbound,
    ParseResult,
    Reply,
    WebhookProvider,
)
from leadscore.providers.email_events import Batch
from leadscore.providers.form_body import parse_form

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "mailchimp"
KNOWN = frozenset({"subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign"})
MERGE_FIELDS = {"FNAME": "first_name", "LNAME": "last_name", "COMPANY": "company",
                "PHONE": "phone", "TITLE": "job_title", "COUNTRY": "country"}


def verify(query_key: str | None, keys: list[str]) -> None:
    keys = signing.require_configured(keys, "LEADSCORE_MAILCHIMP_SECRET")
    if not query_key:
        raise Unauthorized("missing ?key= in the webhook URL")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(query_key.encode(), key.encode())
    if not matched:
        raise Unauthorized("wrong ?key= in the webhook URL")


def _form(raw: bytes) -> dict[str, str]:
    return dict(parse_form(raw))


def _fired_at(form: dict[str, str]) -> datetime | None:
    try:  # Mailchimp sends "2026-11-20 10:00:00"; we read it as UTC
        return datetime.strptime(form.get("fired_at", ""), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC)
    except ValueError:
        return None


def _profile(form: dict[str, str]) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    for name, value in form.items():
        if name.startswith("data[merges][") and name.count("[") == 2:
            tag = name[len("data[merges]["):-1]
            if tag != "EMAIL":
                profile[MERGE_FIELDS.get(tag, tag.lower())] = value
    return profile


def _upemail(form: dict[str, str], key: str, at: datetime) -> ParseResult:
    old, new = form.get("data[old_email]"), form.get("data[new_email]")
    # both addresses must be addresses before anything moves
    check = Batch(SOURCE)
    for where, email in (("data[new_email]", new), ("data[old_email]", old)):
        check.add(where, "upemail", "activity", email, key, at, activity="email_changed")
    if check.ignored or not old or not new:
        return ParseResult(ignored=["upemail (invalid)"])
    return ParseResult(move=EmailMove(old, new, at))


def parse(raw: bytes) -> ParseResult:
    form = _form(raw)
    kind, at = form.get("type", ""), _fired_at(form)
    batch = Batch(SOURCE)
    if kind not in KNOWN or at is None:
        batch.ignore(kind or None, "" if kind not in KNOWN else "invalid")
        return batch.result()
    fingerprint = hashlib.sha256(raw).hexdigest()[:32]  # Mailchimp sends no event id
    key = f"{kind}:{form.get('data[list_id]', '')}:{fingerprint}"
    reason, action = form.get("data[reason]", ""), form.get("data[action]", "")
    add = functools.partial(batch.add, "data", kind, email=form.get("data[email]"), key=key,
                            at=at)
    if kind == "upemail":
        return _upemail(form, key, at)
    if kind == "subscribe":
        add("form_submitted", form_kind="newsletter", profile=_profile(form), opt_in=True)
    elif kind == "profile":
        add("activity", activity="profile_updated", profile=_profile(form))
    elif reason == "abuse":  # unsubscribe or cleaned after a spam complaint
        add("email_complained")
    elif kind == "unsubscribe" and action == "delete":
        batch.ignore(kind, "delete")
    elif kind == "unsubscribe":
        add("email_unsubscribed")
    elif kind == "cleaned":
        add("email_bounced", hard=True)
    else:  # campaign: no recipient
        batch.ignore(kind)
    return batch.result()


class Mailchimp(WebhookProvider):
    name, function, path = SOURCE, "email_webhook", "/mailchimp"
    settings = ("mailchimp_secret",)
    methods = frozenset({"POST", "GET"})  # GET: Mailchimp's check when the webhook is saved
    json_body = False  # form-encoded

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.query.get("key"), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        if request.method == "GET":
            return ParseResult(reply=Reply(200, {"status": "ok"}))
        return parse(request.raw)


PROVIDER = Mailchimp()
