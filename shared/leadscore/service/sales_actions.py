"""A rep's answer to a handover: the signed accept / reject links on a Slack card.

Opening a link shows a page that asks for a reason; sending it records `sales_accepted` or
`sales_rejected` on the lead as an outcome event, keyed by the stage change and the action,
so a double click or a chat app's prefetch records it once. Links carry no address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from leadscore.domain.events import OutcomeRecorded
from leadscore.domain.rules import Rules
from leadscore.errors import NotFound, Unauthorized
from leadscore.integrations.slack_actions import ActionLinkInvalid, SalesAction, verify_action
from leadscore.providers import signing
from leadscore.service.ingest import IngestResult, ingest
from leadscore.store.port import LeadStore

MAX_REASON = 500


def checked(query: Mapping[str, str], secrets: Sequence[str], now: datetime) -> SalesAction:
    """The action a link asks for; 401 for a forged, altered or expired link."""
    # unset: every link is answered as a forged one, and the setting goes to the log
    secrets = signing.require_configured([s for s in secrets if s],
                                         "LEADSCORE_SLACK_ACTION_SECRET")
    try:
        return verify_action(query, secrets, now)
    except ActionLinkInvalid:
        raise Unauthorized("this link is not valid any more; ask for a new card") from None


def record(store: LeadStore, rules: Rules, action: SalesAction, reason: str,
           now: datetime) -> IngestResult:
    lead = store.get_lead(action.lead_id)
    if lead is None:
        raise NotFound("no such lead (it may have been erased)")
    event = OutcomeRecorded(
        email=lead.email, source="slack", occurred_at=now,
        idempotency_key=f"{action.change_id}:{action.outcome}",
        outcome=action.outcome,
        reason=" ".join(reason.split())[:MAX_REASON] or None)
    return ingest(store, rules, [event], now)
