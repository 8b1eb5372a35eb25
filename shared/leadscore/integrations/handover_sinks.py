"""The Slack card as a handover sink: a callable that takes a stage-change message.

The handover (service/handover.py) hands each sink `StageChange.message()`; this sink
reads the lead and its history from the store, builds the card and calls the port. (The
CRM is not a handover sink: every score change that matters goes to it through its own
outbox, `service/crm_outbox.py`.) The sink raises RetryableDelivery (the sweep keeps the
change pending for Slack alone and backs off; a 429 rests Slack for the sweep) or
PermanentDelivery (Slack never gets that change again). A change Slack should
not hear about (a move down, a stage not in LEADSCORE_SLACK_STAGES) and a lead erased
since the change are delivered as no-ops: there is nothing to say.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.domain.handover import StageChange
from leadscore.domain.rules import Rules
from leadscore.integrations.cards import lead_card
from leadscore.integrations.ports import NamedSink, Notifier
from leadscore.integrations.slack import should_notify
from leadscore.store.port import LeadStore

HISTORY_LIMIT = 500  # the latest entries are the ones worth points now


def change_from_message(message: dict[str, Any]) -> StageChange:
    at = datetime.fromisoformat(str(message["at"]))
    return StageChange(id=str(message["id"]), lead_id=str(message["lead_id"]),
                       email=str(message["email"]), stage_before=str(message["stage_before"]),
                       stage_after=str(message["stage_after"]), score=float(message["score"]),
                       grade=str(message["grade"]), at=at, next_attempt_at=at)


def notifier_sink(notifier: Notifier, store: LeadStore, *, stages: str, dashboard_url: str,
                  show_email: bool, rules: Rules | None = None) -> NamedSink:
    def send(message: dict[str, Any]) -> None:
        change = change_from_message(message)
        if not should_notify(change, stages):
            return
        lead = store.get_lead(change.lead_id)
        if lead is None:
            return
        history = store.history(change.lead_id, HISTORY_LIMIT)
        notifier.notify(lead_card(lead, history, change, dashboard_url, show_email, rules))

    return NamedSink("slack", send)  # one Slack webhook per deployment

