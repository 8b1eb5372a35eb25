"""An erased person stays erased in the CRM too: the HubSpot contact goes with the lead.

When a CRM sync is configured, `erase_address` records, before it deletes anything, one
`CrmErasure` per CRM (the address, the only key the CRM knows), not due until `GRACE` has
passed; once the lead is gone it makes them due at once (`release`). So a crash part-way
still deletes the contact (after the grace), and a deletion is never sent before the lead
is gone, when a sweep could still read the lead and upsert it again.

Every erased lead gets one, synced or not: HubSpot can hold a contact without our sync
record (a timeout after it stored a batch, a crash before the mark). `erase_in_crm` claims
the due records (a lease, so workers and the decay job never send one twice at once,
`store/port.py` `OutboxClaims`) and asks the CRM to erase each address: HubSpot is asked
first whether it has a contact with it, and only one found is deleted for good (GDPR
delete by record id; by email, HubSpot would blocklist an address it has no contact for,
and a person who consents again could never be synced). Once done (deleted or none), it
is sent once more after `SETTLE` (an upsert on its way, whose run crashed before its
tombstone check, is deleted too; skipped if the person has consented again since) and
then the record is forgotten. A 429, 5xx or network
failure leaves it for a later sweep with backoff (the decay job's sweep and every CRM sync
run sweep erasures first); a revoked token waits for an operator; a record still undone
after `KEEP` is given up and logged, so no address is kept forever.

One upsert may already be on its way when the lead is erased (it read the lead before): the
sync checks, after the CRM stored each batch, whether any of its leads was erased since the
run began, and records a new erasure for it, which the same run sends
(`crm_outbox.sync_crm`). So a queued or in-flight upsert never leaves the contact behind.
Logs name leads by id; the address is in the request body only, never in a URL or a log.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel

from leadscore import logs
from leadscore.integrations.http_out import with_retries
from leadscore.integrations.ports import CrmSync, PermanentDelivery, RetryableDelivery
from leadscore.service.outbound_sync import clock_of, outbox_of
from leadscore.store.port import CrmErasure, LeadStore

GRACE = timedelta(minutes=5)  # a record whose erasure crashed part-way is due after this
LEASE = timedelta(minutes=15)  # a claimer that dies leaves its records due again then
KEEP = timedelta(days=90)  # the address is not kept longer, even if the CRM never answers
# An upsert that read the lead before its erasure may reach the CRM after the first delete;
# the sync deletes it again when it sees the tombstone after its batch, but a crash or a
# failed read there would leave the contact. So each erasure is sent once more after this,
# longer than any upsert is on its way (a batch with its retries and waits), then forgotten.
SETTLE = timedelta(minutes=15)
MAX_BACKOFF = timedelta(hours=1)
STOP_WAIT = timedelta(minutes=10)  # a refused token: wait for an operator


class CrmErasureReport(BaseModel):
    erased: int = 0  # contacts the CRM deleted
    absent: int = 0  # first passes that found no contact in the CRM (done, nothing deleted)
    repeated: int = 0  # second deletes after SETTLE (an upsert on its way is gone too)
    pending: int = 0  # left for a later sweep
    given_up: int = 0  # refused for good, or older than KEEP (logged by lead id)


def erasure_for(tool: str, lead_id: str, email: str, now: datetime,
                due: datetime) -> CrmErasure:
    return CrmErasure(id=f"{tool}:{lead_id}:{uuid.uuid4().hex[:12]}", tool=tool,
                      lead_id=lead_id, email=email, next_attempt_at=due,
                      expires_at=now + KEEP)


def plan(store: LeadStore, tools: Sequence[str], lead_id: str, email: str,
         now: datetime) -> list[CrmErasure]:
    """Before an erasure: one record per configured CRM, due only after the grace (see
    `release`). Every erased lead gets one, synced or not: the CRM can hold a contact we
    have no sync record for (a timeout after it stored the batch, a crash before the mark),
    and `erase` asks the CRM first, so one it never had costs a read, never a blocklist."""
    items = [erasure_for(tool, lead_id, email, now, now + GRACE) for tool in tools]
    if items:
        outbox_of(store).record_crm_erasures(items)
    return items


def release(store: LeadStore, items: Sequence[CrmErasure], now: datetime,
            erased: bool) -> None:
    """After the erasure: due at once, or forgotten if there was no lead to erase."""
    if not items:
        return
    outbox = outbox_of(store)
    if erased:
        outbox.record_crm_erasures([i.model_copy(update={"next_attempt_at": now})
                                    for i in items])
    else:
        outbox.forget_crm_erasures([i.id for i in items])


def erase_in_crm(store: LeadStore, crms: Mapping[str, CrmSync],
                 now: datetime | Callable[[], datetime], *, attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep,
                 limit: int = 100) -> CrmErasureReport:
    """Send the due erasures of these CRMs (by tool name, "crm:hubspot"). `now`: the clock,
    read again at each claim and backoff (one erasure can take its tries and their waits, so
    a sweep can outlast a lease); each record is claimed, sent and settled on its own.
    With no CRM configured it only forgets the records past their `expires_at`, claimed by
    that time (claimed by due time, the first `limit` due could all be unexpired ones, and
    expired addresses would wait for them, days when more than `limit` are due)."""
    outbox = outbox_of(store)
    clock = clock_of(now)
    report = CrmErasureReport()
    started = clock()  # what is due then: one that fails in this sweep is not tried again
    for _ in range(limit):
        claimed_at = clock()
        claimed = outbox.claim_crm_erasures(started, claimed_at + LEASE, 1,
                                            expired=not crms)
        if not claimed:
            break
        item = claimed[0]
        if claimed_at >= item.expires_at:  # first: with no CRM configured too (no TTL on
            if item.deleted:  # SQLite); its first pass was done: only the repeat is left out
                logs.info("crm erasure done, its repeat left out after its time",
                          crm=item.tool, lead_id=item.lead_id)
            else:
                logs.error("crm erasure given up after its time", crm=item.tool,
                           lead_id=item.lead_id)
                report.given_up += 1
            outbox.forget_crm_erasures([item.id])
            continue
        crm = crms.get(item.tool)
        if crm is None:  # that CRM is not configured here: its lease runs out, untouched
            continue
        if item.deleted and store.get_lead(item.lead_id) is not None:
            outbox.forget_crm_erasures([item.id])  # consented again since: its contact stays
            continue
        deleted, wait = _send(crm, item, attempts, sleep)
        if wait is None and not item.deleted:  # once more after SETTLE, then forgotten
            if deleted:
                report.erased += 1
            else:
                report.absent += 1
            outbox.update_crm_erasures([item.model_copy(update={
                "deleted": True, "next_attempt_at": clock() + SETTLE})])
        elif wait is None:
            report.repeated += 1
            outbox.forget_crm_erasures([item.id])
        elif wait == timedelta(0):
            report.given_up += 1
            outbox.forget_crm_erasures([item.id])
        else:
            report.pending += 1
            outbox.update_crm_erasures([item.model_copy(update={
                "attempts": item.attempts + 1, "next_attempt_at": clock() + wait})])
    return report


def _send(crm: CrmSync, item: CrmErasure, attempts: int,
          sleep: Callable[[float], None]) -> tuple[bool, timedelta | None]:
    """(whether a contact was deleted, None when done; else the wait before the next try,
    zero when it can never succeed)."""
    try:
        deleted = with_retries(lambda: crm.erase(item.email), attempts=attempts, sleep=sleep)
    except RetryableDelivery as exc:
        backoff = min(MAX_BACKOFF, timedelta(minutes=2 ** item.attempts))
        asked = timedelta(seconds=exc.retry_after_s or 0)
        logs.warning("crm erasure deferred", crm=item.tool, lead_id=item.lead_id,
                     reason=exc.reason)
        return False, max(backoff, asked)
    except PermanentDelivery as exc:
        if exc.status in (401, 403):
            logs.error("crm erasure refused: check the token's scopes", crm=item.tool,
                       lead_id=item.lead_id, reason=exc.reason)
            return False, STOP_WAIT
        if exc.status == 404:  # a wrong URL or route: no contact is a 207 on the read
            logs.error("crm erasure not found: check the CRM's URL", crm=item.tool,
                       lead_id=item.lead_id, reason=exc.reason)
            return False, max(STOP_WAIT, min(MAX_BACKOFF,
                                             timedelta(minutes=2 ** item.attempts)))
        logs.error("crm erasure refused for good", crm=item.tool, lead_id=item.lead_id,
                   reason=exc.reason)
        return False, timedelta(0)
    if deleted:
        logs.info("crm contact erased", crm=item.tool, lead_id=item.lead_id)
    else:
        logs.info("crm had no contact to erase", crm=item.tool, lead_id=item.lead_id)
    return deleted, None
