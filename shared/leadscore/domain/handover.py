"""Stage changes to hand over to sales: recorded with the lead's write, delivered after.

A change is written in the same atomic commit as the stage it reports (an outbox), so none
is lost if the process dies before delivering it, and its id is stable (lead, stages and
the moment), so the same change found twice is stored, and sent, once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel

from leadscore.domain.state import LeadState


class StageChange(BaseModel):
    id: str
    lead_id: str
    email: str
    stage_before: str
    stage_after: str
    score: float
    grade: str
    at: datetime
    attempts: int = 0
    next_attempt_at: datetime
    delivered: bool = False

    def message(self) -> dict[str, object]:
        """What receivers get; `id` lets them drop a redelivery."""
        return {"id": self.id, "lead_id": self.lead_id, "email": self.email,
                "stage_before": self.stage_before, "stage_after": self.stage_after,
                "score": round(self.score, 2), "grade": self.grade, "at": self.at.isoformat()}


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
