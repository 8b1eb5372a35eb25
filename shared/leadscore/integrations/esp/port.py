"""The email-tool sync port and what crosses it.

`EspMember` is what one tool should show for one lead: the rounded score, fit, engagement,
stage, grade, segment band and frequency hint, and whether the six-month clean-up removes
the lead. The service keeps the member each tool last accepted (the sync record) and sends
a `MemberChange` (last accepted -> wanted) only when they differ, so the tool can add the
new stage's tag and drop the old one, and run the removal (or the way back) exactly when
the flag flips. Failures are the integrations' two errors: `RetryableDelivery` (429, 5xx,
network: nothing of the batch is recorded, the next run sends it again) and
`PermanentDelivery`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from leadscore.domain.segments import Segments
from leadscore.domain.state import LeadState
from leadscore.integrations.ports import BatchResult

RemovalAction = Literal["archive", "unsubscribe", "tag", "list", "blocklist", "suppress"]
NON_OPENER_TAG = "leadscore-non-opener"


class EspMember(BaseModel):
    lead_id: str
    email: str
    score: int
    fit: int
    engagement: int
    stage: str
    grade: str
    band: str
    frequency: str
    band_target: str | None = None  # the band's tag or list id in this tool
    removed: bool = False  # a non-opener the clean-up takes off the list

    def fields(self) -> tuple[object, ...]:
        return (self.score, self.fit, self.engagement, self.stage, self.grade, self.band,
                self.frequency)


class MemberChange(BaseModel):
    before: EspMember | None  # what the tool accepted last (None: never synced)
    after: EspMember

    @property
    def fields_changed(self) -> bool:
        return self.before is None or self.before.fields() != self.after.fields()

    @property
    def tags_changed(self) -> bool:
        return self.before is None or (self.before.stage, self.before.band_target) != (
            self.after.stage, self.after.band_target)

    @property
    def removing(self) -> bool:
        return self.after.removed and not (self.before is not None and self.before.removed)

    @property
    def restoring(self) -> bool:
        return self.before is not None and self.before.removed and not self.after.removed


class SetupReport(BaseModel):
    created: list[str] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)


class EspSync(Protocol):
    name: str
    max_batch: int
    removal: str  # the configured clean-up action

    def setup(self) -> SetupReport:
        """Create the fields (and lists) the sync writes, if missing; safe to run again."""
        ...

    def push(self, changes: Sequence[MemberChange]) -> BatchResult:
        """Apply at most `max_batch` changes. Raises RetryableDelivery/PermanentDelivery for
        the whole batch; members the tool refused one by one come back in the result."""
        ...


def member_for(lead: LeadState, tool: str, segments: Segments, cleanup: bool) -> EspMember:
    """What `tool` should show for `lead` now (pure)."""
    band = segments.band_for(lead.score, lead.grade, lead.stage, lead.non_opener)
    return EspMember(lead_id=lead.lead_id, email=lead.email, score=round(lead.score),
                     fit=round(lead.fit_score), engagement=round(lead.engagement_score),
                     stage=lead.stage, grade=lead.grade, band=band.name,
                     frequency=band.frequency, band_target=band.target(tool),
                     removed=cleanup and lead.non_opener and not resubscribed_since(lead))


def resubscribed_since(lead: LeadState) -> bool:
    """The person subscribed again after the flag: the clean-up gives way to their wish."""
    since, at = lead.non_opener_since, lead.email_status_at
    return (lead.email_status == "active" and since is not None and at is not None
            and at > since)


def stage_tag(stage: str) -> str:
    return f"leadscore-{stage}"
