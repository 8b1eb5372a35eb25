"""Brevo (API v3): contact attributes, a list per stage and band, the clean-up action.

On Brevo's official SDK, `brevo-python` (the `esp` extra; `sib-api-v3-sdk` is its
predecessor, unmaintained since 2023), imported when the first call is made: `base_url` is
`LEADSCORE_BREVO_API_URL` (the local fake in tests), and its own retries are off
(`max_retries=0`) so that 429 and 5xx come to the sweep's one backoff, read from the
SDK's `ApiError` (status, headers, body). From Brevo's API reference:

- auth: the `api-key` header; base URL `LEADSCORE_BREVO_API_URL` (the fake in tests).
- setup: GET /contacts/attributes, POST /contacts/attributes/normal/{name} with `type`
  `float` or `text`.
- a contact never synced is created (or updated) by POST /contacts with `updateEnabled`;
  then every change in one POST /contacts/batch (at most 100 contacts: attributes,
  `listIds`, `unlinkListIds`, `emailBlacklisted`).
- stage lists: `LEADSCORE_BREVO_STAGE_LISTS` ({"mql": 12, ...}); band lists: the rules'
  `segments` targets. The clean-up: `list` moves the contact from those lists to
  `LEADSCORE_BREVO_NON_OPENER_LIST`; `blocklist` sets `emailBlacklisted`. The way back
  undoes it.
- 429 carries `x-sib-ratelimit-reset` (seconds until the window resets): retryable after
  that wait; 5xx retryable; other refusals are for good.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from leadscore.domain.segments import Segments
from leadscore.integrations.esp.common import (
    answer_of,
    checked_removal,
    client_module,
    member_values,
    of_the_member,
    raise_for,
)
from leadscore.integrations.esp.port import MemberChange, SetupReport
from leadscore.integrations.ports import BatchResult, PermanentDelivery, RetryableDelivery

MAX_BATCH = 100  # contacts per POST /contacts/batch
ATTRIBUTES = {"LS_SCORE": "float", "LS_FIT": "float", "LS_ENGAGEMENT": "float",
              "LS_STAGE": "text", "LS_GRADE": "text", "LS_SEGMENT": "text",
              "LS_FREQUENCY": "text"}
REMOVALS = ("list", "blocklist")


def attributes(change: MemberChange) -> dict[str, Any]:
    return member_values(change, list(ATTRIBUTES))


@functools.lru_cache(maxsize=4)
def _sdk(api_key: str, base_url: str, timeout_s: float) -> Any:
    """One SDK client per key and URL for the process: making one loads the CA bundle
    (~80 ms), and each sweep builds its `BrevoSync` anew."""
    brevo = client_module("brevo", "brevo-python")
    # never follow a redirect: httpx would carry the `api-key` header to wherever it points
    return brevo.Brevo(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0,
                       follow_redirects=False)


class BrevoSync:
    name = "brevo"
    max_batch = MAX_BATCH

    def __init__(self, api_key: str, *, api_url: str = "https://api.brevo.com/v3",
                 stage_lists: dict[str, int] | None = None, removal: str = "list",
                 non_opener_list: int | None = None, timeout_s: float = 20) -> None:
        self.removal = checked_removal("brevo", removal, REMOVALS, needs="list",
                                       target=non_opener_list,
                                       setting="LEADSCORE_BREVO_NON_OPENER_LIST")
        self._key = api_key
        self._api = api_url.rstrip("/")
        self._stage_lists = dict(stage_lists or {})
        self._non_opener_list = non_opener_list
        self._timeout = timeout_s
        self._band_lists: set[int] = set()
        self._client: Any = None
        # contacts this sweep created (each sweep builds its BrevoSync anew): a batch halved
        # after Brevo refused it is pushed again, and must not create them once more
        self._created: set[str] = set()

    def with_bands(self, segments: Segments) -> BrevoSync:
        self._band_lists = {int(t) for b in segments.bands if (t := b.target("brevo"))}
        return self

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One call of the SDK's contacts API; its refusals become our two errors (a 429
        waits what `x-sib-ratelimit-reset` says, else a minute)."""
        if self._client is None:
            self._client = _sdk(self._key, self._api, self._timeout)
        import httpx
        from brevo.core.api_error import ApiError

        try:
            return getattr(self._client.contacts, method)(*args, **kwargs)
        except ApiError as exc:
            raise_for(answer_of(exc.status_code, exc.headers, exc.body), what, 60)
        except httpx.HTTPError as exc:
            raise RetryableDelivery(f"{what}: network {type(exc).__name__}") from None

    def setup(self) -> SetupReport:
        report = SetupReport()
        answer = self._call("brevo attributes", "get_attributes")
        have = {a.name for a in (answer.attributes or [])}
        for name, kind in ATTRIBUTES.items():
            if name in have:
                report.existing.append(name)
                continue
            self._call(f"brevo attribute {name}", "create_attribute", "normal", name, type=kind)
            report.created.append(name)
        return report

    def _lists_for(self, change: MemberChange) -> tuple[list[int], list[int]]:
        m = change.after
        managed = set(self._stage_lists.values()) | self._band_lists
        if m.removed and self.removal == "list":
            assert self._non_opener_list is not None
            return [self._non_opener_list], sorted(managed - {self._non_opener_list})
        wanted = {self._stage_lists[m.stage]} if m.stage in self._stage_lists else set()
        if m.band_target:
            wanted.add(int(m.band_target))
        unlink = managed - wanted
        if self._non_opener_list is not None:
            unlink.add(self._non_opener_list)
        return sorted(wanted), sorted(unlink - wanted)

    def push(self, changes: Sequence[MemberChange]) -> BatchResult:
        if len(changes) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} contacts per batch")
        rejected: dict[str, str] = {}
        for change in changes:  # contacts Brevo may not know yet: create them first
            if change.before is None and change.after.lead_id not in self._created:
                try:
                    self._call("brevo create contact", "create_contact",
                               email=change.after.email, attributes=attributes(change),
                               update_enabled=True)
                except PermanentDelivery as exc:
                    if not of_the_member(exc):  # the key or the URL: the whole batch
                        raise
                    rejected[change.after.lead_id] = exc.reason
                else:
                    self._created.add(change.after.lead_id)
        contacts = []
        for change in changes:
            if change.after.lead_id in rejected:
                continue
            link, unlink = self._lists_for(change)
            contact: dict[str, Any] = {"email": change.after.email,
                                       "attributes": attributes(change),
                                       "list_ids": link, "unlink_list_ids": unlink}
            if self.removal == "blocklist" and (change.removing or change.restoring):
                contact["email_blacklisted"] = change.removing
            contacts.append(contact)
        if contacts:
            from brevo.contacts.types import UpdateBatchContactsRequestContactsItem as Item

            self._call("brevo batch update", "update_batch_contacts",
                       contacts=[Item(**c) for c in contacts])
        return BatchResult(rejected=rejected)


def from_settings(settings: Any, segments: Segments) -> BrevoSync | None:
    key = settings.brevo_api_key.get_secret_value()
    if not key:
        return None
    return BrevoSync(key, api_url=settings.brevo_api_url,
                     stage_lists=settings.brevo_stage_lists, removal=settings.brevo_removal,
                     non_opener_list=settings.brevo_non_opener_list).with_bands(segments)
