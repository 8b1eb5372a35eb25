"""The purchases use case: platform reports become canonical events on the right lead."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from leadscore import logs
from leadscore.domain.events import Event, PurchaseMade, PurchaseRefunded
from leadscore.domain.happenings import DomainEvent
from leadscore.domain.rules import Rules
from leadscore.errors import ValidationFailed
from leadscore.providers.purchase_report import PurchaseReport
from leadscore.service.ingest import ingest
from leadscore.store.port import LeadStore


class PurchaseResult(BaseModel):
    applied: int
    duplicates: int
    unmatched_refunds: int
    stage_changes: int = 0
    events: list[DomainEvent] = Field(default_factory=list, exclude=True)  # for dispatch


def _event(report: PurchaseReport, email: str) -> Event:
    common = {"email": email, "source": report.platform,
              "idempotency_key": report.idempotency_key, "occurred_at": report.occurred_at,
              "order_id": report.order_id, "amount_minor": report.amount_minor,
              "currency": report.currency}
    if report.kind == "paid":
        return PurchaseMade.model_validate(common)
    return PurchaseRefunded.model_validate({**common, "refund_id": report.refund_id})


def _email_for(store: LeadStore, report: PurchaseReport) -> str | None:
    if report.email:
        return report.email
    owner = store.order_owner(report.order_key)
    lead = store.get_lead(owner) if owner else None
    return lead.email if lead else None


def record_purchases(store: LeadStore, rules: Rules, reports: Sequence[PurchaseReport],
                     now: datetime) -> PurchaseResult:
    """Apply paid orders and refunds; a refund naming no buyer goes to the order's lead.

    A refund for an order leadscore never recorded (paid before it was deployed, or a
    platform that names no buyer) cannot be placed and is acknowledged, not retried forever.
    """
    nameless = [i for i, r in enumerate(reports) if r.kind == "paid" and not r.email]
    if nameless:
        raise ValidationFailed("a paid order names no buyer email", details=[
            {"field": "email", "problem": f"missing on order {reports[i].order_id}"}
            for i in nameless])
    events: list[Event] = []
    unmatched = 0
    for report in reports:
        email = _email_for(store, report)
        if email is None:
            unmatched += 1
            logs.warning("refund for an unknown order ignored", platform=report.platform,
                         order_id=report.order_id)
            continue
        events.append(_event(report, email))
    if not events:
        return PurchaseResult(applied=0, duplicates=0, unmatched_refunds=unmatched)
    result = ingest(store, rules, events, now)
    return PurchaseResult(applied=result.applied, duplicates=result.duplicates,
                          unmatched_refunds=unmatched, stage_changes=len(result.stage_changes),
                          events=result.events)
