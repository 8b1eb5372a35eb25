"""Moving a lead to a new address (Mailchimp's `upemail`) without losing its history."""

from __future__ import annotations

from datetime import datetime

from leadscore import logs
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.identity import lead_id_for, normalise_email
from leadscore.domain.rules import Rules
from leadscore.service.writes import apply_events
from leadscore.store.port import LeadStore


def move_lead(store: LeadStore, rules: Rules, old_email: str, new_email: str,
              now: datetime) -> int:
    """Replay the old lead's events onto the new address, then move the old lead away.

    The events keep their sources and idempotency keys, so the replay is exact and a retry
    after a failure part-way counts nothing twice; the old lead is deleted only once every
    event stands on the new one. Returns how many events moved.

    The deletion keeps a moved record under the old lead id (`store.move_away`: a
    `Tombstone` with `moved_to`, no address), written in the same step, so that every later
    write for the old address lands on the new lead (`service/writes.py`): a provider's
    retry of an old-address event (same idempotency key) is a duplicate there, and a new
    old-address event scores there, instead of starting a lead under the old id. Records
    that pointed at the old lead now point at the new one. Erasing the new address deletes
    the moved records pointing at it (an old-address event then starts afresh, like any
    unknown address); erasing the old address replaces its record with a tombstone. The
    record expires with tombstones (`TOMBSTONE_KEPT`). A retry of the `upemail` replays
    nothing and writes the same record again.
    """
    old_id, new_id = lead_id_for(old_email), lead_id_for(new_email)
    if old_id == new_id:
        return 0
    address = normalise_email(new_email)
    events = [EVENT_ADAPTER.validate_python({**entry.event, "email": address})
              for entry in store.history(old_id) if entry.event]
    if events:  # on the new lead whatever records its address has (a move back here)
        apply_events(store, new_id, address, events, rules, now, follow_moves=False)
    if events or store.get_lead(new_id) is not None:
        store.move_away(old_id, new_id, now)
    else:  # nothing to move to: an old-address event may start a lead again
        store.erase(old_id)
    logs.info("lead moved to a new address", lead_id=old_id, new_lead_id=new_id,
              events=len(events))
    return len(events)
