"""A stage change waiting to be handed over to sales: the outbox record.

Plain data, so the store can keep it without knowing how stages are decided
(`domain/handover.py` decides them); written in the same atomic commit as the stage it
reports, delivered after.
"""

from datetime import datetime

from pydantic import BaseModel


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
