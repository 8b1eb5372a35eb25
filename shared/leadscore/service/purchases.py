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
  so is one of an order whose lead was erased: the erasure keeps a keyed hash of each of
  the lead's order ids and the ids that stood for them (`forget_orders`: nothing readable,
  nothing that finds the person), so such a refund is told apart from an early one;
  any other refund that `must_match` (Stripe, whose refunds may name only a payment intent
  that a later event links to its invoice) is answered 503: Stripe retries for up to three days, by
  which time the order or its link has arrived. Applying it to a made-up order instead
  would lose it for good (its ledger key would be spent).

Before anything is written, every report is checked on its own (`screen`): one whose
canonical event cannot be built (an amount out of range, an id over 128 characters, an
invalid buyer address) is acknowledged as "invalid", one dated more than an hour ahead as
"future"; neither writes anything (not even its aliases), and the other reports of the same
delivery still count. A retry could never make them succeed, so a 5xx or 4xx would only
make the platform resend them for days and then disable the endpoint.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from leadscore import logs
from leadscore.domain.events import Event, PurchaseMade, PurchaseRefunded
from leadscore.domain.happenings import DomainEvent
from leadscore.domain.identity import keyed_hash
from leadscore.domain.rules import Rules
from leadscore.errors import TransientError
from leadscore.providers.purchase_report import PurchaseReport
from leadscore.service.ingest import dated_ahead, ingest
from leadscore.store.port import TOMBSTONE_KEPT, LeadStore

MAX_HOPS = 4  # charge -> payment intent -> invoice is the longest chain a platform makes
# stands in for the buyer while a report is checked before it is placed: the address the
# event finally carries is the report's own (checked here when there is one) or the one of
# a stored lead (checked when it was stored)
_SOME_BUYER = "buyer@example.com"


# A dataclass, not a pydantic model: built only here, and holding the domain events (dataclasses,
# which a model would build a pydantic schema for at every cold start; issue 20).
@dataclass(kw_only=True)
class PurchaseResult:
    status: str = "ok"
    applied: int
    duplicates: int
    unmatched_refunds: int
    ignored: int = 0
    erased: int = 0  # refunds of orders whose lead was erased: acknowledged, nothing written
    invalid: int = 0  # reports whose values are out of range: acknowledged, nothing written
    future: int = 0  # reports dated more than an hour ahead: acknowledged, nothing written
    stage_changes: int = 0
    events: list[DomainEvent] = field(default_factory=list)  # for dispatch

    def body(self) -> dict[str, Any]:
        """The answer's counts (what the webhook sends back)."""
        return {"status": self.status, "applied": self.applied, "duplicates": self.duplicates,
                "unmatched_refunds": self.unmatched_refunds, "ignored": self.ignored,
                "erased": self.erased, "invalid": self.invalid, "future": self.future}


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


def order_currency(store: LeadStore, order_key: str) -> str | None:
    """The currency the order was paid in, once a paid report of it is recorded."""
    owner = store.order_owner(order_key)
    order = store.order_record(owner, order_key) if owner else None
    if order is None or (order.reported_at is None and order.amount_minor is None):
        return None  # only refunds so far: the domain sorts their currencies out
    return order.currency


ERASED = "erased"  # what an erased order's marker stands for in the alias index


def erased_marker(order_key: str) -> str:
    return f"{ERASED}:{keyed_hash('erased-order', order_key)}"


def forget_orders(store: LeadStore, lead_id: str, erased_at: datetime) -> None:
    """Before the lead is erased: mark its orders, and every id that stood for them, as
    erased (keyed hashes in the alias index, expiring with the tombstone), so a refund of
    one that arrives later is acknowledged instead of answered 503 for three days."""
    keys = set(store.orders_of(lead_id))
    lead = store.get_lead(lead_id)
    keys.update(lead.orders if lead is not None else {})  # orders of a legacy document
    for entry in store.history(lead_id):
        event = entry.event or {}
        if entry.kind == "purchase_made" and event.get("source") and event.get("order_id"):
            source = event["source"]
            keys.add(f"{source}:{event['order_id']}")
            keys.update(f"{source}:{alias}" for alias in event.get("aliases") or {})
    store.record_aliases({erased_marker(key): ERASED for key in keys},
                         expires_at=erased_at + TOMBSTONE_KEPT)


def _of_erased_lead(store: LeadStore, report: PurchaseReport) -> bool:
    """A refund of an order that no lead owns and that an erasure marked (see above)."""
    keys = [report.key(c) for c in (report.order_id, *report.lookups)]
    if any(store.order_owner(follow(store, key)) for key in keys):
        return False
    # a raw payment or charge id may reach the marked order only through a link report
    # (Stripe "basil": invoice_payment.paid), which names no lead and so outlives erasure
    keys += [follow(store, key) for key in keys]
    return any(store.order_alias(erased_marker(key)) == ERASED for key in dict.fromkeys(keys))


def place(store: LeadStore, report: PurchaseReport) -> tuple[PurchaseReport, bool]:
    """The report on its resolved order and buyer, and whether that order is known."""
    order_id = _order_id(store, report)
    owner = _owner_email(store, report.key(order_id))
    email = owner or report.email
    if email is None and report.buyer_ref:
        email = _owner_email(store, follow(store, report.key(report.buyer_ref)))
    return report.with_order(order_id, email), owner is not None


def _problem(report: PurchaseReport, now: datetime) -> str | None:
    """Why this report can never be applied ("future", "invalid"), or None. Logs the
    fields at fault by name, never their values (an address may be one)."""
    if report.kind == "link":
        return None
    if dated_ahead(report.occurred_at, now):
        return "future"
    try:
        _event(report, report.email or _SOME_BUYER)
    except (ValidationError, ValueError, OverflowError) as exc:
        fields = (sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
                  if isinstance(exc, ValidationError) else [type(exc).__name__])
        logs.warning("purchase report ignored: a value is out of range",
                     platform=report.platform, type=report.event_type, fields=fields[:10])
        return "invalid"
    return None


def screen(reports: Sequence[PurchaseReport],
           now: datetime) -> tuple[list[PurchaseReport], Counter[str]]:
    """The reports that can be applied, and how many of the others were dropped, by why."""
    usable: list[PurchaseReport] = []
    dropped: Counter[str] = Counter()
    for report in reports:
        problem = _problem(report, now)
        if problem is None:
            usable.append(report)
        else:
            dropped[problem] += 1
    if dropped:
        logs.info("webhook items ignored", provider=reports[0].platform,
                  function="purchase_webhook", types=dict(dropped), scored=len(usable))
    return usable, dropped


def record_purchases(store: LeadStore, rules: Rules, reports: Sequence[PurchaseReport],
                     now: datetime) -> PurchaseResult:
    """Apply paid orders and refunds, each on its order's lead (see the module docstring)."""
    reports, dropped = screen(reports, now)  # before any write: a bad report writes nothing
    erased = [r for r in reports if r.kind == "refund" and _of_erased_lead(store, r)]
    for report in erased:  # its ids are not recorded again either
        logs.info("refund of an erased lead's order: acknowledged, ignored",
                  platform=report.platform, type=report.event_type)
    reports = [r for r in reports if not any(r is e for e in erased)]
    aliases = {report.key(a): report.key(t) for report in reports
               for a, t in report.aliases.items()}
    store.record_aliases(aliases)
    events: list[Event] = []
    unmatched = ignored = invalid = 0
    for report in reports:
        if report.kind == "link":
            continue
        placed, known = place(store, report)
        if report.kind == "refund" and not known and report.must_match:
            logs.warning("refund for an order not seen yet: asking the platform to retry",
                         platform=report.platform, type=report.event_type)
            raise TransientError("the refunded order is not known yet (its payment or the "
                                 "event linking it may still be on its way); retry later")
        if report.kind == "refund" and known and (paid_in := order_currency(
                store, placed.order_key)) not in (None, placed.currency):
            invalid += 1  # e.g. 4990 JPY against a 49.90 EUR order: it would refund it all
            logs.warning("refund in another currency than its order: acknowledged, ignored",
                         platform=report.platform, type=report.event_type,
                         refund_currency=placed.currency, order_currency=paid_in)
            continue
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
    invalid_all, future, erased_n = dropped["invalid"] + invalid, dropped["future"], len(erased)
    if not events:
        return PurchaseResult(status="ignored", applied=0, duplicates=0,
                              unmatched_refunds=unmatched, ignored=ignored + sum(
                                  r.kind == "link" for r in reports),
                              invalid=invalid_all, future=future, erased=erased_n)
    result = ingest(store, rules, events, now)
    return PurchaseResult(applied=result.applied, duplicates=result.duplicates,
                          unmatched_refunds=unmatched, ignored=ignored,
                          stage_changes=len(result.stage_changes), events=result.events,
                          invalid=invalid_all, future=future, erased=erased_n)
