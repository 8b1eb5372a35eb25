"""Which score changes go to the CRM, and sending them in batches without loss or repeats.

`sync_matters` is pure: a CRM is written only when what a rep sees there would change
(stage, grade, or a score move of more than LEADSCORE_HUBSPOT_SCORE_STEP), which keeps
well inside HubSpot's rate limits while decay nudges every score daily.

`sync_records` sends pending records in batches of the CRM's size and reports, batch by
batch through `mark`, which records are stored (synced) and which the CRM refused for good.
A batch that fails retryably marks nothing: it and every later batch stay pending, with
the wait the CRM asked for, and the next run sends exactly those records, so each record
reaches the CRM once. A batch refused whole as invalid (400) is halved until the record
that spoils it is alone: one bad address never holds back the other 99.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from leadscore.integrations.ports import (
    CrmSync,
    PermanentDelivery,
    RetryableDelivery,
    ScoreRecord,
)

# (synced, refused for good: records the CRM named, failed: refused with the whole batch or
# by an error naming no record, so sent again by the next run)
Mark = Callable[[list[str], dict[str, str], dict[str, str]], None]


def sync_matters(last_sent: ScoreRecord | None, current: ScoreRecord, step: float) -> bool:
    """True when the CRM should get `current`, given the record it got last (None: never)."""
    if last_sent is None:
        return True
    return (last_sent.stage != current.stage or last_sent.grade != current.grade
            or abs(current.score - last_sent.score) > step)


class SyncReport(BaseModel):
    synced: list[str] = Field(default_factory=list)  # lead ids the CRM stored
    rejected: dict[str, str] = Field(default_factory=dict)  # lead id -> why, for good
    failed: dict[str, str] = Field(default_factory=dict)  # lead id -> why; sent again next run
    pending: list[str] = Field(default_factory=list)  # lead ids to send again later
    retry_after_s: float | None = None
    status: int | None = None  # the CRM's answer that left records pending (429: its limit)
    error: str | None = None


def sync_records(crm: CrmSync, records: Sequence[ScoreRecord],
                 mark: Mark | None = None) -> SyncReport:
    latest: dict[str, ScoreRecord] = {}
    for record in records:  # one lead queued twice is sent once, with its latest score
        latest.pop(record.lead_id, None)
        latest[record.lead_id] = record
    queue = list(latest.values())
    size = max(1, crm.max_batch)
    batches = deque(queue[start:start + size] for start in range(0, len(queue), size))
    report = SyncReport()
    while batches:
        batch = batches.popleft()
        try:
            result = crm.upsert(batch)
        except RetryableDelivery as exc:
            report.pending = [r.lead_id for r in batch] + [r.lead_id for b in batches
                                                            for r in b]
            report.retry_after_s, report.error = exc.retry_after_s, exc.reason
            report.status = exc.status
            return report
        except PermanentDelivery as exc:
            if exc.status == 400 and len(batch) > 1:
                # one bad record refuses the whole batch (HubSpot validates all inputs
                # first): halve it until the bad one stands alone, the rest still go
                half = len(batch) // 2
                batches.extendleft([batch[half:], batch[:half]])
                continue
            # a record refused alone is the one HubSpot named; any other whole-batch refusal
            # (a wrong URL, 409, 413, 422) is the call's problem: one misconfiguration must
            # not keep every lead back for good, so those are sent again next run
            why = dict.fromkeys((r.lead_id for r in batch), exc.reason)
            rejected, failed = (why, {}) if exc.status == 400 else ({}, why)
            synced: list[str] = []
            report.error = exc.reason
        else:
            ids = {r.lead_id for r in batch}
            rejected = {k: v for k, v in result.rejected.items() if k in ids}
            failed = {k: v for k, v in result.unnamed.items() if k in ids and k not in rejected}
            synced = [r.lead_id for r in batch if r.lead_id not in rejected | failed]
        report.synced += synced
        report.rejected.update(rejected)
        report.failed.update(failed)
        if mark is not None:
            mark(synced, rejected, failed)
    return report
