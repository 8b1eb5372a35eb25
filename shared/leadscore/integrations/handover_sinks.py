"""The integrations as handover sinks: callables that take a stage-change message.

Today's handover (service/handover.py) hands each sink `StageChange.message()`; these
sinks read the lead and its history from the store, build the card or the score record,
and call the port. A sink raises RetryableDelivery or PermanentDelivery (both Exceptions,
so the existing sweep keeps a failed change pending and backs off). A change Slack should
not hear about (a move down, a stage not in LEADSCORE_SLACK_STAGES) and a lead erased
since the change are delivered as no-ops: there is nothing to say.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadscore.domain.handover import StageChange
from leadscore.domain.rules import Rules
from leadscore.integrations.cards import lead_card, score_record
from leadscore.integrations.crm_sync import sync_records
from leadscore.integrations.ports import (
    CrmSync,
    Notifier,
    PermanentDelivery,
    RetryableDelivery,
)
from leadscore.integrations.slack import should_notify
from leadscore.store.port import LeadStore

Sink = Callable[[dict[str, Any]], None]
HISTORY_LIMIT = 500  # the latest entries are the ones worth points now


def change_from_message(message: dict[str, Any]) -> StageChange:
    at = datetime.fromisoformat(str(message["at"]))
    return StageChange(id=str(message["id"]), lead_id=str(message["lead_id"]),
                       email=str(message["email"]), stage_before=str(message["stage_before"]),
                       stage_after=str(message["stage_after"]), score=float(message["score"]),
                       grade=str(message["grade"]), at=at, next_attempt_at=at)


def notifier_sink(notifier: Notifier, store: LeadStore, *, stages: str, dashboard_url: str,
                  show_email: bool, rules: Rules | None = None) -> Sink:
    def send(message: dict[str, Any]) -> None:
        change = change_from_message(message)
        if not should_notify(change, stages):
            return
        lead = store.get_lead(change.lead_id)
        if lead is None:
            return
        history = store.history(change.lead_id, HISTORY_LIMIT)
        notifier.notify(lead_card(lead, history, change, dashboard_url, show_email, rules))

    return send


def crm_sink(crm: CrmSync, store: LeadStore, rules: Rules | None = None) -> Sink:
    """Upsert the lead's score record on every stage change (a change that always matters;
    score and grade moves between stage changes need the CRM outbox, see crm_sync.py)."""

    def send(message: dict[str, Any]) -> None:
        change = change_from_message(message)
        lead = store.get_lead(change.lead_id)
        if lead is None:
            return
        record = score_record(lead, store.history(change.lead_id, HISTORY_LIMIT), change.at,
                              rules)
        report = sync_records(crm, [record])
        if report.pending:
            raise RetryableDelivery(report.error or "crm pending", report.retry_after_s)
        if report.rejected:
            raise PermanentDelivery(next(iter(report.rejected.values())))

    return send
