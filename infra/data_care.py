"""Which Firestore collections hold personal data, and how each one's data goes away.

Every collection the Firestore store writes is listed here (a test reads the store's source
and fails on a collection this file does not know). A collection's data goes away through a
TTL policy (Firestore deletes a document, usually within 24 hours, once the timestamp in
`expires_at` has passed; a document without the field is kept), through the erasure path
(`LeadStore.erase`), or both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.config import DeployConfig

TTL_FIELD = "expires_at"

# suffix of the collection name -> (TTL field or None, erased with the lead, what it holds)
COLLECTIONS: dict[str, tuple[str | None, bool, str]] = {
    "": (None, True, "one document per lead: address, profile, scores"),
    "/history": (None, True, "each event that moved a score, with its payload"),
    "_orders": (None, True, "order key -> lead id, for refunds"),
    "/orders": (None, True, "each order of the lead: amounts, refunds, times"),
    "_order_aliases": (TTL_FIELD, True, "platform ids of one payment -> its order key (no "
                       "address); erased orders' markers (keyed hashes) expire with the tombstone"),
    "_handovers": (TTL_FIELD, True, "stage changes to hand to sales; delivered ones expire"),
    "_tokens": (TTL_FIELD, False, "Mailgun and HubSpot signature tokens (replays), "
                "expiring once no signature with them can be accepted (about 1.5 hours)"),
    "_visitors": (TTL_FIELD, True, "anonymous website visitors, until identified"),
    "_erased": (TTL_FIELD, False, "erasure tombstones and moved records: lead ids (keyed "
                "hashes) and time, no address; they expire after 400 days"),
    "_esp_sync": (None, True, "what each email tool last accepted per lead (scores, no email)"),
    "_crm_erasures": (TTL_FIELD, False, "addresses whose CRM contact an erasure must still "
                      "delete; deleted once the CRM confirms, expire after 90 days"),
}


def base_collection(config: DeployConfig) -> str:
    return config.env.get("LEADSCORE_FIRESTORE_COLLECTION", "leads")


def ttl_policies(base: str) -> dict[str, str]:
    """collection group -> the timestamp field after which Firestore deletes a document."""
    return {base + suffix: ttl for suffix, (ttl, _, _) in COLLECTIONS.items()
            if ttl and not suffix.startswith("/")}
