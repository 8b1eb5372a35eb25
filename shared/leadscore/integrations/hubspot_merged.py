"""Finding the contact that holds an address only as a merged contact's secondary email.

When HubSpot merges two contacts, the secondary's address is kept on the surviving contact
in `hs_additional_emails` (semicolon-separated; HubSpot's legacy secondary-email docs: "The
secondary email addresses for a contact are included in the hs_additional_emails property").
HubSpot's docs do not say whether the batch read by `idProperty: email` (what `erase` asks
first) finds such an address: they are silent, third-party code reports it does, and
HubSpot's own client library once answered that a search on `email` did not (hubspot-api-
nodejs issue #24, a HubSpot engineer: filter on `hs_additional_emails` instead). So when
the batch read finds no contact, the erasure asks the CRM search as well, and deletes what
it finds only if the address really is one of the contact's emails (exact, ignoring case,
against `email` and the split `hs_additional_emails`): a token match alone is not enough.

POST /crm/v3/objects/contacts/search, the address in the body only (never a URL, never a
log); two filter groups, OR-ed: `hs_additional_emails` EQ the address (as HubSpot's engineer
showed) or CONTAINS_TOKEN it (the operator HubSpot documents for multi-word values).
Search has its own limits (HubSpot's "Search the CRM" guide, Limitations): requests per
second per token (4, raised to 5), a page of at most 100 results (200 in newer docs), and a
total it will page to: so searches are spaced `MIN_INTERVAL_S` apart, pages are `PAGE`
long and at most `MAX_PAGES` are read; the address is sent lower-cased, as it is matched.
A 429 on search (no rate-limit headers: HubSpot sends none for search) is retryable after
a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from leadscore.integrations.http_out import Answer
from leadscore.integrations.ports import RetryableDelivery

SEARCH = "/crm/v3/objects/contacts/search"
PAGE = 100  # results per search page: the documented maximum (older docs; 200 newer)
MAX_PAGES = 5  # an address is held by one contact; token matches past 500 are noise
# search's own limit is 5 requests per second per token (4 in older docs): 4 per second
# keeps under either, with room for the clocks of client and server to differ
MIN_INTERVAL_S = 0.25


class Pacer:
    """Spaces calls at least `interval_s` apart (search's per-token secondly limit)."""

    def __init__(self, interval_s: float = MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval, self._clock, self._sleep = interval_s, clock, sleep
        self._lock = threading.Lock()
        self._last: float | None = None

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self._interval:
                self._sleep(self._interval - (now - self._last))
                now = self._clock()
            self._last = now


def emails_of(properties: dict[str, Any]) -> set[str]:
    """A contact's addresses: `email` and each of `hs_additional_emails` (split on `;`)."""
    listed = [str(properties.get("email") or "")]
    listed += str(properties.get("hs_additional_emails") or "").split(";")
    return {e.strip().lower() for e in listed if "@" in e}


def search_body(email: str, after: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_additional_emails", "operator": "EQ",
                          "value": email}]},
            {"filters": [{"propertyName": "hs_additional_emails",
                          "operator": "CONTAINS_TOKEN", "value": email}]}],
        "properties": ["email", "hs_additional_emails"], "limit": PAGE}
    if after:
        body["after"] = after
    return body


def merged_contact_id(post: Callable[[str, Any], Answer], email: str, pacer: Pacer,
                      raise_for: Callable[[Answer, str], None]) -> str | None:
    """The record id of the contact holding `email` among its emails, found by search;
    None when no contact does. `raise_for` maps a refusal to our errors."""
    wanted = email.strip().lower()
    after: str | None = None
    for _ in range(MAX_PAGES):
        pacer.wait()
        answer = post(SEARCH, search_body(wanted, after))
        if answer.status != 200:
            raise_for(answer, "contact search")
        body = answer.json() if isinstance(answer.json(), dict) else {}
        for result in body.get("results") or []:
            found = str(result.get("id") or "")
            if found.isdigit() and wanted in emails_of(result.get("properties") or {}):
                return found
        after = str(((body.get("paging") or {}).get("next") or {}).get("after") or "")
        if not after:
            return None
    # results remain unread: the holder may be among them, so this is no "absent" (that
    # would settle the erasure and leave the contact); the erasure waits and is retried,
    # and is given up and logged after its 90 days like any other that never completes
    raise RetryableDelivery(f"contact search: more than {MAX_PAGES * PAGE} matches")
