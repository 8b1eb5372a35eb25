"""The ingest use case: apply canonical events, grouped by lead, one atomic write per lead."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadscore import logs
from leadscore.domain.events import Event
from leadscore.domain.happenings import DomainEvent, LeadScored, StageChanged
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.errors import ValidationFailed
from leadscore.service import writes
from leadscore.service.writes import ApplyOutcome
from leadscore.store.port import LeadStore

MAX_CLOCK_SKEW = timedelta(hours=1)


def dated_ahead(at: datetime, now: datetime) -> bool:
    """Dated further in the future than clocks drift: it would score more than it is worth.
    Our own API refuses it (`check_times`); providers' webhooks drop it alone."""
    return at > now + MAX_CLOCK_SKEW


@dataclass(kw_only=True)  # not a pydantic model: built only here and in forms (issue 20)
class IngestResult:
    received: int
    applied: int
    duplicates: int
    leads: int
    commits: int
    erased: int = 0  # events dropped because their lead was erased (service/erasure.py)
    stage_changes: list[ApplyOutcome]
    # what happened, for `Container.dispatch` (kept out of response bodies and logs)
    events: list[DomainEvent] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"received": self.received, "applied": self.applied,
                "duplicates": self.duplicates, "leads": self.leads}


def group_by_lead(events: Sequence[Event]) -> dict[str, list[Event]]:
    groups: dict[str, list[Event]] = {}
    ids: dict[str, str] = {}  # a batch names each address many times: one keyed hash each
    for event in events:
        lead_id = ids.get(event.email)
        if lead_id is None:
            lead_id = ids[event.email] = lead_id_for(event.email)
        groups.setdefault(lead_id, []).append(event)
    return groups


def check_times(events: Sequence[Event], now: datetime) -> None:
    """Events from the future would score more than they are worth: refuse the request."""
    late = [{"field": f"{i}.occurred_at", "problem": "is more than an hour in the future"}
            for i, e in enumerate(events) if dated_ahead(e.occurred_at, now)]
    if late:
        raise ValidationFailed("events dated in the future", details=late)


def without_future(events: Sequence[Event], now: datetime) -> tuple[list[Event], int]:
    """A provider's batch without its items dated in the future, and how many there were.

    Our own API refuses such a request (`check_times`: its sender is told and can fix its
    clock); a provider cannot, and would resend the whole batch for days, so its webhooks
    drop those items alone, acknowledged as "future", and apply the rest."""
    kept = [e for e in events if not dated_ahead(e.occurred_at, now)]
    return kept, len(events) - len(kept)


def ingest(store: LeadStore, rules: Rules, events: Sequence[Event],
           now: datetime) -> IngestResult:
    """Validate everything first, then write lead by lead, each lead atomically.

    On SQLite the request's leads go in one transaction (`writes.request_unit`): a failure
    part-way writes nothing. On other stores the leads already written stay written. Either
    way the error reaches the sender as a 5xx and its retry is de-duplicated by the ledger,
    so each event still counts exactly once.
    """
    check_times(events, now)
    outcomes = []
    groups = group_by_lead(events)
    with writes.request_unit(store, len(groups)):
        for lead_id, group in groups.items():
            outcomes.append(writes.apply_events(store, lead_id, group[0].email, group, rules,
                                                now))
    changed = [o for o in outcomes if o.stage_before != o.stage_after and o.applied]
    for outcome in changed:  # logged once committed
        logs.info("stage changed", lead_id=outcome.lead_id, stage_before=outcome.stage_before,
                  stage_after=outcome.stage_after)
    happened: list[DomainEvent] = [
        StageChanged(lead_id=o.lead_id, stage_before=o.stage_before,
                     stage_after=o.stage_after or "lead") for o in changed]
    happened += [LeadScored(lead_id=o.lead_id) for o in outcomes
                 if o.applied and o.stage_before == o.stage_after]
    result = IngestResult(
        received=len(events),
        applied=sum(o.applied for o in outcomes),
        duplicates=sum(o.duplicates for o in outcomes),
        leads=len(outcomes),
        commits=sum(o.commits for o in outcomes),
        erased=sum(o.erased for o in outcomes),
        stage_changes=changed,
        events=happened,
    )
    logs.info("events ingested", received=result.received, applied=result.applied,
              duplicates=result.duplicates, leads=result.leads)
    return result
