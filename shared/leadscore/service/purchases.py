"""The purchases use case: platform reports become canonical events on the right lead.

Each report is first placed on its order and its buyer:
1. its aliases (other ids of the same payment) go to the store's alias index, whatever
   else happens (they are facts, and a duplicate delivery may be the only one naming them);
2. its order: `order_id`, unless the alias index says that id (or one of `lookups`)
   stands for another order key (Stripe: charge -> payment intent -> invoice);
3. its buyer: the lead that owns that order if there is one (one payment stays on one
   lead whatever address a later event names), else the report's email, else the lead of
   an earlier order of the same platform customer (`buyer_ref`).

Then:
- a paid order with no buyer found is acknowledged and logged, never refused: the platform
  would retry a payload that can never succeed, or disable the endpoint;
- a refund whose order is unknown and that names no buyer is acknowledged as unmatched;
  one that `must_match` (Stripe, whose refunds may name only a payment intent that a later
  event links to its invoice) is answered 503: Stripe retries for up to three days, by
  which time the order or its link has arrived. Applying it to a made-up order instead
  would lose it for good (its ledger key would be spent).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadscore import logs
from leadscore.domain.events import Event, PurchaseMade, PurchaseRefunded
from leadscore.domain.happenings import DomainEvent
from leadscore.domain.rules import Rules
from leadscore.errors import TransientError
from leadscore.providers.purchase_report import PurchaseReport
from leadscore.service.ingest import ingest
from leadscore.store.port import LeadStore

MAX_HOPS = 4  # charge -> payment intent -> invoice is the longest chain a platform makes


# A dataclass, not a pydantic model: built only here, and holding the domain events (dataclasses,
# which a model would build a pydantic schema for at every cold start; issue 20).
@dataclass(kw_only=True)
class PurchaseResult:
    status: str = "ok"
    applied: int
    duplicates: int
    unmatched_refunds: int
    ignored: int = 0
    stage_changes: int = 0
    events: list[DomainEvent] = field(default_factory=list)  # for dispatch

    def body(self) -> dict[str, Any]:
        """The answer's counts (what the webhook sends back)."""
        return {"status": self.status, "applied": self.applied, "duplicates": self.duplicates,
                "unmatched_refunds": self.unmatched_refunds, "ignored": self.ignored}


def _event(report: PurchaseReport, email: str) -> Event:
    common = {"email": email, "source": report.platform,
              "idempotency_key": report.idempotency_key, "occurred_at": report.occurred_at,
              "order_id": report.order_id, "amount_minor": report.amount_minor,
              "currency": report.currency}
    if report.kind == "paid":
        return PurchaseMade.model_validate({**common, "aliases": report.aliases})
    return PurchaseRefunded.model_validate({**common, "refund_id": report.refund_id})


def follow(store: LeadStore, key: str) -> str:
    """The order key `key` finally stands for (itself when it is no alias)."""
    seen = {key}
    for _ in range(MAX_HOPS):
        target = store.order_alias(key)
        if target is None or target in seen:
            break
        seen.add(target)
        key = target
    return key


def _order_id(store: LeadStore, report: PurchaseReport) -> str:
    for candidate in (report.order_id, *report.lookups):
        key = report.key(candidate)
        target = follow(store, key)
        if target != key:
            return target.split(":", 1)[1]
    return report.order_id


def _owner_email(store: LeadStore, order_key: str) -> str | None:
    owner = store.order_owner(order_key)
    lead = store.get_lead(owner) if owner else None
    return lead.email if lead else None


def place(store: LeadStore, report: PurchaseReport) -> tuple[PurchaseReport, bool]:
    """The report on its resolved order and buyer, and whether that order is known."""
    order_id = _order_id(store, report)
    owner = _owner_email(store, report.key(order_id))
    email = owner or report.email
    if email is None and report.buyer_ref:
        email = _owner_email(store, follow(store, report.key(report.buyer_ref)))
    return report.with_order(order_id, email), owner is not None


def record_purchases(store: LeadStore, rules: Rules, reports: Sequence[PurchaseReport],
                     now: datetime) -> PurchaseResult:
    """Apply paid orders and refunds, each on its order's lead (see the module docstring)."""
    aliases = {report.key(a): report.key(t) for report in reports
               for a, t in report.aliases.items()}
    store.record_aliases(aliases)
    events: list[Event] = []
    unmatched = ignored = 0
    for report in reports:
        if report.kind == "link":
            continue
        placed, known = place(store, report)
        if report.kind == "refund" and not known and report.must_match:
            logs.warning("refund for an order not seen yet: asking the platform to retry",
                         platform=report.platform, type=report.event_type)
            raise TransientError("the refunded order is not known yet (its payment or the "
                                 "event linking it may still be on its way); retry later")
        if placed.email is None:
            if report.kind == "paid":
                ignored += 1
                logs.warning("paid order names no buyer we can find: acknowledged, ignored",
                             platform=report.platform, type=report.event_type)
            else:
                unmatched += 1
                logs.warning("refund for an unknown order ignored", platform=report.platform,
                             type=report.event_type)
            continue
        events.append(_event(placed, placed.email))
    if not events:
        return PurchaseResult(status="ignored", applied=0, duplicates=0,
                              unmatched_refunds=unmatched, ignored=ignored + sum(
                                  r.kind == "link" for r in reports))
    result = ingest(store, rules, events, now)
    return PurchaseResult(applied=result.applied, duplicates=result.duplicates,
                          unmatched_refunds=unmatched, ignored=ignored,
                          stage_changes=len(result.stage_changes), events=result.events)
