"""HubSpot: the `leadscore` property group and properties, and contact upserts by email.

Calls HubSpot's CRM v3 API with a private-app token (`LEADSCORE_HUBSPOT_TOKEN`, sent as
`Authorization: Bearer`; the app needs crm.schemas.contacts.write for setup,
crm.objects.contacts.write for the sync and crm.objects.contacts.read for erasures).

- `setup_properties` creates the group and the seven properties; HubSpot answers 409 for
  one that exists, which counts as done, so running it again is harmless.
- `HubSpotCrm.upsert` sends at most 100 contacts to
  POST /crm/v3/objects/contacts/batch/upsert with `idProperty: email` (a contact that does
  not exist yet is created). 429 is retryable after Retry-After, or after HubSpot's
  X-HubSpot-RateLimit-Interval-Milliseconds window when only that is sent; 5xx and network
  failures are retryable; 401/403/400 refuse the whole batch for good; a 207 names the
  records it refused (errors[].context.ids), and those come back as per-record refusals.
- `HubSpotCrm.erase` first asks HubSpot whether it has a contact with the address
  (POST /crm/v3/objects/contacts/batch/read, `idProperty: email`, the address in the body,
  never in a URL); none (a 207 whose OBJECT_NOT_FOUND error names it) is done, any other
  answer is retried. An address the read does not find may still be a merged contact's
  secondary email (`hs_additional_emails`): the CRM search is asked too
  (`hubspot_merged.py`), and a contact it finds is deleted only if the address is really
  one of its emails.
  Only a contact found is deleted for good, by its record id, with HubSpot's GDPR delete
  (POST /crm/v3/objects/contacts/gdpr-delete, `{"objectId": <id>}`); 204 when done. A GDPR
  delete by email would blocklist an address HubSpot has no contact for, and a person who
  consents again could never be synced. A 404 on the read (a wrong URL) or any other
  answer leaves the erasure to be sent again; a 404 on the delete (the contact went or was
  merged since the read) reads again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from pydantic import BaseModel, Field

from leadscore.domain.state import STAGES
from leadscore.integrations.http_out import Answer, request_json, retry_after_s
from leadscore.integrations.hubspot_merged import Pacer, merged_contact_id
from leadscore.integrations.ports import (
    BatchResult,
    PermanentDelivery,
    RetryableDelivery,
    ScoreRecord,
)

API_URL = "https://api.hubapi.com"
GROUP = "leadscore"
MAX_BATCH = 100  # HubSpot's documented limit for batch endpoints
DEFAULT_RATE_WAIT_S = 10.0  # HubSpot's burst window is ten seconds
DAILY_WAIT_S = 3600.0
EMAIL = re.compile(r"[^\s\"'<>@,;:]+@[^\s\"'<>@,;:]+")


def _prop(name: str, label: str, kind: str, field: str, description: str,
          **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "type": kind, "fieldType": field,
            "groupName": GROUP, "description": description, **extra}


PROPERTIES: list[dict[str, Any]] = [
    _prop("leadscore_score", "Lead score", "number", "number",
          "leadscore total: fit + engagement, engagement fading with time"),
    _prop("leadscore_fit", "Lead score: fit", "number", "number",
          "Points for who the person is (role, company, industry...)"),
    _prop("leadscore_engagement", "Lead score: engagement", "number", "number",
          "Points for what the person did, faded by age"),
    _prop("leadscore_grade", "Lead grade", "string", "text",
          "Fit letter A-D and engagement digit 1-4 (A1 is best)"),
    _prop("leadscore_stage", "Lead score stage", "enumeration", "select",
          "lead, mql, sql or customer, from the score thresholds",
          options=[{"label": s.upper() if s in ("mql", "sql") else s.capitalize(),
                    "value": s, "displayOrder": n, "hidden": False}
                   for n, s in enumerate(STAGES)]),
    _prop("leadscore_top_reasons", "Lead score: top reasons", "string", "textarea",
          "The three reasons worth most points now"),
    _prop("leadscore_last_scored", "Lead score: last scored", "datetime", "date",
          "When leadscore computed these values"),
]


class SetupReport(BaseModel):
    created: list[str] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)


def contact_properties(record: ScoreRecord) -> dict[str, str]:
    """A score record as HubSpot property values (HubSpot takes every value as a string)."""
    scored = record.scored_at.astimezone(UTC)
    return {
        "leadscore_score": f"{record.score:g}",
        "leadscore_fit": f"{record.fit_score:g}",
        "leadscore_engagement": f"{record.engagement_score:g}",
        "leadscore_grade": record.grade,
        "leadscore_stage": record.stage,
        "leadscore_top_reasons": record.top_reasons[:65536],
        "leadscore_last_scored": scored.strftime("%Y-%m-%dT%H:%M:%S.") +
        f"{scored.microsecond // 1000:03d}Z",
    }


def _rate_wait(answer: Answer) -> float:
    asked = retry_after_s(answer.header("Retry-After"))
    if asked is not None:
        return asked
    body = answer.json()
    policy = str(body.get("policyName", "")).upper() if isinstance(body, dict) else ""
    if policy == "DAILY":
        return DAILY_WAIT_S
    window = answer.header("X-HubSpot-RateLimit-Interval-Milliseconds")
    if policy == "SECONDLY" and not window:  # search's own limit: no headers, one second
        return 1.0
    try:
        return float(window) / 1000 if window else DEFAULT_RATE_WAIT_S
    except ValueError:
        return DEFAULT_RATE_WAIT_S


def _raise_for(answer: Answer, what: str) -> None:
    if answer.status == 429:
        raise RetryableDelivery(f"hubspot {what}: rate limited", _rate_wait(answer), 429)
    if answer.status >= 500 or answer.status == 408:
        raise RetryableDelivery(f"hubspot {what}: {answer.status}", status=answer.status)
    body = answer.json()
    message = body.get("message", "") if isinstance(body, dict) else ""
    raise PermanentDelivery(f"hubspot {what}: {answer.status} {_no_emails(str(message))[:200]}",
                            answer.status)


def _no_emails(text: str) -> str:
    """HubSpot's messages may quote the contact's address; ours go to logs and reports."""
    return EMAIL.sub("<email>", text)


class HubSpotCrm:
    """CrmSync for HubSpot contacts. Holds a token and a base URL; no connection is kept."""

    max_batch = MAX_BATCH

    def __init__(self, token: str, api_url: str = API_URL, timeout_s: float = 20) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}
        self._api = api_url.rstrip("/")
        self._timeout = timeout_s
        self._searches = Pacer()  # search's own limit, per token: this client's calls

    def _post(self, path: str, payload: Any) -> Answer:
        return request_json("POST", self._api + path, payload, self._headers, self._timeout)

    def setup_properties(self) -> SetupReport:
        report = SetupReport()
        answer = self._post("/crm/v3/properties/contacts/groups",
                            {"name": GROUP, "label": "leadscore", "displayOrder": -1})
        self._created_or_existing(answer, f"group {GROUP}", report)
        for definition in PROPERTIES:
            answer = self._post("/crm/v3/properties/contacts", definition)
            self._created_or_existing(answer, definition["name"], report)
        return report

    @staticmethod
    def _created_or_existing(answer: Answer, name: str, report: SetupReport) -> None:
        if answer.status in (200, 201):
            report.created.append(name)
        elif answer.status == 409:
            report.existing.append(name)
        else:
            _raise_for(answer, f"setup of {name}")

    def deal_contact_emails(self, deal_id: str) -> list[str]:
        """The addresses of the contacts associated with a deal (CRM v4 associations, then
        one batch read of their `email`). A deal HubSpot does not know has none; 429 and 5xx
        raise RetryableDelivery so the webhook is answered 503 and HubSpot retries."""
        if not deal_id.isdigit():
            return []
        answer = request_json("GET", f"{self._api}/crm/v4/objects/deals/{deal_id}/"
                              "associations/contacts?limit=100", None, self._headers,
                              self._timeout)
        if answer.status == 404:
            return []
        if answer.status != 200:
            _raise_for(answer, "deal associations")
        body = answer.json() if isinstance(answer.json(), dict) else {}
        ids = [str(r.get("toObjectId")) for r in body.get("results") or []
               if str(r.get("toObjectId", "")).isdigit()][:MAX_BATCH]
        if not ids:
            return []
        answer = self._post("/crm/v3/objects/contacts/batch/read",
                            {"properties": ["email"], "inputs": [{"id": i} for i in ids]})
        if answer.status not in (200, 207):
            _raise_for(answer, "contact read")
        body = answer.json() if isinstance(answer.json(), dict) else {}
        emails = [str((r.get("properties") or {}).get("email") or "")
                  for r in body.get("results") or []]
        return sorted({e.strip().lower() for e in emails if "@" in e})

    def erase(self, email: str) -> bool:
        """Delete the contact with this address for good: find it by email, then GDPR-delete
        it by its record id. True when one was deleted; False when HubSpot has none."""
        contact_id = self._contact_id(email)
        if contact_id is None:  # no contact: nothing to delete, and no blocklist entry
            return False
        answer = self._post("/crm/v3/objects/contacts/gdpr-delete", {"objectId": contact_id})
        if answer.status in (200, 204):
            return True
        if answer.status == 404:  # gone (or merged) since the read: ask again
            raise RetryableDelivery("hubspot gdpr delete: contact gone since read", status=404)
        _raise_for(answer, "gdpr delete")
        raise AssertionError("unreachable")  # pragma: no cover

    def _contact_id(self, email: str) -> str | None:
        """The record id of the contact with this address (batch read by `email`, the
        address in the body), None when HubSpot has none: a 207 whose OBJECT_NOT_FOUND error
        names this address, as HubSpot answers a missing one, and no contact holding it as
        a merged secondary email (a search, `hubspot_merged.py`). Anything else (another error,
        a 200 without the contact, a body that is not HubSpot's, e.g. a proxy's) leaves the
        answer unknown (retryable), so a wrong URL never passes for "nothing to delete"."""
        answer = self._post("/crm/v3/objects/contacts/batch/read", {
            "idProperty": "email", "properties": ["email"], "inputs": [{"id": email}]})
        if answer.status not in (200, 207):
            _raise_for(answer, "contact read")
        body = answer.json() if isinstance(answer.json(), dict) else {}
        results = body.get("results") or []
        for result in results:
            found = str(result.get("id") or "")
            if found.isdigit():
                return found
        if results:  # a contact, but no record id to delete it by
            raise RetryableDelivery("hubspot contact read: no record id", status=answer.status)
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        other = [str(e.get("category", "")) for e in errors
                 if e.get("category") != "OBJECT_NOT_FOUND"]
        if other:
            raise RetryableDelivery(f"hubspot contact read: {', '.join(other)[:200]}",
                                    status=answer.status)
        named = {str(i).strip().lower() for e in errors
                 for i in ((e.get("context") or {}).get("ids") or [])}
        if answer.status != 207 or email.strip().lower() not in named:
            raise RetryableDelivery("hubspot contact read: neither the contact nor its "
                                    "absence", status=answer.status)
        # no contact with it as `email`: a merge may have kept it as a secondary email
        return merged_contact_id(self._post, email, self._searches, _raise_for)

    def upsert(self, records: Sequence[ScoreRecord]) -> BatchResult:
        if len(records) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} records per batch")
        if not records:
            return BatchResult()
        inputs = [{"id": r.email, "idProperty": "email", "properties": contact_properties(r)}
                  for r in records]
        answer = self._post("/crm/v3/objects/contacts/batch/upsert", {"inputs": inputs})
        if answer.status in (200, 201):
            return BatchResult()
        if answer.status == 207:
            return _partial(answer, records)
        _raise_for(answer, "upsert")
        raise AssertionError("unreachable")  # pragma: no cover


def _partial(answer: Answer, records: Sequence[ScoreRecord]) -> BatchResult:
    """Per-record refusals of a 207 (the records an error names). An error naming no record
    leaves every record the answer does not confirm `unnamed`: not marked synced, since
    HubSpot did not store it, nor refused for good, since HubSpot did not say it was it."""
    body = answer.json() if isinstance(answer.json(), dict) else {}
    by_email = {r.email.lower(): r.lead_id for r in records}
    rejected: dict[str, str] = {}
    unattributed = ""
    for error in body.get("errors") or []:
        message = _no_emails(str(error.get("message", "refused")))[:200]
        ids = (error.get("context") or {}).get("ids") or []
        named = [by_email[str(i).lower()] for i in ids if str(i).lower() in by_email]
        rejected.update(dict.fromkeys(named, message))
        if not named:
            unattributed = message
    unnamed: dict[str, str] = {}
    if unattributed:
        stored = {str((r.get("properties") or {}).get("email", "")).lower()
                  for r in body.get("results") or []}
        unnamed = {lead_id: unattributed for email, lead_id in by_email.items()
                   if email not in stored and lead_id not in rejected}
    return BatchResult(rejected=rejected, unnamed=unnamed)
