"""Scores into the CRM (issue 18), delivered like the email tools' sync (issue 22).

The sync record of ("crm:<name>", lead) holds what the CRM last accepted for the lead
(score, fit, engagement, grade, stage, when scored; never the email). A run compares each
lead's current values with it and sends only the leads where the difference matters to a
rep (`integrations/crm_sync.sync_matters`: the stage or grade changed, or the score moved by
more than the step since the value the CRM shows), upserted by email in batches of the
CRM's size (100 for HubSpot), and records a batch only after the CRM accepted it. So:
- driven by domain events: after a write, `Container.dispatch` queues the scored leads and
  `CrmQueue` syncs them on a background thread, after the provider's request was answered;
  the decay job runs `sync_crm` over every lead (or the ones it changed) as the sweep;
- nothing is lost: a crash between the lead's write and the sync, a rate limit or an outage
  leave a difference the next run finds (no queued id has to survive);
- each change reaches the CRM once: a 429, 5xx or network failure records nothing and is
  retried with backoff (Retry-After and HubSpot's rate-limit window honoured; a longer wait
  is left to the next run), and the next run sends exactly what is still pending. Only a
  crash after the CRM stored a batch and before its record is written sends those values
  again, once: an upsert of the same values leaves the contact as it was;
- a lead whose score moved by less than the step is not sent at all, nor one the CRM
  refused for good until it changes that much (the refusal is kept in its sync record);
- a 429's wait holds every worker's queue (`NOT_BEFORE`), and erased leads' contacts are
  deleted first (`crm_erasure.py`).
Logs carry lead ids (keyed hashes) and counts, never an address.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from leadscore import logs
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState
from leadscore.integrations.cards import score_record
from leadscore.integrations.crm_sync import Mark, sync_matters, sync_records
from leadscore.integrations.http_out import with_retries
from leadscore.integrations.ports import (
    BatchResult,
    CrmSync,
    PermanentDelivery,
    RetryableDelivery,
    ScoreRecord,
)
from leadscore.service.crm_erasure import erase_in_crm, erasure_for
from leadscore.service.outbound_sync import (
    erased_since_read,
    lead_pages,
    outbox_of,
    sync_records_of,
)
from leadscore.store.port import LeadStore, SyncRecord, SyncRecords

HISTORY_LIMIT = 500  # the newest entries hold the reasons worth points now
SENT_FIELDS = ("score", "fit_score", "engagement_score", "grade", "stage", "scored_at")
STOP_WAIT_S = 600.0  # a refused token or missing properties: wait for an operator
MAX_WAIT_S = 30.0  # a longer wait asked by the CRM is not slept: the next run sends
# The CRM's limits are per account, not per process: when it answers 429 and the wait is
# longer than a run sleeps, the time is kept in a sync record under this key (no lead has
# it: ids are "l_" + hex), so the background queue of every worker of `serve --workers N`
# and of every instance waits for it, not only the process told. The decay job's sweep and
# `leadscore hubspot sync` do not wait for it: they run rarely, and meet a 429 themselves.
NOT_BEFORE = "~not-before"


def tool_name(crm_name: str) -> str:
    return f"crm:{crm_name}"


class CrmRunReport(BaseModel):
    crm: str
    examined: int = 0
    changed: int = 0  # leads whose change mattered
    synced: int = 0
    rejected: int = 0  # refused one by one for good (reasons logged without emails)
    failed: int = 0  # refused with their whole batch: sent again by the next run
    erased: int = 0  # contacts of erased leads the CRM deleted (service/crm_erasure.py)
    refused_earlier: int = 0  # refused for good by an earlier run and not changed enough since
    pending: int = 0  # left for the next run (the CRM asked to wait, or failed)
    last_lead_id: str | None = None  # resume point of a full sweep
    retry_after_s: float | None = None
    rate_limited: bool = False  # the CRM answered 429: every worker's queue waits
    error: str | None = None


class _Patient:
    """The CRM, each batch retried with backoff; a refusal no batch can pass (a revoked
    token, properties never set up) stops the run with everything still pending."""

    def __init__(self, crm: CrmSync, attempts: int, sleep: Callable[[float], None]) -> None:
        self.max_batch = crm.max_batch
        self._crm, self._attempts, self._sleep = crm, attempts, sleep

    def erase(self, email: str) -> bool:  # erasures keep their own retries (crm_erasure.py)
        return self._crm.erase(email)

    def upsert(self, records: Sequence[ScoreRecord]) -> BatchResult:
        try:
            return with_retries(lambda: self._crm.upsert(records), attempts=self._attempts,
                                max_wait_s=MAX_WAIT_S, sleep=self._sleep)
        except PermanentDelivery as exc:
            if exc.status in (401, 403) or "does not exist" in exc.reason:
                raise RetryableDelivery(exc.reason, STOP_WAIT_S, exc.status) from None
            raise


def _paused_until(records: SyncRecords, tool: str, now: datetime) -> datetime | None:
    """When the CRM may be called again, if a run of any process was told to wait."""
    found = records.esp_synced(tool, [NOT_BEFORE]).get(NOT_BEFORE)
    until = datetime.fromisoformat(found.member["not_before"]) if found else None
    return until if until is not None and until > now else None


def _as_record(values: dict[str, Any] | None, lead: LeadState) -> ScoreRecord | None:
    """Values kept in a sync record (accepted or refused) as the record they came from."""
    if not values:
        return None
    return ScoreRecord.model_validate({**values, "lead_id": lead.lead_id,
                                       "email": lead.email, "top_reasons": ""})


def _due(record: SyncRecord | None, lead: LeadState, now: datetime, step: float) -> bool:
    """Whether the lead goes to the CRM now: its change since what the CRM accepted matters,
    and the CRM did not refuse values that close already (a refusal is for good: tried again
    only once the lead changes as much as would be sent anyway)."""
    current = score_record(lead, (), now)
    if record is not None and (refused := _as_record(record.refused, lead)) is not None \
            and not sync_matters(refused, current, step):
        return False
    return sync_matters(_as_record(record.member if record else None, lead), current, step)


def _recorder(store: LeadStore, tool: str, crm_name: str, outgoing: dict[str, ScoreRecord],
              last: dict[str, SyncRecord], now: datetime) -> Mark:
    """Records each batch the CRM stored, as soon as it stored it. A lead erased after this
    run read it (a tombstone, and no lead any more: a lead started again with consent has
    one) was upserted from what the run read: the contact it left behind gets an erasure
    of its own (sent by the same run), and no sync record. One tombstone read per contact
    stored, beside its HTTP call; no clocks compared."""
    records = sync_records_of(store)

    def mark(synced: list[str], rejected: dict[str, str], failed: dict[str, str]) -> None:
        erased = erased_since_read(store, [*synced, *rejected])
        if erased:  # refused contacts too: a refusal kept would keep the erased lead's score
            outbox_of(store).record_crm_erasures([erasure_for(
                tool, i, outgoing[i].email, now, now) for i in sorted(erased)])
        rejected = {i: why for i, why in rejected.items() if i not in erased}
        records.record_esp_synced([SyncRecord(
            tool=tool, lead_id=i, synced_at=now,
            member=outgoing[i].model_dump(mode="json", include=set(SENT_FIELDS)))
            for i in synced if i not in erased])
        # a refusal is kept beside what the CRM last accepted, so it is not sent again
        # every run (the reason is the CRM's message without addresses, never the email)
        records.record_esp_synced([SyncRecord(
            tool=tool, lead_id=i, synced_at=now,
            member=last[i].member if i in last else {},
            refused=outgoing[i].model_dump(mode="json", include=set(SENT_FIELDS)),
            refused_reason=why[:120]) for i, why in rejected.items()])
        for lead_id, why in rejected.items():
            logs.error("crm contact refused for good; not sent again until the lead changes",
                       crm=crm_name, lead_id=lead_id, reason=why)
        if failed:  # nothing kept: the next run sends them again
            logs.error("crm batch refused; sent again by the next run", crm=crm_name,
                       contacts=len(failed), reason=next(iter(failed.values())))

    return mark


def sync_crm(store: LeadStore, crm: CrmSync, crm_name: str, rules: Rules, now: datetime, *,
             step: float, lead_ids: Sequence[str] | None = None, after_id: str | None = None,
             force: bool = False, page: int = 500, attempts: int = 3,
             sleep: Callable[[float], None] = time.sleep,
             on_progress: Callable[[int], None] | None = None,
             queued: bool = False,
             clock: Callable[[], datetime]) -> CrmRunReport:
    """Send `crm` every lead (or the named ones) whose change since what it accepted last
    matters (`force`: every lead); `after_id` resumes a full sweep. Erasures of contacts
    (`crm_erasure.py`) due for this CRM go first, and again after the upserts. A 429 that
    leaves leads pending is kept in the store (`NOT_BEFORE`); `queued` (a `CrmQueue` run,
    in any worker) sends nothing before it is over. `clock` (required: a long run's last
    erasure sweep must not claim with the start time, its leases already run out) times
    each erasure's claim and backoff."""
    tool = tool_name(crm_name)
    patient = _Patient(crm, attempts, sleep)
    report = CrmRunReport(crm=crm_name)
    # erasures first: an erased person's contact goes before any upsert of this run
    report.erased = erase_in_crm(store, {tool: crm}, clock, attempts=attempts,
                                 sleep=sleep).erased
    records = sync_records_of(store)
    paused = _paused_until(records, tool, now) if queued else None
    if paused is not None:  # another worker or instance met the CRM's limit: wait too
        report.pending = len(set(lead_ids)) if lead_ids is not None else 0
        report.retry_after_s = (paused - now).total_seconds()
        report.error = "waiting for the CRM's rate limit (met by another run)"
        return report
    _upsert_due(store, crm, crm_name, rules, now, step=step, lead_ids=lead_ids,
                after_id=after_id, force=force, page=page, patient=patient, report=report,
                on_progress=on_progress)
    if report.rate_limited and report.retry_after_s:  # every worker's queue waits too
        records.record_esp_synced([SyncRecord(
            tool=tool, lead_id=NOT_BEFORE, synced_at=now, member={
                "not_before": (now + timedelta(seconds=report.retry_after_s)).isoformat()})])
    # upserts that met an erasure on their way left contacts behind: delete them now
    report.erased += erase_in_crm(store, {tool: crm}, clock, attempts=attempts,
                                  sleep=sleep).erased
    return report


def _upsert_due(store: LeadStore, crm: CrmSync, crm_name: str, rules: Rules,
                now: datetime, *, step: float, lead_ids: Sequence[str] | None,
                after_id: str | None, force: bool, page: int, patient: _Patient,
                report: CrmRunReport,
                on_progress: Callable[[int], None] | None) -> CrmRunReport:
    records = sync_records_of(store)
    tool = tool_name(crm_name)
    for leads in lead_pages(store, lead_ids, after_id, page):
        last = records.esp_synced(tool, [lead.lead_id for lead in leads])
        due = [lead for lead in leads
               if force or _due(last.get(lead.lead_id), lead, now, step)]
        report.examined += len(leads)
        report.changed += len(due)
        going = {lead.lead_id for lead in due}
        report.refused_earlier += sum(1 for i, r in last.items()
                                      if r.refused is not None and i not in going)
        # only the leads that go out pay for reading their history (the top reasons)
        outgoing = {lead.lead_id: score_record(lead, store.history(lead.lead_id, HISTORY_LIMIT),
                                               now, rules) for lead in due}

        result = sync_records(patient, list(outgoing.values()),
                              _recorder(store, tool, crm_name, outgoing, last, now))
        report.synced += len(result.synced)
        report.rejected += len(result.rejected)
        report.failed += len(result.failed)
        if result.pending:
            report.pending += len(result.pending)
            report.retry_after_s, report.error = result.retry_after_s, result.error
            report.rate_limited = result.status == 429
            logs.warning("crm sync deferred", crm=crm_name, contacts=len(result.pending),
                         reason=result.error, retry_after_s=result.retry_after_s)
            return report
        report.last_lead_id = leads[-1].lead_id
        if on_progress:
            on_progress(len(leads))
    return report


class CrmQueue:
    """Leads waiting for a CRM sync in this process, synced on one background thread.

    `add` never waits: a provider's request only queues ids. Ids queued while a run is
    going are taken by the next round of the same thread; after a rate limit nothing is
    sent before the wait the CRM asked for (the ids stay queued for the next `add` or the
    decay job's sweep). Losing the queue (the instance stops) loses nothing: the sweep
    compares every lead with what the CRM accepted."""

    def __init__(self, run: Callable[[list[str]], CrmRunReport],
                 clock: Callable[[], datetime]) -> None:
        self._run, self._clock = run, clock
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._running = False
        self._not_before: datetime | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._future: Future[None] | None = None

    def add(self, lead_ids: Sequence[str]) -> None:
        with self._lock:
            self._pending.update(lead_ids)
            if self._running or not self._pending:
                return
            self._running = True
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="crm-sync")
            self._future = self._executor.submit(self._drain)

    def pending(self) -> list[str]:
        with self._lock:
            return sorted(self._pending)

    def wait(self, timeout_s: float = 30) -> None:
        """Until the current run is over (tests, the CLI)."""
        with self._lock:
            future = self._future
        if future is not None:
            future.result(timeout=timeout_s)

    def _drain(self) -> None:
        while True:
            with self._lock:
                late = self._not_before is not None and self._clock() < self._not_before
                if not self._pending or late:
                    self._running = False
                    return
                ids = sorted(self._pending)
                self._pending.clear()
            try:
                report = self._run(ids)
            except Exception:  # noqa: BLE001 - the sweep finds what this run missed
                logs.exception("crm sync failed; the decay job's sweep retries", leads=len(ids))
                report = CrmRunReport(crm="?", pending=len(ids))
            with self._lock:
                if report.pending:  # the ids already synced are skipped next time
                    self._pending.update(ids)
                    wait = report.retry_after_s if report.retry_after_s else MAX_WAIT_S
                    self._not_before = self._clock() + timedelta(seconds=wait)
