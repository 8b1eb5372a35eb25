"""`leadscore rekey`: move leads stored under the unkeyed ids of earlier releases to their
keyed ids (DESIGN.md rule 11), so new events and old ones count on one lead again.

Streaming (a page of leads at a time, in lead id order), resumable (`after_id`: the report's
`last_lead_id`, printed as the job goes), idempotent (a keyed lead is left alone, a move
that crashed part-way is finished by the next run) and atomic per lead (the store's
`rekey_lead`). When events for the address arrived after the upgrade, a lead exists under
the new id too: the two are merged by replaying every stored event of both under the rules
in force (every fact comes from an event, so this is exact), keeping the earlier creation
time and continuing from the newer lead's stage: if the merged facts move that stage, the
hand-over is recorded with the merge, and a "merged" history entry says what happened
(both in the move's transaction), like any other stage change.
A legacy lead whose keyed id holds a moved record (Mailchimp's `upemail` came before the
re-key) is merged into the lead its address moved to, where the keyed id's writes go.
Leads whose id is neither the keyed one nor the legacy one of their address are counted as
`unrecognised` and left alone (a changed `LEADSCORE_ID_KEY` is not something to guess).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from leadscore import logs
from leadscore.domain.handover import stage_change
from leadscore.domain.identity import lead_id_for, legacy_lead_id
from leadscore.domain.rebuild import replayed
from leadscore.domain.rules import Rules
from leadscore.domain.state import HistoryEntry, HistoryItem, LeadState, Order
from leadscore.errors import ConfigError
from leadscore.service.outbound_sync import lead_pages
from leadscore.store.port import LeadStore, Merge, Merged, Rekeyable

PAGE = 200


class RekeyReport(BaseModel):
    scanned: int = 0
    moved: int = 0  # legacy leads moved to their keyed id (with dry_run: that would move)
    merged: int = 0  # of those, merged into a lead that already had the keyed id
    current: int = 0  # already under their keyed id
    unrecognised: int = 0  # neither keyed nor legacy: left alone
    dry_run: bool = False
    last_lead_id: str | None = None  # pass as `after_id` to resume after an interruption


def merger(new_id: str, rules: Rules, now: datetime) -> Merge:
    """The pure merge `rekey_lead` calls inside its transaction."""

    def merge(old: LeadState, target: LeadState | None, history: list[HistoryEntry],
              records: dict[str, Order]) -> Merged:
        if target is None:  # the same lead under its new name: nothing to recompute
            return Merged(old.model_copy(update={"lead_id": new_id}), records)
        rebuilt: dict[str, Order] = {}
        lead = replayed(target, history, rules, now, rebuilt)
        starts = [t for t in (old.created_at, target.created_at) if t is not None]
        lead.created_at = min(starts) if starts else None
        change = stage_change(target, lead, now)
        delta = round(lead.score - target.score, 4)
        reason = f"merged with the lead stored under {old.lead_id} (earlier release)"
        if change is not None:
            reason += f"; stage {target.stage} -> {lead.stage}"
        entry = HistoryEntry(entry_id=f"merged-{old.lead_id}", kind="merged", at=now,
                             recorded_at=now, delta=delta, reason=reason,
                             rules_version=rules.version,
                             items=[HistoryItem(rule="merged", points=delta, reason=reason)])
        return Merged(lead, {**records, **rebuilt}, [entry], [change] if change else [])

    return merge


def rekey_leads(store: LeadStore, rules: Rules, now: datetime, *, dry_run: bool = False,
                after_id: str | None = None, page: int = PAGE,
                on_page: Callable[[RekeyReport], None] | None = None) -> RekeyReport:
    if not isinstance(store, Rekeyable):
        raise ConfigError(f"{type(store).__name__} cannot re-key leads")
    report = RekeyReport(dry_run=dry_run, last_lead_id=after_id)
    for leads in lead_pages(store, None, after_id, page):
        for lead in leads:
            report.scanned += 1
            _one(store, rules, now, lead, report)
        report.last_lead_id = leads[-1].lead_id
        if on_page is not None:
            on_page(report)
    return report  # the command prints it (a log line would break its --json output)


def _one(store: LeadStore, rules: Rules, now: datetime, lead: LeadState,
         report: RekeyReport) -> None:
    new_id = lead_id_for(lead.email)
    if lead.lead_id == new_id:
        report.current += 1
        return
    if lead.lead_id != legacy_lead_id(lead.email):
        report.unrecognised += 1
        return
    moved = store.tombstone(new_id)
    if moved is not None and moved.moved_to is not None:  # the address moved (`upemail`)
        if store.get_lead(moved.moved_to) is None:  # before re-keying: it goes where it went
            return  # a move still running (or undone): left for a later run
        new_id = moved.moved_to
    merging = store.get_lead(new_id) is not None
    if not report.dry_run:
        assert isinstance(store, Rekeyable)
        if not store.rekey_lead(lead.lead_id, new_id, merger(new_id, rules, now)):
            return  # moved by a concurrent run meanwhile
        logs.log(logging.DEBUG, "lead re-keyed", lead_id=lead.lead_id, new_lead_id=new_id,
                 merged=merging)
    report.moved += 1
    report.merged += int(merging)

