"""Deliver scores to the email tools: one sweep per tool, batched, retried, once per change.

Semantics (issue 22). The sync record of each (tool, lead) holds the member the tool last
accepted (`store/port.py` `EspSyncRecords`). A sweep compares every lead's current view
with it and sends only the differences, in batches of the tool's size; a batch is recorded
only after the tool accepted it. So:
- nothing is lost: a crash between the lead's write and the sync, or a sweep that never
  ran, leaves a difference the next sweep finds (no event has to survive);
- each change reaches the tool once in effect: a 429/5xx/network failure records nothing
  and the next attempt (backoff here, then the next sweep) sends the same batch; a crash
  after the tool accepted but before the record is written resends the same values, and
  every call made is idempotent (set fields, tag active/inactive, archive, add to a list),
  so the tool ends in the same state. Delivery is at-least-once; the effect exactly-once.
- a refusal is kept for good only for a member the tool named (`EspRunReport.rejected`):
  a refused key, a wrong URL, a misconfiguration refusing every member, or a batch refused
  whole is logged and sent again (`failed`, `pending`); a batch refused whole for good is
  halved until the member that spoils it stands alone (`crm_sync.send_in_batches`);
- the clean-up runs when the lead's non-opener flag flips on (a `removing` change), and
  the way back when it flips off (a human open; a resubscribe) as each tool allows.
Never called inside a provider's request: the decay job and the CLI run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from leadscore import logs
from leadscore.domain.rules import Rules
from leadscore.domain.segments import Segments, segments_of
from leadscore.domain.state import HistoryEntry, HistoryItem, LeadState
from leadscore.integrations.crm_sync import Mark, send_in_batches
from leadscore.integrations.esp.port import EspMember, EspSync, MemberChange, member_for
from leadscore.integrations.http_out import with_retries
from leadscore.integrations.ports import BatchResult, PermanentDelivery, RetryableDelivery
from leadscore.service.outbound_sync import erased_since_read, sync_records_of
from leadscore.service.outbound_sync import lead_pages as _pages  # shared with the CRM sync
from leadscore.store.port import EspSynced, EspSyncRecords, LeadSnapshot, LeadStore, LeadWrite

# A member alone refused with one of these is refused for good only when other members of
# the page got through: the email tools answer 400 to a misconfigured list, field or
# attribute (Brevo's `document_not_found`, SendGrid's unknown `list_ids`) as much as to one
# bad member, and a misconfiguration must not keep every lead back until it changes.
DOUBTFUL = (400, 409, 422)


class EspRunReport(BaseModel):
    tool: str
    examined: int = 0
    changed: int = 0
    synced: int = 0
    removed: int = 0
    restored: int = 0
    # members the tool named in its refusal (a per-member error, or a batch refused for
    # good halved down to that member alone while others got through): kept in the sync
    # record and not sent again until the lead changes (reasons logged without emails)
    rejected: int = 0
    # members refused with their whole batch (a 404, a doubtful refusal no member of the
    # page got past, an error naming none): logged, nothing kept, sent again next sweep
    failed: int = 0
    refused_earlier: int = 0  # refused for good by an earlier sweep and unchanged since
    pending: int = 0  # left for the next run (the tool asked to wait, refused the key, failed)
    last_lead_id: str | None = None  # resume point of a full resync
    retry_after_s: float | None = None
    error: str | None = None


def sync_tool(store: LeadStore, esp: EspSync, rules: Rules, now: datetime, *,
              lead_ids: Sequence[str] | None = None, after_id: str | None = None,
              cleanup: bool = True, force: bool = False, page: int = 500,
              attempts: int = 3, sleep: Callable[[float], None] = time.sleep,
              on_progress: Callable[[int], None] | None = None) -> EspRunReport:
    """Send `esp` every lead whose member differs from what it accepted last (`force`: every
    lead). `lead_ids` limits the sweep; `after_id` resumes a full one."""
    return sync_tools(store, [esp], rules, now, lead_ids=lead_ids, after_id=after_id,
                      cleanup=cleanup, force=force, page=page, attempts=attempts,
                      sleep=sleep, on_progress=on_progress)[0]


def sync_tools(store: LeadStore, esps: Sequence[EspSync], rules: Rules, now: datetime, *,
               lead_ids: Sequence[str] | None = None, after_id: str | None = None,
               cleanup: bool = True, force: bool = False, page: int = 500,
               attempts: int = 3, sleep: Callable[[float], None] = time.sleep,
               on_progress: Callable[[int], None] | None = None,
               isolate: bool = False) -> list[EspRunReport]:
    """`sync_tool` for several tools in one pass: each page of leads is read once and
    compared with every tool's records. A tool that must wait (429, 5xx) stops there, the
    others go on. `isolate`: an unexpected error in one tool is logged and stops that tool
    only (the scheduled job); otherwise it propagates."""
    records = sync_records_of(store)
    segments = segments_of(rules)
    reports = [EspRunReport(tool=esp.name) for esp in esps]
    going = list(range(len(esps)))
    for leads in _pages(store, lead_ids, after_id, page):
        for i in list(going):
            try:
                done = _sync_page(store, records, esps[i], leads, segments, rules, now,
                                  reports[i], cleanup, force, attempts, sleep)
            except Exception as exc:
                if not isolate:
                    raise
                logs.exception("esp sync failed; differences stay for the next sweep",
                               tool=esps[i].name)
                reports[i].error, done = type(exc).__name__, False
            if not done:
                going.remove(i)
        if not going:
            break
        if on_progress:
            on_progress(len(leads))
    return reports


def _sync_page(store: LeadStore, records: EspSyncRecords, esp: EspSync,
               leads: list[LeadState], segments: Segments, rules: Rules, now: datetime,
               report: EspRunReport, cleanup: bool, force: bool, attempts: int,
               sleep: Callable[[float], None]) -> bool:
    """One page of leads for one tool; False: the tool asked to wait, or refused the key
    (the rest is pending)."""
    last = records.esp_synced(esp.name, [lead.lead_id for lead in leads])
    changes = []
    for lead in leads:
        wanted = member_for(lead, esp.name, segments, cleanup)
        record = last.get(lead.lead_id)
        if (not force and record is not None and record.refused is not None
                and record.refused == _stored(wanted)):
            report.refused_earlier += 1  # sent again once the lead changes
            continue
        accepted = _accepted(record, lead.email)
        if force or accepted != wanted:
            changes.append(MemberChange(before=accepted, after=wanted))
    report.examined += len(leads)
    report.changed += len(changes)
    result = send_in_batches(_patient(esp, attempts, sleep), changes, _lead_id,
                             esp.max_batch, _recorder(store, records, esp, changes, rules, now,
                                                      report), doubtful=DOUBTFUL)
    report.synced += len(result.synced)
    report.rejected += len(result.rejected)
    report.failed += len(result.failed)
    if result.error:
        report.error = result.error
    if result.pending:
        report.pending += len(result.pending)
        report.retry_after_s = result.retry_after_s
        logs.warning("esp sync deferred", tool=esp.name, members=len(result.pending),
                     reason=result.error)
        return False
    report.last_lead_id = leads[-1].lead_id
    return True


def _lead_id(change: MemberChange) -> str:
    return change.after.lead_id


def _patient(esp: EspSync, attempts: int,
             sleep: Callable[[float], None]) -> Callable[[list[MemberChange]], BatchResult]:
    """`esp.push`, each batch retried with backoff. A refusal no batch can pass (the key
    refused, 401/403, or no answer saying why: the client missing, the setup not run)
    stops the tool's sweep with the rest pending, as the CRM sync does."""
    def push(batch: list[MemberChange]) -> BatchResult:
        try:
            return with_retries(lambda: esp.push(batch), attempts=attempts, sleep=sleep)
        except PermanentDelivery as exc:
            if exc.status is None or exc.status in (401, 403):
                raise RetryableDelivery(exc.reason, None, exc.status) from None
            raise
    return push


def _stored(member: EspMember) -> dict[str, Any]:
    """A member as its sync record keeps it: without the email (the lead has it)."""
    return member.model_dump(exclude={"email"})


def _accepted(record: EspSynced | None, email: str) -> EspMember | None:
    """What the tool accepted last (None: never synced, or only ever refused)."""
    if record is None or not record.member:
        return None
    return EspMember.model_validate({**record.member, "email": email})


def _recorder(store: LeadStore, records: EspSyncRecords, esp: EspSync,
              changes: list[MemberChange], rules: Rules, now: datetime,
              report: EspRunReport) -> Mark:
    """Records each batch the tool accepted, as soon as it did; keeps a refusal only for
    a member the tool named (the CRM sync's rule, `integrations/crm_sync.py`)."""
    by_id = {c.after.lead_id: c for c in changes}

    def mark(synced: list[str], rejected: dict[str, str], failed: dict[str, str]) -> None:
        erased = erased_since_read(store, [*synced, *rejected])
        for lead_id in erased:
            logs.warning("esp member erased during the sweep; its contact in the tool is "
                         "yours to delete there", tool=esp.name, lead_id=lead_id)
        rejected = {i: why for i, why in rejected.items() if i not in erased}
        for lead_id, why in rejected.items():  # the lead id is a keyed hash; the reason
            logs.error("esp member refused for good; not retried until the lead changes",
                       tool=esp.name, lead_id=lead_id, reason=why)  # is the tool's code
        if rejected:  # the record keeps what the tool last accepted, beside what it refused
            records.record_esp_synced([EspSynced(
                tool=esp.name, lead_id=i, member=_stored(c.before) if c.before else {},
                synced_at=now, refused=_stored(c.after), refused_reason=why[:120])
                for i, why in rejected.items() for c in [by_id[i]]])
        if failed:  # nothing kept: the next sweep sends them again
            logs.error("esp batch refused; sent again by the next sweep", tool=esp.name,
                       members=len(failed), reason=next(iter(failed.values())))
        accepted = [by_id[i] for i in synced if i not in erased]
        for change in accepted:  # the lead's history says what the clean-up did, and when
            if change.removing or change.restoring:
                record_action(store, esp, change, rules, now)
                report.removed += change.removing
                report.restored += change.restoring
        records.record_esp_synced([EspSynced(tool=esp.name, lead_id=c.after.lead_id,
                                             member=_stored(c.after), synced_at=now)
                                   for c in accepted])

    return mark


def record_action(store: LeadStore, esp: EspSync, change: MemberChange, rules: Rules,
                  now: datetime) -> None:
    """A 0-point history entry: the lead's timeline shows the clean-up beside the scores
    (rescoring ignores it: it carries no event)."""
    what = "removed" if change.removing else "restored"
    text = (f"{esp.name}: non-opener {what} ({esp.removal})" if change.removing else
            f"{esp.name}: back on the list after an open or resubscribe")
    # one entry per tool, action and day: a sweep repeated after a crash adds no second one
    entry_id = f"esp:{esp.name}:{what}:{now.date().isoformat()}"
    entry = HistoryEntry(entry_id=entry_id, kind=f"esp_{what}", at=now, recorded_at=now,
                         delta=0, reason=text, rules_version=rules.version,
                         source=esp.name, items=[HistoryItem(rule=f"esp.{what}", points=0,
                                                             reason=text)])

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, None]:
        if snap.lead is None or entry_id in snap.known:
            return None, None
        return LeadWrite(lead=snap.lead, fields="view", history=[entry]), None

    store.transact(change.after.lead_id, [entry_id], plan)


class CleanupPreview(BaseModel):
    tool: str
    action: str
    would_remove: int = 0
    emails: list[str] = Field(default_factory=list)


def cleanup_preview(store: LeadStore, esp: EspSync, rules: Rules, *,
                    show_emails: bool = False, page: int = 500) -> CleanupPreview:
    """Who the next sweep would take off `esp`'s list: flagged non-openers it has not removed."""
    records = sync_records_of(store)
    segments = segments_of(rules)
    preview = CleanupPreview(tool=esp.name, action=esp.removal)
    after: tuple[float, str] | None = None
    while leads := store.list_leads(non_opener=True, limit=page, after=after):
        last = records.esp_synced(esp.name, [lead.lead_id for lead in leads])
        for lead in leads:
            before = last.get(lead.lead_id)
            if before is None or not before.member.get("removed"):
                change = MemberChange(before=None, after=member_for(lead, esp.name, segments,
                                                                    True))
                preview.would_remove += change.after.removed
                if show_emails and change.after.removed:
                    preview.emails.append(lead.email)
        after = (leads[-1].score, leads[-1].lead_id)
        if len(leads) < page:
            break
    return preview
