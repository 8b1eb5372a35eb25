"""What every outbound sync shares: the email tools (issue 22, `esp_sync.py`) and the CRMs
(issue 18, `crm_outbox.py`).

Both keep, per (tool, lead), what the tool last accepted (`store/port.py` `SyncRecords`) and
sweep leads comparing their current values with it, so a change that was never delivered
(a crash after the lead's write, a rate limit, an outage) is still a difference on the
next sweep: no event or queue has to survive for nothing to be lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from leadscore.domain.state import LeadState
from leadscore.store.port import LeadStore, OutboxClaims, SyncRecords


def sync_records_of(store: LeadStore) -> SyncRecords:
    if not isinstance(store, SyncRecords):
        raise TypeError(f"{type(store).__name__} keeps no sync records")
    return store


def outbox_of(store: LeadStore) -> OutboxClaims:
    """The store's outbox claims (the handovers and the CRM erasures)."""
    if not isinstance(store, OutboxClaims):
        raise TypeError(f"{type(store).__name__} keeps no outbox claims")
    return store


def clock_of(now: datetime | Callable[[], datetime]) -> Callable[[], datetime]:
    """A sweep's clock: a lease or backoff is counted from the moment of its claim, not from
    the sweep's start (a sweep of slow deliveries outlasts a lease); a fixed time (tests, a
    one-off run) stands still."""
    return now if callable(now) else lambda: now


def lead_pages(store: LeadStore, lead_ids: Sequence[str] | None, after_id: str | None,
               page: int) -> Iterator[list[LeadState]]:
    """The named leads (missing ones skipped), or every lead in id order after `after_id`,
    a page at a time; never an empty page."""
    if lead_ids is not None:
        ids = sorted(set(lead_ids))
        for start in range(0, len(ids), page):  # a page whose leads were all erased: none
            if found := [lead for i in ids[start:start + page] if (lead := store.get_lead(i))]:
                yield found
        return
    while batch := store.iter_leads(after_id, page):
        yield batch
        if len(batch) < page:  # the last page: no need to ask for an empty one
            return
        after_id = batch[-1].lead_id


def erased_since_read(store: LeadStore, lead_ids: Sequence[str]) -> set[str]:
    """The leads of a sync's answer that were erased after the run read them: an erasure's
    tombstone and no lead (a lead started again with consent after its erasure has one). The
    run sent what it read, so no sync record may be kept for them, refused or stored: it
    would keep the erased lead's score and stage under its id. A moved lead (a moved record,
    `moved_to`) is no erasure: its person changed address, and a GDPR delete would remove
    sales' contact and, in HubSpot, blocklist the address. One tombstone read per lead
    answered, beside its HTTP call."""
    return {i for i in lead_ids if (gone := store.tombstone(i)) is not None
            and gone.moved_to is None and store.get_lead(i) is None}

