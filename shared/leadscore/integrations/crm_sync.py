"""Which score changes go to the CRM, and sending them in batches without loss or repeats.

`sync_matters` is pure: a CRM is written only when what a rep sees there would change
(stage, grade, or a score move of more than LEADSCORE_HUBSPOT_SCORE_STEP), which keeps
well inside HubSpot's rate limits while decay nudges every score daily.

`sync_records` sends pending records in batches of the CRM's size and reports, batch by
batch through `mark`, which records are stored (synced) and which the CRM refused for good.
A batch that fails retryably marks nothing: it and every later batch stay pending, with
the wait the CRM asked for, and the next run sends exactly those records, so each record
reaches the CRM once. A batch refused whole for good (400, 409, 413, 422: anything but the
token or the URL, 401/403/404) is halved until the record that spoils it is alone: one bad
record never holds back the other 99. One refused alone with 400 is refused for good; with
409/422 only if other records of the run got through (else the call was at fault). When
the first record refused alone so comes while none got through, two other records, drawn at
random, are asked about next, alone; if they are refused too, the rest is left for the next run
(`_probe_first`: a tool refusing every record alike cost one call per record otherwise).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from pydantic import BaseModel, Field

from leadscore.integrations.ports import (
    BatchResult,
    CrmSync,
    PermanentDelivery,
    RetryableDelivery,
    ScoreRecord,
)

CALL_REFUSALS = (401, 403, 404)  # the token or the URL: no record of the batch is at fault
DOUBTFUL = (409, 422)  # a record alone refused so is at fault only if others got through
T = TypeVar("T")
_RANDOM = random.Random()  # which records to ask about: no secret

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
    return send_in_batches(crm.upsert, list(latest.values()), _lead_id, crm.max_batch, mark)


def _lead_id(record: ScoreRecord) -> str:
    return record.lead_id


def send_in_batches(send: Callable[[list[T]], BatchResult], items: Sequence[T],
                    key: Callable[[T], str], size: int, mark: Mark | None = None,
                    doubtful: Collection[int] = DOUBTFUL) -> SyncReport:
    """`send` each batch of at most `size` items (keyed by lead id), halving a batch
    refused whole for good until the item that spoils it stands alone. Shared by the CRM
    sync and the email tools' sync (`service/esp_sync.py`, with 400 among `doubtful`: the
    email tools answer 400 to a misconfigured list or field as much as to a bad member)."""
    queue = list(items)
    size = max(1, size)
    batches = deque(queue[start:start + size] for start in range(0, len(queue), size))
    report = SyncReport()
    unsure: dict[str, str] = {}  # refused alone, doubtful: theirs if others got through
    probes: set[str] | None = None  # see `_probe_first`
    while batches:
        batch = batches.popleft()
        try:
            result = send(batch)
        except RetryableDelivery as exc:
            report.pending = [key(r) for r in batch] + [key(r) for b in batches for r in b]
            report.retry_after_s, report.error = exc.retry_after_s, exc.reason
            report.status = exc.status
            _settle(report, unsure, mark, theirs=False)
            return report
        except PermanentDelivery as exc:
            if len(batch) == 1 and exc.status in doubtful and not report.synced:
                if probes is None:  # the first: ask about two records far from it
                    probes = _probe_first(batches, key)
                elif key(batch[0]) in probes:
                    probes.discard(key(batch[0]))
                    if not probes:  # both refused too: the tool refuses every record
                        unsure[key(batch[0])] = exc.reason
                        _leave_for_next_run(report, batches, key, exc.reason, mark)
                        break
            if exc.status is not None and exc.status not in CALL_REFUSALS and len(batch) > 1:
                # one bad record can refuse the whole batch (HubSpot validates all inputs
                # first; a 409 or 422 for one input; Brevo's batch is all or nothing):
                # halve it until the bad one stands alone, the rest still go
                half = len(batch) // 2
                batches.extendleft([batch[half:], batch[:half]])
                continue
            why = dict.fromkeys((key(r) for r in batch), exc.reason)
            report.error = exc.reason
            if exc.status in doubtful:  # decided at the end (`_settle`)
                unsure.update(why)
                continue
            # a 400 for a record alone is the one HubSpot named; a refusal of the call (401,
            # 403, a wrong URL, no answer at all: never halved) or of a record alone that
            # says nothing of it (413...) must not keep a lead back for good, so those are
            # sent again next run
            rejected, failed = (why, {}) if exc.status == 400 else ({}, why)
            synced: list[str] = []
        else:
            ids = {key(r) for r in batch}
            rejected = {k: v for k, v in result.rejected.items() if k in ids}
            failed = {k: v for k, v in result.unnamed.items() if k in ids and k not in rejected}
            synced = [key(r) for r in batch if key(r) not in rejected | failed]
        report.synced += synced
        report.rejected.update(rejected)
        report.failed.update(failed)
        if mark is not None:
            mark(synced, rejected, failed)
    _settle(report, unsure, mark, theirs=bool(report.synced))
    return report


def _probe_first(batches: deque[list[T]], key: Callable[[T], str]) -> set[str]:
    """After the first record refused alone with a doubtful status while none got through,
    two other records, drawn at random, go next, each alone. If both are refused so too,
    the tool most likely refuses every record alike (a deleted list): halving on would cost
    a call per record (971 for 100 readers), so the rest is left for the next run. If either
    gets through, halving goes on and finds each bad record (two bad records at the front
    held back all the others on every run under a first version of this rule). Drawn at
    random, so a run that happened to draw two bad records is followed by one that does not,
    rather than the same draw every run."""
    rest = [r for b in batches for r in b]
    picks = _RANDOM.sample(rest, min(2, len(rest)))
    chosen = {key(r) for r in picks}
    kept = [[r for r in b if key(r) not in chosen] for b in batches]
    batches.clear()
    batches.extend([[r] for r in picks] + [b for b in kept if b])
    return chosen


def _leave_for_next_run(report: SyncReport, batches: deque[list[T]], key: Callable[[T], str],
                        reason: str, mark: Mark | None) -> None:
    left = dict.fromkeys((key(r) for b in batches for r in b), reason)
    report.failed.update(left)
    if mark is not None and left:
        mark([], {}, left)


def _settle(report: SyncReport, doubtful: dict[str, str], mark: Mark | None,
            theirs: bool) -> None:
    """Records refused alone with a 409/422 are refused for good only when other records
    of the run got through: when none did, the call itself is at fault (a misconfiguration
    answering so to everything) and they are sent again next run."""
    if not doubtful:
        return
    rejected, failed = (doubtful, {}) if theirs else ({}, doubtful)
    report.rejected.update(rejected)
    report.failed.update(failed)
    if mark is not None:
        mark([], rejected, failed)
