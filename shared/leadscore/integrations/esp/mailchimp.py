"""Mailchimp Marketing API v3: merge fields, stage and band tags, the clean-up action.

On Mailchimp's official client, `mailchimp-marketing` (the `esp` extra), imported when the
first call is made. Its `api_client.host` is the API's base URL, so
`LEADSCORE_MAILCHIMP_API_URL` points it at the local fake in tests. The client raises
`ApiClientError(text, status_code)` for a refusal and returns the raw response when the
answer has no body; both map to our errors here (it sends no Retry-After: backoff
applies). Calls, from Mailchimp's API reference:

- auth: HTTP Basic, any user name, the API key as password; the data centre is the key's
  suffix (`...-us6` -> https://us6.api.mailchimp.com/3.0), `LEADSCORE_MAILCHIMP_API_URL`
  overrides it (the local fake in tests).
- setup: GET/POST /lists/{list_id}/merge-fields (tags of at most 10 characters; types
  number, text and dropdown with `options.choices`).
- fields: POST /lists/{list_id} "batch subscribe or update" with `update_existing`, at
  most 500 members, `status_if_new` for people not on the audience yet (default
  `transactional`: never subscribes anyone; existing members keep their status);
  per-member refusals come back in `errors[]`.
- tags: POST /lists/{list_id}/members/{subscriber_hash}/tags with active/inactive;
  the subscriber hash is the MD5 of the lower-cased email.
- clean-up: `archive` (DELETE member), `unsubscribe` (PATCH status), or `tag`
  (`leadscore-non-opener`). The way back: an archived member is re-added by PUT with
  `status_if_new: subscribed` (their status before the archive); an unsubscribed one only
  by their own resubscribe (Mailchimp's rule), so the sync leaves that to them; the tag
  goes inactive.
- limits: 10 concurrent connections per user (429 above that): a sweep makes one call at
  a time. 429 and 5xx are retryable; Mailchimp sends no Retry-After, so backoff applies.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from leadscore.domain.segments import Segments
from leadscore.domain.state import STAGES
from leadscore.integrations.esp.common import (
    answer_of,
    client_module,
    member_values,
    of_the_member,
    raise_for,
)
from leadscore.integrations.esp.port import (
    NON_OPENER_TAG,
    MemberChange,
    SetupReport,
    stage_tag,
)
from leadscore.integrations.ports import BatchResult, PermanentDelivery, RetryableDelivery

MAX_BATCH = 500  # members per batch subscribe (Mailchimp's documented limit)
MERGE_FIELDS: list[dict[str, Any]] = [
    {"tag": "LS_SCORE", "name": "Lead score", "type": "number"},
    {"tag": "LS_FIT", "name": "Lead fit", "type": "number"},
    {"tag": "LS_ENGAGE", "name": "Lead engagement", "type": "number"},
    {"tag": "LS_STAGE", "name": "Lead stage", "type": "dropdown",
     "options": {"choices": list(STAGES)}},
    {"tag": "LS_GRADE", "name": "Lead grade", "type": "text"},
    {"tag": "LS_BAND", "name": "Lead segment", "type": "text"},
    {"tag": "LS_FREQ", "name": "Email frequency", "type": "text"},
]
REMOVALS = ("archive", "unsubscribe", "tag")


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def api_url_for(api_key: str) -> str:
    dc = api_key.rsplit("-", 1)[-1] if "-" in api_key else "us1"
    return f"https://{dc}.api.mailchimp.com/3.0"


def merge_values(change: MemberChange) -> dict[str, Any]:
    return member_values(change, [f["tag"] for f in MERGE_FIELDS])


@functools.cache
def _no_redirects(api_class: Any) -> Any:
    """The SDK's ApiClient, its one request never following a redirect: the SDK calls
    `requests`, which follows them (a 303 of a POST becomes a GET whose answer the SDK
    would take for the call's). The same request otherwise: HTTP Basic with the key."""

    class NoRedirectApi(api_class):  # type: ignore[misc]
        def request(self, method: str, url: str, query_params: Any = None,
                    headers: Any = None, body: Any = None) -> Any:
            import requests

            data = None if method in ("GET", "HEAD", "OPTIONS", "DELETE") else json.dumps(body)
            answer = requests.request(method, url, params=query_params, data=data,
                                      headers=headers, auth=("user", self.api_key),
                                      timeout=self.timeout, allow_redirects=False)
            if 300 <= answer.status_code < 400:  # the SDK would return its body as data
                raise RetryableDelivery(f"mailchimp: redirect {answer.status_code}, "
                                        "not followed", status=answer.status_code)
            return answer

    return NoRedirectApi


class MailchimpSync:
    name = "mailchimp"
    max_batch = MAX_BATCH

    def __init__(self, api_key: str, list_id: str, *, api_url: str = "",
                 removal: str = "tag", status_if_new: str = "transactional",
                 segments: Segments | None = None, timeout_s: float = 20) -> None:
        if removal not in REMOVALS:
            raise ValueError(f"mailchimp removal must be one of {', '.join(REMOVALS)}")
        self._key = api_key
        self._api = (api_url or api_url_for(api_key)).rstrip("/")
        self._list = list_id
        self._audience: bool | None = None  # whether the audience exists (asked per batch)
        self.removal = removal
        self._status_if_new = status_if_new
        self._band_tags = sorted({b.target("mailchimp") or "" for b in
                                  (segments or Segments()).bands} - {""})
        self._timeout = timeout_s
        self._client: Any = None

    @property
    def _lists(self) -> Any:
        """The client's Lists API (audiences), made on first use; HTTP Basic with the key."""
        if self._client is None:
            mailchimp = client_module("mailchimp_marketing", "mailchimp-marketing")
            self._client = mailchimp.Client({"api_key": self._key, "timeout": self._timeout})
            self._client.api_client.host = self._api
            api: Any = self._client.api_client.__class__
            self._client.api_client.__class__ = _no_redirects(api)
        return self._client.lists

    def _call(self, what: str, method: str, *args: Any, missing_ok: bool = False,
              **kwargs: Any) -> Any:
        """One client call; its refusals become RetryableDelivery/PermanentDelivery."""
        from mailchimp_marketing.api_client import ApiClientError

        try:
            result = getattr(self._lists, method)(self._list, *args, **kwargs)
        except ApiClientError as exc:
            if isinstance(exc.text, RetryableDelivery):  # a redirect (NoRedirectApi)
                raise exc.text from None
            if isinstance(exc.text, Exception):  # no answer: connection refused, timeout
                raise RetryableDelivery(f"{what}: network") from None
            if missing_ok and exc.status_code == 404:
                return None
            raise_for(answer_of(exc.status_code, None, exc.text), what)
        status = getattr(result, "status_code", 200)  # an answer without a body comes raw
        if status >= 400 and not (missing_ok and status == 404):
            raise_for(answer_of(status, result.headers, result.content), what)
        return result

    def setup(self) -> SetupReport:
        report = SetupReport()
        answer = self._call("mailchimp merge fields", "get_list_merge_fields", count=1000)
        have = {f.get("tag") for f in (answer or {}).get("merge_fields", [])}
        for field in MERGE_FIELDS:
            if field["tag"] in have:
                report.existing.append(field["tag"])
                continue
            self._call(f"mailchimp merge field {field['tag']}", "add_list_merge_field", field)
            report.created.append(field["tag"])
        return report

    def _audience_found(self) -> bool:
        if self._audience is None:
            self._audience = self._call("mailchimp audience", "get_list",
                                        missing_ok=True) is not None
        return self._audience

    def push(self, changes: Sequence[MemberChange]) -> BatchResult:
        if len(changes) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} members per batch")
        self._audience = None  # unknown until a member's call answers 404
        archive = self.removal == "archive"
        rejected: dict[str, str] = {}
        for change in changes:  # back from the archive before fields and tags are set
            if archive and change.restoring:
                self._each(rejected, change, lambda c: self._member(
                    "set_list_member", c, {"email_address": c.after.email,
                                           "status_if_new": "subscribed"}))
        live = [c for c in changes if not (archive and c.after.removed)
                and c.after.lead_id not in rejected]
        rejected |= self._batch_fields([c for c in live if c.fields_changed or c.restoring])
        for change in live:  # a score that moved within its stage and band needs no tag call
            if change.tags_changed or change.removing or change.restoring:
                self._each(rejected, change, self._tags)
        for change in changes:
            if change.removing:
                self._each(rejected, change, self._remove)
        return BatchResult(rejected=rejected)

    def _each(self, rejected: dict[str, str], change: MemberChange,
              call: Callable[[MemberChange], None]) -> None:
        """One member's call; a refusal for good of that member rejects it only (a 429 or
        5xx, or a refused key, audience or URL, still fails the whole batch, which is sent
        again). A 404 names the member when the audience is there (a contact deleted in
        Mailchimp): asked once per batch, at the first 404."""
        if change.after.lead_id in rejected:
            return
        try:
            call(change)
        except PermanentDelivery as exc:
            if not (of_the_member(exc) or (exc.status == 404 and self._audience_found())):
                raise
            rejected[change.after.lead_id] = exc.reason

    def _batch_fields(self, changes: list[MemberChange]) -> dict[str, str]:
        if not changes:
            return {}
        members = [{"email_address": c.after.email, "status_if_new": self._status_if_new,
                    "merge_fields": merge_values(c)} for c in changes]
        answer = self._call("mailchimp batch update", "batch_list_members",
                            {"members": members, "update_existing": True})
        by_email = {c.after.email.lower(): c.after.lead_id for c in changes}
        rejected: dict[str, str] = {}
        for error in (answer if isinstance(answer, dict) else {}).get("errors") or []:
            lead_id = by_email.get(str(error.get("email_address", "")).lower())
            if lead_id:
                rejected[lead_id] = str(error.get("error_code") or "refused")[:80]
        return rejected

    def _tags(self, change: MemberChange) -> None:
        m = change.after
        wanted = {stage_tag(m.stage), *([m.band_target] if m.band_target else [])}
        if self.removal == "tag" and m.removed:
            wanted.add(NON_OPENER_TAG)
        known = [stage_tag(s) for s in STAGES] + self._band_tags + (
            [NON_OPENER_TAG] if self.removal == "tag" else [])
        tags = [{"name": t, "status": "active" if t in wanted else "inactive"}
                for t in sorted(set(known) | wanted)]
        self._member("update_list_member_tags", change, {"tags": tags})

    def _remove(self, change: MemberChange) -> None:
        if self.removal == "archive":
            self._member("delete_list_member", change, missing_ok=True)
        elif self.removal == "unsubscribe":
            self._member("update_list_member", change, {"status": "unsubscribed"},
                         missing_ok=True)
        # "tag": the tag call above set leadscore-non-opener

    def _member(self, method: str, change: MemberChange, *body: Any,
                missing_ok: bool = False) -> None:
        """One call on one member, addressed by the MD5 of the lower-cased email."""
        self._call(f"mailchimp {method}", method, subscriber_hash(change.after.email), *body,
                   missing_ok=missing_ok)


def from_settings(settings: Any, segments: Segments) -> MailchimpSync | None:
    key = settings.mailchimp_api_key.get_secret_value()
    if not key or not settings.mailchimp_list_id:
        return None
    return MailchimpSync(key, settings.mailchimp_list_id, api_url=settings.mailchimp_api_url,
                         removal=settings.mailchimp_removal,
                         status_if_new=settings.mailchimp_status_if_new, segments=segments)
