"""The scheduled job: re-materialise stale leads at `now`, and count what changed.

Engagement fades continuously in the stored facts (see `domain/decay.py`); this job only
writes the exact values at `now` into the view (score, stage, grade, non-opener flag) of the
leads whose view is stale, found through the `next_review_at` index. Each lead is refreshed
atomically and only if something changed, so a second run at the same `now` changes nothing,
a run after a missed week lands exactly where the daily runs would have, and a crash leaves
every lead either done or untouched for the next run.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from leadscore.domain.happenings import DomainEvent, LeadScored, NonOpenerFlagged, StageChanged
from leadscore.domain.rebuild import rebuilt, stale_rules
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import ViewChange, refreshed
from leadscore.domain.state import STAGES, LeadState
from leadscore.service import writes
from leadscore.store.port import LeadStore

DRY_RUN_LIMIT = 100_000


# A dataclass, not a pydantic model: built only here, and holding the domain events (dataclasses,
# which a model would build a pydantic schema for at every cold start; issue 20).
@dataclass(kw_only=True)
class DecaySummary:
    now: datetime
    dry_run: bool
    examined: int = 0
    decayed: int = 0
    stages_up: int = 0
    stages_down: int = 0
    flagged_non_openers: int = 0
    cleared_non_openers: int = 0
    remaining: bool = False  # stopped at its limit or deadline with due leads left
    shards_published: int = 0
    elapsed_s: float = 0.0
    # what happened, for `Container.dispatch` (kept out of the logged summary)
    events: list[DomainEvent] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The summary as JSON values, without its events (what the model's JSON dump
        gave: `now` in ISO 8601, `Z` for UTC)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "events"}
        out["now"] = self.now.isoformat().replace("+00:00", "Z")
        return out

    def count(self, change: ViewChange | None) -> None:
        self.examined += 1
        if change is None:
            return
        self.decayed += 1
        move = STAGES.index(change.stage_after) - STAGES.index(change.stage_before)
        self.stages_up += move > 0
        self.stages_down += move < 0
        self.flagged_non_openers += change.non_opener_after and not change.non_opener_before
        self.cleared_non_openers += change.non_opener_before and not change.non_opener_after


def run_decay(store: LeadStore, rules: Rules, now: datetime, *, dry_run: bool = False,
              buckets: Sequence[int] | None = None, limit: int | None = None,
              deadline_s: float | None = None, page: int = 500,
              on_progress: Callable[[int], None] | None = None,
              on_flagged: Callable[[LeadState], None] | None = None) -> DecaySummary:
    started = time.monotonic()
    summary = DecaySummary(now=now, dry_run=dry_run)
    if dry_run:  # nothing moves out of the due set, so read it once
        for lead in store.due_for_review(now, limit or DRY_RUN_LIMIT, buckets):
            # a lead stored under other rules would be rebuilt first: preview that
            done = rebuilt(lead, store.history(lead.lead_id), rules, now) if stale_rules(
                lead, rules) else refreshed(lead, rules, now)
            summary.count(done[1] if done else None)
            if on_progress:
                on_progress(1)
    else:
        seen: set[str] = set()
        while not summary.remaining:
            due = [lead for lead in store.due_for_review(now, page, buckets)
                   if lead.lead_id not in seen]
            if not due:
                break
            for lead in due:
                seen.add(lead.lead_id)
                change = writes.refresh_view(store, lead.lead_id, rules, now)
                summary.count(change)
                if change and change.stage_after != change.stage_before:
                    summary.events.append(StageChanged(
                        lead_id=lead.lead_id, stage_before=change.stage_before,
                        stage_after=change.stage_after))
                elif change:  # the score faded: the CRM sync decides whether it matters
                    summary.events.append(LeadScored(lead_id=lead.lead_id))
                if change and change.non_opener_after and not change.non_opener_before:
                    summary.events.append(NonOpenerFlagged(lead_id=lead.lead_id,
                                                           email=lead.email, at=now))
                    if on_flagged:
                        on_flagged(lead)
                if on_progress:
                    on_progress(1)
                over_limit = limit is not None and summary.examined >= limit
                late = deadline_s is not None and time.monotonic() - started > deadline_s
                if over_limit or late:
                    summary.remaining = bool(store.due_for_review(now, 1, buckets))
                    break
    summary.elapsed_s = round(time.monotonic() - started, 3)
    return summary
