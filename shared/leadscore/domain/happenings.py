"""Domain events: what a use case reports as having happened, for the composition root to
deliver (`Container.dispatch`) instead of each entry point handing things over itself.

They are facts about the past, not requests: a stage change is already recorded in the
outbox with the lead's write, a flagged non-opener is already stored as flagged.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# Plain dataclasses, not pydantic models: only use cases build them, for `Container.dispatch`
# in the same process; nothing reads them from outside or from storage (issue 20: a model's
# class costs every cold start about twice a dataclass's).


@dataclass(kw_only=True)
class StageChanged:
    """A lead's stored stage moved; its handover waits in the outbox."""

    kind: Literal["stage_changed"] = "stage_changed"
    lead_id: str
    stage_before: str | None  # None: the lead was just created
    stage_after: str


@dataclass(kw_only=True)
class NonOpenerFlagged:
    """The decay job flagged a lead as a non-opener (to suppress or remove from ESP lists)."""

    kind: Literal["non_opener_flagged"] = "non_opener_flagged"
    lead_id: str
    email: str
    at: datetime


@dataclass(kw_only=True)
class LeadScored:
    """A write applied events to a lead and stored its new score, grade and stage, with no
    stage change (a `StageChanged` says the lead was scored too). The CRM sync decides
    whether the move matters (`integrations/crm_sync.sync_matters`)."""

    kind: Literal["lead_scored"] = "lead_scored"
    lead_id: str


DomainEvent = StageChanged | NonOpenerFlagged | LeadScored
