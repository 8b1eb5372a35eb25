"""Moving a lead to a new address (Mailchimp's `upemail`) without losing its history."""

from __future__ import annotations

from datetime import datetime

from leadscore import logs
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.identity import lead_id_for, normalise_email
from leadscore.domain.rules import Rules
from leadscore.service.ingest import ingest
from leadscore.store.port import LeadStore


def move_lead(store: LeadStore, rules: Rules, old_email: str, new_email: str,
              now: datetime) -> int:
    """Replay the old lead's events onto the new address, then erase the old lead.

    The events keep their sources and idempotency keys, so the replay is exact and a retry
    after a failure part-way counts nothing twice; the old lead is erased only once every
    event stands on the new one. Returns how many events moved.
    """
    old_id, new_id = lead_id_for(old_email), lead_id_for(new_email)
    if old_id == new_id:
        return 0
    events = [EVENT_ADAPTER.validate_python({**entry.event, "email": normalise_email(new_email)})
              for entry in store.history(old_id) if entry.event]
    if events:
        ingest(store, rules, events, now)
    store.erase(old_id)
    logs.info("lead moved to a new address", lead_id=old_id, new_lead_id=new_id,
              events=len(events))
    return len(events)
