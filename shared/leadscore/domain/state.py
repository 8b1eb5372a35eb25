"""The lead document and its history entries, as stored by every adapter.

A lead holds two kinds of fields:
- *facts*, changed only by events: profile, email status, decay accumulators, cap buckets,
  counters, timestamps and bounded purchase aggregates. Each order is its own record beside
  the lead (a buyer with thousands of orders must not outgrow a document); the lead keeps
  only what scoring needs: per-currency totals and one faded-points accumulator. They are
  written so that the order of events never matters (sums, maxima, minima, and
  last-writer-wins by the event's own time).
- a *view* (score, stage, grade, non-opener flag...) materialised from the facts at
  `scored_at`. The view can always be recomputed exactly from the facts and a moment.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadscore.domain.defaults import empty_list
from leadscore.domain.limits import ProfileValue
from leadscore.domain.movement import ScoreMark

Stage = Literal["lead", "mql", "sql", "customer"]
EmailStatus = Literal["active", "unsubscribed", "bounced", "complained"]
STAGES: tuple[Stage, ...] = ("lead", "mql", "sql", "customer")


class Order(BaseModel):
    """One order, however many events report it; keyed by platform and order id.

    Stored as its own record (not in the lead document); `weight` is what it adds to the
    lead's `purchase_acc[weight_key]`, kept so a later change takes back exactly that."""

    model_config = ConfigDict(extra="ignore")

    amount_minor: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None  # earliest paid report
    reported_at: datetime | None = None  # time of the report whose amount we keep
    refunds: dict[str, int] = Field(default_factory=dict)  # refund id -> minor units
    weight: float = 0.0
    weight_key: str = ""

    @property
    def refunded_minor(self) -> int:
        return sum(self.refunds.values())

    @property
    def net_minor(self) -> int:
        return max(0, (self.amount_minor or 0) - self.refunded_minor)

    @property
    def counts(self) -> bool:
        """A purchase counts while it is paid and not fully refunded."""
        return self.amount_minor is not None and self.paid_at is not None and self.net_minor > 0


class PurchaseTotals(BaseModel):
    """Orders of one currency that count (paid, not fully refunded), in minor units."""

    count: int = 0
    paid_minor: int = 0
    refunded_minor: int = 0
    net_minor: int = 0


class LeadState(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)

    lead_id: str
    email: str
    # facts
    profile: dict[str, ProfileValue] = Field(default_factory=dict)
    profile_at: dict[str, datetime] = Field(default_factory=dict)
    email_status: EmailStatus = "active"
    email_status_at: datetime | None = None
    eng_acc: dict[str, float] = Field(default_factory=dict)
    cap_counts: dict[str, int] = Field(default_factory=dict)
    cap_weights: dict[str, float] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)
    # bounded purchase aggregates; the orders themselves are records of their own
    purchase_totals: dict[str, PurchaseTotals] = Field(default_factory=dict)
    purchase_acc: dict[str, float] = Field(default_factory=dict)  # faded points, by half-life
    # orders that count, per UTC day paid ("2026-11-22": 1): recency bands read the latest
    # exactly even after a refund (one small key per day with a purchase that counts)
    purchase_days: dict[str, int] = Field(default_factory=dict)
    # legacy: leads written before orders had records of their own kept them here; read as
    # before, moved out into records by the next transactional write
    orders: dict[str, Order] = Field(default_factory=dict)
    created_at: datetime | None = None
    last_activity_at: datetime | None = None
    last_open_at: datetime | None = None  # human opens and clicks only
    last_click_at: datetime | None = None
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    # view, materialised at scored_at
    fit_score: float = 0.0
    engagement_score: float = 0.0
    score: float = 0.0
    stage: Stage = "lead"
    stage_since: datetime | None = None  # when the stored stage was entered (hysteresis)
    grade: str = "D4"
    non_opener: bool = False
    non_opener_since: datetime | None = None
    rules_version: str = ""
    rules_hash: str = ""  # Rules.content_hash of the rules this lead was last scored under
    rescored_for: str = ""  # rules version of the last full rescore (resumes a rescore run)
    scored_at: datetime | None = None
    updated_at: datetime | None = None
    next_review_at: datetime | None = None
    # the erasure (its time) this lead was started again after, with consent (a form): a
    # lead under a tombstone without it is what an erasure left half-deleted (erasure.py)
    restarted_after: datetime | None = None
    # the last 7 days' score movement (domain/movement.py): the dashboard's top movers
    score_marks: list[ScoreMark] = Field(default_factory=empty_list)
    movement: float = 0.0
    # the dashboard's statistics keys this view counts under (domain/lead_stats.py); None:
    # stored by a release before them, until `leadscore dashboard recount` counts it
    counted: list[str] | None = None

    def view(self) -> dict[str, Any]:
        """The materialised fields, as compared to decide whether a refresh is needed."""
        return self.model_dump(include=VIEW_FIELDS)


VIEW_FIELDS = {
    "fit_score",
    "engagement_score",
    "score",
    "stage",
    "stage_since",
    "grade",
    "non_opener",
    "non_opener_since",
    "rules_version",
    "rules_hash",
    "scored_at",
    "next_review_at",
    "score_marks",
    "movement",
    "counted",
}


# The lead's fields whose maps or lists hold models (mutable); every other map or list holds
# numbers, strings or times, which are immutable and can be shared between copies.
_HOLDS_MODELS = frozenset({"purchase_totals", "orders", "score_marks"})


def working_copy(state: LeadState) -> LeadState:
    """A copy the pure functions may change in place, equal to `model_copy(deep=True)`.

    Every map and list is new; the few models inside them (a currency's totals, an order, a
    score mark) are copied too. A deep copy walked each of the hundreds of capped-window
    floats one by one: it was most of the cost of scoring an event (bench/scoring.py)."""
    update: dict[str, Any] = {}
    for name, value in state.__dict__.items():
        if name in _HOLDS_MODELS:  # models of plain fields, but an order's refunds map
            update[name] = [m.model_copy() for m in value] if isinstance(value, list) else {
                k: m.model_copy(update={"refunds": dict(m.refunds)}) if isinstance(m, Order)
                else m.model_copy() for k, m in value.items()}
        elif isinstance(value, dict):
            update[name] = dict(value)
        elif isinstance(value, list):
            update[name] = list(value)
    return state.model_copy(update=update)


class HistoryItem(BaseModel):
    rule: str
    points: float
    reason: str


class HistoryEntry(BaseModel):
    """One line of a lead's append-only history; for events it is also the ledger entry."""

    entry_id: str
    kind: str  # the event type, or "decay"/"rescore" for materialisations
    at: datetime  # when it happened
    recorded_at: datetime
    delta: float
    reason: str
    rules_version: str
    event_id: str | None = None
    source: str | None = None
    items: list[HistoryItem] = Field(default_factory=empty_list)
    event: dict[str, Any] | None = None  # the canonical event, for rescoring
