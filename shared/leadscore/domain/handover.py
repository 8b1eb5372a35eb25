"""Stage changes to hand over to sales: recorded with the lead's write, delivered after.

A change is written in the same atomic commit as the stage it reports (an outbox), so none
is lost if the process dies before delivering it, and its id is stable (lead, stages and
the moment), so the same change found twice is stored, and sent, once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from leadscore.domain.outbox import StageChange
from leadscore.domain.state import LeadState

__all__ = ["StageChange", "stage_change"]


def stage_change(before: LeadState | None, after: LeadState, now: datetime) -> StageChange | None:
    """The change to hand over, if the stored stage moved (a new lead starts at `lead`)."""
    old = before.stage if before is not None else "lead"
    if old == after.stage:
        return None
    key = f"{after.lead_id}|{old}|{after.stage}|{now.isoformat()}"
    return StageChange(id="h_" + hashlib.sha256(key.encode()).hexdigest()[:32],
                       lead_id=after.lead_id, email=after.email, stage_before=old,
                       stage_after=after.stage, score=after.score, grade=after.grade, at=now,
                       next_attempt_at=now)
