"""Erasure that sticks: tombstones, and which events may write after one.

An erasure deletes the lead and keeps a `Tombstone` under its id (a keyed hash of the
address: no personal data) with the erasure time. Every write reads it in the same
transaction as the lead (`store.transact`), so:

- an event dated at or before the erasure (a provider's late redelivery, a retried batch)
  is acknowledged and dropped: counted in the answer's `erased` and logged by lead id;
- an event after it starts a new lead only with a lawful basis of its own: a form
  submission is the person's consent, so it creates a new lead (with the events after the
  erasure that arrive beside it); ESP engagement, purchases and activities for an address
  that has no lead any more are dropped. Once a new lead exists, later events apply to it.

A lead started again with consent is marked with the erasure it follows
(`LeadState.restarted_after` = the tombstone's `erased_at`). A lead under a tombstone
without that mark is a *leftover*: the lead document an erasure had not deleted yet
(Firestore deletes its records before the document), or one the blind path wrote after an
erasure it could not see. No event, refresh or rescore writes to a leftover: its events are
dropped (a form too: answered with a `TransientError`, so the sender's retry starts the new
lead once the leftover is gone) and the leftover is erased (`clear_leftover`, which deletes
only an unmarked document, in a transaction, so a lead started again meanwhile stays).

The blind write path (Firestore) never writes for an erased id: it checks the tombstone
before (and routes such ids to the transactional path) and after its commit (if an erasure
slipped in between, it clears what it wrote: a leftover). If that check fails, the sender's
retry takes the transactional path, which finds the leftover. See `writes._apply_blind`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadscore import logs
from leadscore.domain.events import Event, FormSubmitted
from leadscore.domain.identity import lead_id_for, legacy_lead_id
from leadscore.domain.state import LeadState
from leadscore.errors import TransientError
from leadscore.store.port import LeadSnapshot, LeadStore, Tombstone, VisitorStore

UNSETTLED_GRACE = timedelta(minutes=5)  # an erasure that crashed part-way counts as done


def restarted(lead: LeadState, stone: Tombstone) -> bool:
    """Whether `lead` was started again with consent after the erasure `stone` records."""
    return stone.restarted(lead)


def leftover(snap: LeadSnapshot) -> bool:
    """A lead document under a tombstone that no consented restart marked (see above). A
    moved record is no erasure: the move deletes its own lead (`service/moves.py`)."""
    return (snap.tombstone is not None and snap.lead is not None
            and snap.tombstone.moved_to is None and not restarted(snap.lead, snap.tombstone))


class LeftoverOfAnErasure(TransientError):
    """A form arrived for a leftover: the caller clears it, then the form starts the lead."""


def admitted(snap: LeadSnapshot, events: Sequence[Event], now: datetime) -> list[Event]:
    """The events that may write to this lead, given its tombstone (if any)."""
    stone = snap.tombstone
    if stone is None:
        return list(events)
    later = [e for e in events if e.occurred_at > stone.erased_at]
    if snap.lead is not None and restarted(snap.lead, stone):  # started with consent
        return later
    if snap.lead is not None:  # a leftover: nothing writes to it, the caller clears it
        if any(isinstance(e, FormSubmitted) for e in later):
            raise LeftoverOfAnErasure("an erasure of this address is in progress; "
                                      "retry shortly")
        return []
    if not any(isinstance(e, FormSubmitted) for e in later):
        return []  # no lawful basis to start a new lead
    if not stone.settled and now - stone.erased_at < UNSETTLED_GRACE:
        raise TransientError("an erasure of this address is in progress; retry shortly")
    return later


def clear_leftover(store: LeadStore, lead_id: str) -> bool:
    """Erase a leftover of an erasure (atomically: only a document still unmarked)."""
    cleared = store.erase_leftover(lead_id)
    if cleared and isinstance(store, VisitorStore):  # its visitor links name the erased
        store.erase_visitors(lead_id)  # address too (`erase` deletes them as well)
        logs.info("leftover of an erased lead deleted", lead_id=lead_id)
    return cleared


def erased_lead(store: LeadStore, lead_id: str) -> bool:
    """Whether the lead was erased and not started again (hand-over delivery's backstop)."""
    stone = store.tombstone(lead_id)
    if stone is None:
        return False
    lead = store.get_lead(lead_id)
    return lead is None or (stone.moved_to is None and not restarted(lead, stone))


def log_dropped(lead_id: str, dropped: int) -> None:
    if dropped:
        logs.info("events for an erased lead dropped", lead_id=lead_id, dropped=dropped)


def erase_address(store: LeadStore, email: str, now: datetime,
                  found_id: str | None = None, crm_tools: Sequence[str] = ()) -> bool:
    """Erase every lead this address has (its keyed id, its id from before keyed ids, and
    `found_id`), and keep a tombstone under its keyed id. True if anything was deleted.
    `crm_tools` (the configured CRM syncs, "crm:hubspot") that have the contact get it
    deleted too: recorded before the erasure, due once it is done (`service/crm_erasure.py`).

    Order: the other ids first, the keyed id last. `leadscore rekey` moves a legacy lead
    onto the keyed id, so the keyed id is the one place a lead can arrive while this runs:
    a move that commits before the keyed id's erasure begins is erased by it, and one after
    reads the keyed id's tombstone in its transaction and erases the legacy lead instead of
    moving it (the stores' `rekey_lead`). The reverse order left a window in which a move
    brought the lead back under the tombstoned id and this answered "nothing erased"."""
    from leadscore.service import crm_erasure
    from leadscore.service.purchases import forget_orders

    current = lead_id_for(email)
    others = sorted({legacy_lead_id(email), found_id or current} - {current})
    pending = crm_erasure.plan(store, crm_tools, current, email, now)
    for lead_id in (current, *others):  # a later refund of theirs: not a 503
        forget_orders(store, lead_id, now)
    erased = False
    for other in others:
        erased = store.erase(other, erased_at=now) or erased
    erased = store.erase(current, erased_at=now) or erased
    crm_erasure.release(store, pending, now, erased)
    logs.info("lead erased", lead_id=current)
    return erased
