"""Brevo (API v3): contact attributes, a list per stage and band, the clean-up action.

Plain HTTP on `http_out` rather than `brevo-python`/`sib-api-v3-sdk`: four endpoints, no
new runtime dependency in the lock or the decay function's cold start, and our own
reading of 429's reset header. From Brevo's API reference:

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

from collections.abc import Sequence
from typing import Any

from leadscore.domain.segments import Segments
from leadscore.integrations.esp.common import raise_for
from leadscore.integrations.esp.port import MemberChange, SetupReport
from leadscore.integrations.http_out import Answer, request_json
from leadscore.integrations.ports import BatchResult, PermanentDelivery

MAX_BATCH = 100  # contacts per POST /contacts/batch
ATTRIBUTES = {"LS_SCORE": "float", "LS_FIT": "float", "LS_ENGAGEMENT": "float",
              "LS_STAGE": "text", "LS_GRADE": "text", "LS_SEGMENT": "text",
              "LS_FREQUENCY": "text"}
REMOVALS = ("list", "blocklist")


def attributes(change: MemberChange) -> dict[str, Any]:
    m = change.after
    return {"LS_SCORE": m.score, "LS_FIT": m.fit, "LS_ENGAGEMENT": m.engagement,
            "LS_STAGE": m.stage, "LS_GRADE": m.grade, "LS_SEGMENT": m.band,
            "LS_FREQUENCY": m.frequency}


class BrevoSync:
    name = "brevo"
    max_batch = MAX_BATCH

    def __init__(self, api_key: str, *, api_url: str = "https://api.brevo.com/v3",
                 stage_lists: dict[str, int] | None = None, removal: str = "list",
                 non_opener_list: int | None = None, timeout_s: float = 20) -> None:
        if removal not in REMOVALS:
            raise ValueError(f"brevo removal must be one of {', '.join(REMOVALS)}")
        if removal == "list" and non_opener_list is None:
            raise ValueError("brevo removal 'list' needs LEADSCORE_BREVO_NON_OPENER_LIST")
        self._headers = {"api-key": api_key, "accept": "application/json"}
        self._api = api_url.rstrip("/")
        self._stage_lists = dict(stage_lists or {})
        self.removal = removal
        self._non_opener_list = non_opener_list
        self._timeout = timeout_s
        self._band_lists: set[int] = set()

    def with_bands(self, segments: Segments) -> BrevoSync:
        self._band_lists = {int(t) for b in segments.bands if (t := b.target("brevo"))}
        return self

    def _call(self, method: str, path: str, payload: Any = None) -> Answer:
        return request_json(method, self._api + path, payload, self._headers, self._timeout)

    def setup(self) -> SetupReport:
        report = SetupReport()
        answer = self._call("GET", "/contacts/attributes")
        if answer.status != 200:
            raise_for(answer, "brevo attributes", 60)
        have = {a.get("name") for a in (answer.json() or {}).get("attributes", [])}
        for name, kind in ATTRIBUTES.items():
            if name in have:
                report.existing.append(name)
                continue
            created = self._call("POST", f"/contacts/attributes/normal/{name}", {"type": kind})
            if created.status not in (200, 201, 204):
                raise_for(created, f"brevo attribute {name}", 60)
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
            if change.before is None:
                answer = self._call("POST", "/contacts", {
                    "email": change.after.email, "attributes": attributes(change),
                    "updateEnabled": True})
                if answer.status not in (201, 204):
                    try:
                        raise_for(answer, "brevo create contact", 60)
                    except PermanentDelivery as exc:
                        rejected[change.after.lead_id] = exc.reason
        contacts = []
        for change in changes:
            if change.after.lead_id in rejected:
                continue
            link, unlink = self._lists_for(change)
            contact: dict[str, Any] = {"email": change.after.email,
                                       "attributes": attributes(change),
                                       "listIds": link, "unlinkListIds": unlink}
            if self.removal == "blocklist" and (change.removing or change.restoring):
                contact["emailBlacklisted"] = change.removing
            contacts.append(contact)
        if contacts:
            answer = self._call("POST", "/contacts/batch", {"contacts": contacts})
            if answer.status not in (200, 204):
                raise_for(answer, "brevo batch update", 60)
        return BatchResult(rejected=rejected)


def from_settings(settings: Any, segments: Segments) -> BrevoSync | None:
    key = settings.brevo_api_key.get_secret_value()
    if not key:
        return None
    return BrevoSync(key, api_url=settings.brevo_api_url,
                     stage_lists=settings.brevo_stage_lists, removal=settings.brevo_removal,
                     non_opener_list=settings.brevo_non_opener_list).with_bands(segments)
