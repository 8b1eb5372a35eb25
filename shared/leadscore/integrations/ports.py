"""The two ports of sales handover, and the plain records that cross them.

`Notifier` tells people (Slack today); `CrmSync` writes the score into a CRM (HubSpot
today). Salesforce or Pipedrive follow as one module each implementing the same protocol.
Both raise the same two typed errors, so the outbox can decide without knowing the system:
`RetryableDelivery` (try again, not before `retry_after_s`) or `PermanentDelivery` (the
same request will never succeed: log it, mark it, move on).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from leadscore.domain.defaults import empty_list


class DeliveryError(Exception):
    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the receiver's HTTP status, when it answered


class RetryableDelivery(DeliveryError):
    """A transient failure (429, 5xx, timeout): the same request may succeed later."""

    def __init__(self, reason: str, retry_after_s: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(reason, status)
        self.retry_after_s = retry_after_s


class PermanentDelivery(DeliveryError):
    """The receiver refused this request for good (bad payload, revoked hook, no access)."""


# The dashboard's overview imports this module for `Reason` (cards.top_reasons) on every
# request; the other records are built only by a configured Slack, CRM or email-tool sync,
# so their validators are built on their first use, not at the dashboard's cold start.
_ON_FIRST_USE = ConfigDict(defer_build=True)


class Reason(BaseModel):
    """One reason the lead is where it is, in plain words, with its points now."""

    text: str
    points: float
    count: int = 1  # how many history items said it (six opens are one reason)


class Activity(BaseModel):
    model_config = _ON_FIRST_USE

    at: datetime
    text: str


class LeadCard(BaseModel):
    """What a person needs to act on a stage change. Built by `cards.lead_card`."""

    model_config = _ON_FIRST_USE

    lead_id: str
    change_id: str
    name: str | None = None
    company: str | None = None
    job_title: str | None = None
    email: str | None = None  # only when the deployment allows emails in messages
    score: float
    fit_score: float
    engagement_score: float
    grade: str
    stage_before: str
    stage_after: str
    changed_at: datetime
    reasons: list[Reason] = Field(default_factory=empty_list)
    activities: list[Activity] = Field(default_factory=empty_list)
    dashboard_url: str | None = None


class ScoreRecord(BaseModel):
    """The score of one lead as a CRM stores it. Built by `cards.score_record`."""

    model_config = _ON_FIRST_USE

    lead_id: str
    email: str
    score: float
    fit_score: float
    engagement_score: float
    grade: str
    stage: str
    top_reasons: str
    scored_at: datetime


class BatchResult(BaseModel):
    """Records the CRM refused one by one (lead id -> why); every other record is stored."""

    model_config = _ON_FIRST_USE

    rejected: dict[str, str] = Field(default_factory=dict)
    # records not stored under an error that names no record: not refused for good (a
    # problem of the whole call), so sent again by the next run
    unnamed: dict[str, str] = Field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, card: LeadCard) -> None:
        """Send one stage-change card; raises RetryableDelivery or PermanentDelivery."""
        ...


@dataclass(frozen=True)
class NamedSink:
    """A hand-over sink (service/handover.py): `send` takes one stage-change message and
    raises RetryableDelivery (`retry_after_s` or a 429 ends its tries for the sweep) or
    PermanentDelivery (never sent this change again); any other exception is retryable.
    `name` is what a change remembers it by (`StageChange.delivered_to`, `refused_by`), so it
    stays the same across deployments and holds no secret (a webhook URL is hashed)."""

    name: str
    send: Callable[[dict[str, Any]], None]

    def __call__(self, message: dict[str, Any]) -> None:
        self.send(message)


class CrmSync(Protocol):
    max_batch: int

    def upsert(self, records: Sequence[ScoreRecord]) -> BatchResult:
        """Create or update at most `max_batch` records. A whole-batch failure raises
        RetryableDelivery or PermanentDelivery; per-record refusals come back in the result."""
        ...

    def erase(self, email: str) -> bool:
        """Delete the contact with this address for good (the person was erased): True when
        one was deleted, False when the CRM had none (done too). Raises RetryableDelivery or
        PermanentDelivery."""
        ...
