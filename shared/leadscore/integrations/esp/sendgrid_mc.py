"""SendGrid Marketing Campaigns: custom fields, a list per stage and band, the clean-up.

Plain HTTP on `http_out`: the `sendgrid` package is a thin wrapper (python-http-client)
that would add a runtime dependency to the lock for the same five calls. From SendGrid's
v3 reference:

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

import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from leadscore.domain.segments import Segments
from leadscore.integrations.esp.common import raise_for
from leadscore.integrations.esp.port import MemberChange, SetupReport
from leadscore.integrations.http_out import Answer, request_json
from leadscore.integrations.ports import BatchResult, PermanentDelivery, RetryableDelivery

MAX_BATCH = 1000  # far under the documented 30,000 contacts / 6 MB per upsert
FIELDS = {"ls_score": "Number", "ls_fit": "Number", "ls_engagement": "Number",
          "ls_stage": "Text", "ls_grade": "Text", "ls_segment": "Text", "ls_frequency": "Text"}
REMOVALS = ("lists", "suppress")


def field_values(change: MemberChange) -> dict[str, Any]:
    m = change.after
    return {"ls_score": m.score, "ls_fit": m.fit, "ls_engagement": m.engagement,
            "ls_stage": m.stage, "ls_grade": m.grade, "ls_segment": m.band,
            "ls_frequency": m.frequency}


class SendGridSync:
    name = "sendgrid"
    max_batch = MAX_BATCH

    def __init__(self, api_key: str, *, api_url: str = "https://api.sendgrid.com",
                 stage_lists: dict[str, str] | None = None, removal: str = "lists",
                 suppression_group: int | None = None, polls: int = 10,
                 poll_wait_s: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 timeout_s: float = 20) -> None:
        if removal not in REMOVALS:
            raise ValueError(f"sendgrid removal must be one of {', '.join(REMOVALS)}")
        if removal == "suppress" and suppression_group is None:
            raise ValueError("sendgrid removal 'suppress' needs a suppression group id")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._api = api_url.rstrip("/")
        self._stage_lists = dict(stage_lists or {})
        self._band_lists: set[str] = set()
        self.removal = removal
        self._group = suppression_group
        self._polls, self._poll_wait, self._sleep = polls, poll_wait_s, sleep
        self._timeout = timeout_s

    def with_bands(self, segments: Segments) -> SendGridSync:
        self._band_lists = {t for b in segments.bands if (t := b.target("sendgrid"))}
        return self

    def _call(self, method: str, path: str, payload: Any = None) -> Answer:
        return request_json(method, self._api + path, payload, self._headers, self._timeout)

    def _field_ids(self) -> dict[str, str]:
        answer = self._call("GET", "/v3/marketing/field_definitions")
        if answer.status != 200:
            raise_for(answer, "sendgrid field definitions")
        return {f["name"]: f["id"] for f in (answer.json() or {}).get("custom_fields", [])}

    def setup(self) -> SetupReport:
        report = SetupReport()
        have = self._field_ids()
        for name, kind in FIELDS.items():
            if name in have:
                report.existing.append(name)
                continue
            created = self._call("POST", "/v3/marketing/field_definitions",
                                 {"name": name, "field_type": kind})
            if created.status not in (200, 201):
                raise_for(created, f"sendgrid field {name}")
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
            self._wait_for(self._call("PUT", "/v3/marketing/contacts", body))
        self._leave(leaving)
        self._suppressions(changes)
        return BatchResult()

    def _wait_for(self, answer: Answer) -> None:
        if answer.status != 202:
            raise_for(answer, "sendgrid upsert")
        job = (answer.json() or {}).get("job_id")
        for _ in range(self._polls):
            status = self._call("GET", f"/v3/marketing/contacts/imports/{job}")
            if status.status != 200:
                raise_for(status, "sendgrid import status")
            state = (status.json() or {}).get("status")
            if state == "completed":
                return
            if state in ("errored", "failed"):
                raise PermanentDelivery(f"sendgrid upsert job {state}")
            self._sleep(self._poll_wait)
        raise RetryableDelivery("sendgrid upsert job still pending", 60)

    def _leave(self, leaving: dict[str, list[str]]) -> None:
        emails = sorted({e for group in leaving.values() for e in group})
        if not emails:
            return
        found = self._call("POST", "/v3/marketing/contacts/search/emails", {"emails": emails})
        if found.status == 404:  # none of them exists: nothing to leave
            return
        if found.status != 200:
            raise_for(found, "sendgrid search")
        result = (found.json() or {}).get("result") or {}
        contact_id = {e.lower(): (r.get("contact") or {}).get("id") for e, r in result.items()}
        for list_id, group in leaving.items():
            known = sorted({i for e in group if (i := contact_id.get(e.lower()))})
            if known:
                query = urllib.parse.urlencode({"contact_ids": ",".join(known)})
                gone = self._call("DELETE", f"/v3/marketing/lists/{list_id}/contacts?{query}")
                if gone.status not in (200, 202, 204):
                    raise_for(gone, "sendgrid list removal")

    def _suppressions(self, changes: Sequence[MemberChange]) -> None:
        if self.removal != "suppress":
            return
        adding = [c.after.email for c in changes if c.removing]
        if adding:
            answer = self._call("POST", f"/v3/asm/groups/{self._group}/suppressions",
                                {"recipient_emails": adding})
            if answer.status not in (200, 201):
                raise_for(answer, "sendgrid suppression")
        for change in changes:
            if change.restoring:
                email = urllib.parse.quote(change.after.email, safe="")
                answer = self._call("DELETE",
                                    f"/v3/asm/groups/{self._group}/suppressions/{email}")
                if answer.status not in (200, 204, 404):
                    raise_for(answer, "sendgrid suppression removal")


def from_settings(settings: Any, segments: Segments) -> SendGridSync | None:
    key = settings.sendgrid_api_key.get_secret_value()
    if not key:
        return None
    return SendGridSync(key, api_url=settings.sendgrid_api_url,
                        stage_lists=settings.sendgrid_stage_lists,
                        removal=settings.sendgrid_removal,
                        suppression_group=settings.sendgrid_suppression_group,
                        poll_wait_s=settings.sendgrid_poll_wait_s).with_bands(segments)
