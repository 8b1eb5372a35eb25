"""A stage change waiting to be handed over to sales: the outbox record.

Plain data, so the store can keep it without knowing how stages are decided
(`domain/handover.py` decides them); written in the same atomic commit as the stage it
reports, delivered after.

`delivered` means closed: nothing more will be sent. A change closes when every sink has it
(`delivered_to`) or refused it for good (`refused_by`), when its lead was erased, or when
delivery gave up (`given_up`); a closed change keeps no address and carries `expires_at`,
when the store may delete it (Firestore's TTL policy; SQLite and memory purge it). Records
stored before these fields existed read as none delivered, none refused.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from leadscore.domain.defaults import empty_list


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
    delivered: bool = False  # closed (see above), not necessarily accepted by every sink
    delivered_to: list[str] = Field(default_factory=empty_list)  # sink names that accepted it
    refused_by: list[str] = Field(default_factory=empty_list)  # sink names that refused it
    given_up: bool = False  # closed with a sink that neither accepted nor refused it
    closed_at: datetime | None = None
    expires_at: datetime | None = None  # a closed change: deleted after this

    def message(self) -> dict[str, object]:
        """What receivers get; `id` lets them drop a redelivery."""
        return {"id": self.id, "lead_id": self.lead_id, "email": self.email,
                "stage_before": self.stage_before, "stage_after": self.stage_after,
                "score": round(self.score, 2), "grade": self.grade, "at": self.at.isoformat()}
