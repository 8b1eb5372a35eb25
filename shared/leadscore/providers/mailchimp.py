"""Mailchimp audience webhooks: form-encoded, unsigned.

Mailchimp signs nothing, so the URL carries a secret (`?key=`, `LEADSCORE_MAILCHIMP_SECRET`)
compared in constant time. Mailchimp checks the URL with a GET when the webhook is saved
(answered 200), and disables a webhook that answers 410, which we never send.
`subscribe` is a newsletter signup (it also makes the address active again),
`unsubscribe` and `cleaned` change the email status, `profile` updates the profile, and
`upemail` moves the lead to its new address with its history.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from leadscore.domain.events import Event
from leadscore.errors import BadRequest, Unauthorized, ValidationFailed
from leadscore.providers import signing
from leadscore.providers.base import (
    Edges,
    EmailMove,
    Inbound,
    ParseResult,
    Reply,
    WebhookProvider,
)
from leadscore.providers.email_events import canonical

if TYPE_CHECKING:
    from leadscore.config import Settings

SOURCE = "mailchimp"
MERGE_FIELDS = {"FNAME": "first_name", "LNAME": "last_name", "COMPANY": "company",
                "PHONE": "phone", "TITLE": "job_title", "COUNTRY": "country"}


def verify(query_key: str | None, keys: list[str]) -> None:
    signing.require_configured(keys, "LEADSCORE_MAILCHIMP_SECRET")
    if not query_key:
        raise Unauthorized("missing ?key= in the webhook URL")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(query_key.encode(), key.encode())
    if not matched:
        raise Unauthorized("wrong ?key= in the webhook URL")


def _form(raw: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not form-encoded: {exc}") from None


def _fired_at(form: dict[str, str]) -> datetime:
    try:  # Mailchimp sends "2026-11-20 10:00:00" in UTC
        return datetime.strptime(form.get("fired_at", ""), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC)
    except ValueError:
        raise ValidationFailed("fired_at is missing or not 'YYYY-MM-DD HH:MM:SS'", details=[
            {"field": "fired_at", "problem": "expected YYYY-MM-DD HH:MM:SS"}]) from None


def _profile(form: dict[str, str]) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    for name, value in form.items():
        if name.startswith("data[merges][") and name.count("[") == 2:
            tag = name[len("data[merges]["):-1]
            if tag != "EMAIL":
                profile[MERGE_FIELDS.get(tag, tag.lower())] = value
    return profile


def parse(raw: bytes) -> tuple[list[Event], EmailMove | None]:
    form = _form(raw)
    kind, at = form.get("type", ""), _fired_at(form)
    fingerprint = hashlib.sha256(raw).hexdigest()[:32]  # Mailchimp sends no event id
    key = f"{kind}:{form.get('data[list_id]', '')}:{fingerprint}"
    email = form.get("data[email]")
    if kind == "upemail":
        old, new = form.get("data[old_email]"), form.get("data[new_email]")
        if not old or not new:
            raise ValidationFailed("upemail needs data[old_email] and data[new_email]", details=[
                {"field": "data[old_email]/data[new_email]", "problem": "required"}])
        # validate both addresses through the canonical model before moving anything
        canonical("data[new_email]", "activity", new, SOURCE, key, at, activity="email_changed")
        canonical("data[old_email]", "activity", old, SOURCE, key, at, activity="email_changed")
        return [], EmailMove(old, new, at)
    if kind == "subscribe":
        return [canonical("data", "form_submitted", email, SOURCE, key, at,
                          form_kind="newsletter", profile=_profile(form))], None
    if kind == "profile":
        return [canonical("data", "activity", email, SOURCE, key, at,
                          activity="profile_updated", profile=_profile(form))], None
    if kind == "unsubscribe":
        return [canonical("data", "email_unsubscribed", email, SOURCE, key, at)], None
    if kind == "cleaned":  # reason "hard" (bounces) or "abuse" (complaints)
        if form.get("data[reason]") == "abuse":
            return [canonical("data", "email_complained", email, SOURCE, key, at)], None
        return [canonical("data", "email_bounced", email, SOURCE, key, at, hard=True)], None
    return [], None  # campaign and new types: accepted, ignored


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
        events, move = parse(request.raw)
        return ParseResult(events=events, move=move)


PROVIDER = Mailchimp()
