"""HubSpot's merged contacts and CRM contact search, for the HubSpot fake (from HubSpot's docs).

- `merge(primary, secondary)`: the secondary contact goes; its address is kept in the
  surviving contact's `hs_additional_emails`, semicolon-separated (HubSpot's legacy
  secondary-email docs: the secondary addresses "are included in the hs_additional_emails
  property"; the `;` separator as HubSpot returns the property, e.g. hull-hubspot's
  mapping `$split(';')`). A batch read by `idProperty: email` of the secondary address
  finds nothing (HubSpot's docs are silent; the erasure must not rely on it) unless
  `reads_find_secondary` is set (as some third-party code reports HubSpot does).
- POST /crm/v3/objects/contacts/search ("Search the CRM" guide): `filterGroups` OR-ed, the
  filters of a group AND-ed, at most 5 groups and 25 filters in all (changelog, August
  2024); EQ and CONTAINS_TOKEN on `email` and `hs_additional_emails` (EQ on the latter
  matches one of its addresses, as HubSpot's engineer showed in hubspot-api-nodejs issue
  #24; CONTAINS_TOKEN matches one token of it); `limit` 1 to 100 per page, `after` an
  offset, and no paging past `SEARCH_TOTAL` (400); 5 requests per second per token, the
  6th within a second answered 429 (policy SECONDLY) without rate-limit headers.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

SEARCH_PER_SECOND = 5
SEARCH_PAGE = 100
SEARCH_TOTAL = 10_000  # "a maximum of 10,000 total results for any given query"
SEARCH_PROPERTIES = ("email", "hs_additional_emails")


def _error(status: int, category: str, message: str, **extra: Any) -> tuple[int, Any]:
    return status, {"status": "error", "category": category, "message": message,
                    "correlationId": "00000000-fake", **extra}


def additional(contact: dict[str, str]) -> list[str]:
    return [e for e in contact.get("hs_additional_emails", "").split(";") if e]


class SearchMixin:
    """Mixed into HubSpotFake: `contacts` maps a primary address to its properties."""

    contacts: dict[str, dict[str, str]]

    def _init_search(self) -> None:
        self.reads_find_secondary = False
        self.searches: list[dict[str, Any]] = []  # bodies of every search received
        self.search_refused = 0  # searches answered 429 (over 5 per second)
        self._search_times: deque[float] = deque()

    def merge(self, primary: str, secondary: str) -> None:
        """HubSpot merges `secondary` into `primary`: one contact, both addresses."""
        kept, gone = self.contacts[primary.lower()], self.contacts.pop(secondary.lower())
        emails = [*additional(kept), gone["email"], *additional(gone)]
        kept["hs_additional_emails"] = ";".join(dict.fromkeys(emails))

    def holder_of(self, email: str) -> str | None:
        """The primary address of the contact holding `email` as a secondary one."""
        wanted = email.lower()
        return next((p for p, c in self.contacts.items()
                     if wanted in (e.lower() for e in additional(c))), None)

    def _search(self, body: dict[str, Any]) -> tuple[int, Any]:
        now = time.monotonic()
        while self._search_times and now - self._search_times[0] >= 1.0:
            self._search_times.popleft()
        if len(self._search_times) >= SEARCH_PER_SECOND:
            self.search_refused += 1
            return _error(429, "RATE_LIMITS", "You have reached your secondly limit.",
                          errorType="RATE_LIMIT", policyName="SECONDLY")
        self._search_times.append(now)
        self.searches.append(body)
        groups = body.get("filterGroups") or []
        filters = [f for g in groups for f in g.get("filters") or []]
        limit, after = body.get("limit", 10), str(body.get("after") or "0")
        if len(groups) > 5 or len(filters) > 25:
            return _error(400, "VALIDATION_ERROR", "too many filter groups or filters")
        if not isinstance(limit, int) or not 1 <= limit <= SEARCH_PAGE or not after.isdigit():
            return _error(400, "VALIDATION_ERROR", f"limit must be 1 to {SEARCH_PAGE}")
        if int(after) + limit > SEARCH_TOTAL:
            return _error(400, "VALIDATION_ERROR", "paging past 10,000 results")
        for f in filters:
            if f.get("propertyName") not in SEARCH_PROPERTIES or f.get("operator") not in (
                    "EQ", "CONTAINS_TOKEN"):
                return _error(400, "VALIDATION_ERROR", "unsupported filter in this fake")
        matched = [(p, c) for p, c in sorted(self.contacts.items())
                   if not groups or any(all(_matches(c, f) for f in g.get("filters") or [])
                                        for g in groups)]
        page = matched[int(after):int(after) + limit]
        from fakes.hubspot_api import _record_id

        answer: dict[str, Any] = {"total": len(matched), "results": [
            {"id": _record_id(p), "archived": False, "properties": {
                "email": c["email"], "hs_additional_emails": c.get("hs_additional_emails"),
                "hs_object_id": _record_id(p)}} for p, c in page]}
        if int(after) + limit < len(matched):
            answer["paging"] = {"next": {"after": str(int(after) + limit)}}
        return 200, answer


def _matches(contact: dict[str, str], rule: dict[str, Any]) -> bool:
    value = str(rule.get("value", "")).lower()
    if rule["propertyName"] == "email":
        held = [contact.get("email", "")]
    else:
        held = additional(contact)
    held = [h.lower() for h in held]
    if rule["operator"] == "EQ":
        return value in held
    return any(value in h.replace(";", " ").split() for h in held)
