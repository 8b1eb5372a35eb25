"""Moving a lead to a new address (Mailchimp's `upemail`) without losing its history."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from leadscore import logs
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.identity import lead_id_for, normalise_email
from leadscore.domain.rules import Rules
from leadscore.service.writes import apply_events
from leadscore.store.port import LeadStore


def move_lead(store: LeadStore, rules: Rules, old_email: str, new_email: str,
              now: datetime) -> int:
    """Replay the old lead's events onto the new address, then delete the old lead.

    Three steps, each safe to repeat (a retry of the `upemail` finishes a move that stopped
    part-way and counts nothing twice):

    1. the moved record (`store.record_move`: a `Tombstone` with `moved_to`, no address)
       under the old lead id. From its commit on, every write for the old address lands on
       the new lead (`service/writes.py`): a provider's retry of an old-address event is a
       duplicate there, a new one scores there, and an event committed while the move runs
       is never left behind on the old lead (the record comes before the history is read);
    2. the old lead's events replayed onto the new lead, with their sources and idempotency
       keys (the ledger de-duplicates what step 1's followers wrote already);
    3. the old lead deleted, only if the new one now exists. If nothing stands there (the
       new address was erased meanwhile: its erasure deletes the records pointing at it),
       the record goes (`forget_move`) and the old lead stays as it was.

    Erasures win: the store refuses the record (and this moves nothing, returns 0) when the
    old address's id holds an erasure's tombstone (the erasure stays as it is, and so does
    a lead started again there with consent: nothing of it moves), or when the new one is
    erased and not started again (a record would send the old address's writes nowhere).
    Erasing the new address later deletes the records pointing at it; erasing the old one
    replaces its record with a tombstone. Records that pointed at the old lead now point at
    the new one. The record expires with tombstones (`TOMBSTONE_KEPT`). Returns how many
    events moved.
    """
    old_id, new_id = lead_id_for(old_email), lead_id_for(new_email)
    if old_id == new_id:
        return 0
    if store.get_lead(new_id) is None and not store.history(old_id, limit=1):
        store.erase(old_id)  # nothing to move anywhere: an old-address event starts afresh
        return 0
    if not store.record_move(old_id, new_id, now):
        logs.info("lead not moved: an address is erased", lead_id=old_id, new_lead_id=new_id)
        return 0
    moved = carry_over(store, rules, old_id, new_id, normalise_email(new_email), now)
    record = store.tombstone(old_id)
    target = record.moved_to if record is not None else None
    if target is None or store.get_lead(target) is None:  # erased meanwhile, or nothing came
        if target is not None:
            store.forget_move(old_id, target)
        logs.info("lead not moved: nothing stands at the new address", lead_id=old_id,
                  new_lead_id=new_id)
        return 0
    store.erase(old_id)  # no tombstone: the record stays, the lead and its rows go
    logs.info("lead moved to a new address", lead_id=old_id, new_lead_id=new_id, events=moved)
    return moved


def carry_over(store: LeadStore, rules: Rules, old_id: str, new_id: str, address: str,
               now: datetime, skip: Collection[str] = ()) -> int:
    """Write the events stored under `old_id` (but those whose ledger keys are in `skip`)
    on `new_id` under `address`, de-duplicated there by their ledger keys; how many. If
    `new_id` moved on meanwhile, they follow its record (`writes.apply_events`)."""
    events = [EVENT_ADAPTER.validate_python({**entry.event, "email": address})
              for entry in store.history(old_id) if entry.event and entry.entry_id not in skip]
    if events:
        apply_events(store, new_id, address, events, rules, now)
    return len(events)
