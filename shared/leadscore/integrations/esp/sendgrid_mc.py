"""SendGrid Marketing Campaigns: custom fields, a list per stage and band, the clean-up.

On SendGrid's official client, `sendgrid` (the `esp` extra: `SendGridAPIClient` over
python-http-client's fluent paths, `client.marketing.contacts.put(...)`), imported when
the first call is made; its `host` is `LEADSCORE_SENDGRID_API_URL` (the local fake in
tests). Its refusals are `HTTPError`s carrying status, headers and body, mapped to our two
errors here; its debug log (which would print request bodies, with emails) is kept off.
From SendGrid's v3 reference:

- auth: `Authorization: Bearer <key>`; base URL `LEADSCORE_SENDGRID_API_URL`.
- setup: GET/POST /v3/marketing/field_definitions (`field_type` Number or Text); the
  upsert names custom fields by their id (`e1_N`), so the ids are read once per sweep.
- fields and lists: PUT /v3/marketing/contacts (`list_ids`, `contacts`) is asynchronous:
  it answers 202 with a `job_id`, and GET /v3/marketing/contacts/imports/{id} says when it
  is `completed`. A batch counts as delivered only then; a job still pending after the
  polls is retryable (resending the same upsert is harmless), an errored one is refused.
- `list_ids` only adds: leaving the old stage's list is DELETE
  /v3/marketing/lists/{id}/contacts?contact_ids=..., with ids from POST
  /v3/marketing/contacts/search/emails.
- clean-up: `lists` takes the contact off every leadscore list; `suppress` adds the email
  to the unsubscribe group `LEADSCORE_SENDGRID_SUPPRESSION_GROUP` (POST
  /v3/asm/groups/{id}/suppressions); the way back re-adds the lists or deletes the
  suppression.
- 429 carries X-RateLimit-Reset (a Unix time): retryable after it; 5xx retryable.
"""

from __future__ import annotations

import functools
import logging
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from leadscore.domain.segments import Segments
from leadscore.integrations.esp.common import (
    answer_of,
    checked_removal,
    client_module,
    member_values,
    raise_for,
)
from leadscore.integrations.esp.port import MemberChange, SetupReport
from leadscore.integrations.ports import BatchResult, PermanentDelivery, RetryableDelivery

MAX_BATCH = 1000  # far under the documented 30,000 contacts / 6 MB per upsert
FIELDS = {"ls_score": "Number", "ls_fit": "Number", "ls_engagement": "Number",
          "ls_stage": "Text", "ls_grade": "Text", "ls_segment": "Text", "ls_frequency": "Text"}
REMOVALS = ("lists", "suppress")


def field_values(change: MemberChange) -> dict[str, Any]:
    return member_values(change, list(FIELDS))


@functools.cache
def _no_redirects(client_class: Any) -> Any:
    """python_http_client's Client on an opener that never follows a redirect (urllib's
    default one carried the `Authorization: Bearer` key to wherever a 302 pointed, and took
    that host's answer). Its child clients (`client._("marketing")`) are made the same."""
    from leadscore.integrations.http_out import OPENER

    class NoRedirectClient(client_class):  # type: ignore[misc]
        def _build_client(self, name: Any = None) -> Any:
            child = super()._build_client(name)
            child.__class__ = NoRedirectClient
            return child

        def _make_request(self, opener: Any, request: Any, timeout: Any = None) -> Any:
            return super()._make_request(OPENER, request, timeout)

    return NoRedirectClient


class SendGridSync:
    name = "sendgrid"
    max_batch = MAX_BATCH

    def __init__(self, api_key: str, *, api_url: str = "https://api.sendgrid.com",
                 stage_lists: dict[str, str] | None = None, removal: str = "lists",
                 suppression_group: int | None = None, polls: int = 10,
                 poll_wait_s: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 timeout_s: float = 20) -> None:
        self.removal = checked_removal("sendgrid", removal, REMOVALS, needs="suppress",
                                       target=suppression_group,
                                       setting="LEADSCORE_SENDGRID_SUPPRESSION_GROUP")
        self._key = api_key
        self._api = api_url.rstrip("/")
        self._stage_lists = dict(stage_lists or {})
        self._band_lists: set[str] = set()
        self._group = suppression_group
        self._polls, self._poll_wait, self._sleep = polls, poll_wait_s, sleep
        self._timeout = timeout_s
        self._client: Any = None

    def with_bands(self, segments: Segments) -> SendGridSync:
        self._band_lists = {t for b in segments.bands if (t := b.target("sendgrid"))}
        return self

    def _v3(self) -> Any:
        """The client's root (`/v3`), made on first use; Bearer auth with the key."""
        if self._client is None:
            sendgrid = client_module("sendgrid", "sendgrid")
            logging.getLogger("python_http_client").setLevel(logging.INFO)
            self._client = sendgrid.SendGridAPIClient(api_key=self._key, host=self._api).client
            self._client.timeout = self._timeout
            client: Any = self._client.__class__
            self._client.__class__ = _no_redirects(client)
        return self._client

    def _call(self, what: str, path: str, method: str, *, missing_ok: bool = False,
              **kwargs: Any) -> Any:
        """`client.<path segments>.<method>(...)`, e.g. ("marketing/contacts", "put"): the
        answer's JSON, or None for a 404 that `missing_ok` allows."""
        from python_http_client.exceptions import HTTPError

        endpoint = self._v3()
        for segment in path.split("/"):
            endpoint = endpoint._(segment)
        try:
            answer = getattr(endpoint, method)(**kwargs)
        except HTTPError as exc:
            if missing_ok and exc.status_code == 404:
                return None
            raise_for(answer_of(exc.status_code, exc.headers, exc.body), what)
        except OSError as exc:  # urllib's URLError, timeouts, refused connections
            raise RetryableDelivery(f"{what}: network {type(exc).__name__}") from None
        return answer.to_dict if answer.body else {}

    def _field_ids(self) -> dict[str, str]:
        answer = self._call("sendgrid field definitions",
                            "marketing/field_definitions", "get")
        return {f["name"]: f["id"] for f in (answer or {}).get("custom_fields", [])}

    def setup(self) -> SetupReport:
        report = SetupReport()
        have = self._field_ids()
        for name, kind in FIELDS.items():
            if name in have:
                report.existing.append(name)
                continue
            self._call(f"sendgrid field {name}", "marketing/field_definitions",
                       "post",
                       request_body={"name": name, "field_type": kind})
            report.created.append(name)
        return report

    def _lists(self, change: MemberChange) -> tuple[set[str], set[str]]:
        """(lists the contact should be on, leadscore lists it should leave)."""
        m = change.after
        managed = set(self._stage_lists.values()) | self._band_lists
        wanted: set[str] = set()
        if not (m.removed and self.removal == "lists"):
            if m.stage in self._stage_lists:
                wanted.add(self._stage_lists[m.stage])
            if m.band_target:
                wanted.add(m.band_target)
        moved = change.before is not None and (change.tags_changed or change.removing)
        return wanted, (managed - wanted) if moved else set()

    def push(self, changes: Sequence[MemberChange]) -> BatchResult:
        if len(changes) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} contacts per batch")
        ids = self._field_ids()
        missing = sorted(set(FIELDS) - set(ids))
        if missing:
            raise PermanentDelivery(f"sendgrid: run `leadscore esp setup sendgrid` ({missing[0]})")
        by_lists: dict[tuple[str, ...], list[MemberChange]] = defaultdict(list)
        leaving: dict[str, list[str]] = defaultdict(list)  # list id -> emails
        for change in changes:
            wanted, leave = self._lists(change)
            by_lists[tuple(sorted(wanted))].append(change)
            for list_id in leave:
                leaving[list_id].append(change.after.email)
        for list_ids, group in by_lists.items():
            contacts = [{"email": c.after.email, "custom_fields": {
                ids[k]: v for k, v in field_values(c).items()}} for c in group]
            body: dict[str, Any] = {"contacts": contacts}
            if list_ids:
                body["list_ids"] = list(list_ids)
            self._wait_for(self._call("sendgrid upsert", "marketing/contacts", "put",
                                      request_body=body))
        self._leave(leaving)
        self._suppressions(changes)
        return BatchResult()

    def _wait_for(self, answer: dict[str, Any]) -> None:
        """The upsert is a job (202 with its id): delivered once SendGrid says `completed`."""
        job = str(answer.get("job_id") or "")
        for _ in range(self._polls):
            status = self._call("sendgrid import status",
                                f"marketing/contacts/imports/{job}", "get")
            state = (status or {}).get("status")
            if state == "completed":
                return
            if state in ("errored", "failed"):  # the data was refused, as a 422 would:
                # the batch is halved until the contact that spoils it stands alone
                raise PermanentDelivery(f"sendgrid upsert job {state}", 422)
            self._sleep(self._poll_wait)
        raise RetryableDelivery("sendgrid upsert job still pending", 60)

    def _leave(self, leaving: dict[str, list[str]]) -> None:
        emails = sorted({e for group in leaving.values() for e in group})
        if not emails:
            return
        found = self._call("sendgrid search", "marketing/contacts/search/emails",
                           "post",
                           missing_ok=True, request_body={"emails": emails})
        if found is None:  # 404: none of them exists, nothing to leave
            return
        result = found.get("result") or {}
        contact_id = {e.lower(): (r.get("contact") or {}).get("id") for e, r in result.items()}
        for list_id, group in leaving.items():
            known = sorted({i for e in group if (i := contact_id.get(e.lower()))})
            if known:
                self._call("sendgrid list removal",
                           f"marketing/lists/{list_id}/contacts", "delete",
                           query_params={"contact_ids": ",".join(known)})

    def _suppressions(self, changes: Sequence[MemberChange]) -> None:
        if self.removal != "suppress":
            return
        adding = [c.after.email for c in changes if c.removing]
        if adding:
            self._call("sendgrid suppression",
                       f"asm/groups/{self._group}/suppressions", "post",
                       request_body={"recipient_emails": adding})
        for change in changes:
            if change.restoring:
                email = urllib.parse.quote(change.after.email, safe="")
                self._call("sendgrid suppression removal",
                           f"asm/groups/{self._group}/suppressions/{email}", "delete",
                           missing_ok=True)


def from_settings(settings: Any, segments: Segments) -> SendGridSync | None:
    key = settings.sendgrid_api_key.get_secret_value()
    if not key:
        return None
    return SendGridSync(key, api_url=settings.sendgrid_api_url,
                        stage_lists=settings.sendgrid_stage_lists,
                        removal=settings.sendgrid_removal,
                        suppression_group=settings.sendgrid_suppression_group,
                        poll_wait_s=settings.sendgrid_poll_wait_s).with_bands(segments)
