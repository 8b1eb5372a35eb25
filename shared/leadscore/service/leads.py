"""Read use cases: one lead explained, and lists of leads, with scores exact at `now`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.domain.explain import contributions
from leadscore.domain.identity import is_lead_id, lead_id_for, legacy_lead_id
from leadscore.domain.orders import totals as order_totals
from leadscore.domain.rebuild import replayed, stale_rules
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import breakdown, fit_items, materialise
from leadscore.domain.state import HistoryEntry, LeadState, Stage
from leadscore.store.port import LeadStore

HISTORY_SHOWN = 500  # a lead's page shows its newest entries; the history endpoint pages


def find_lead(store: LeadStore, email_or_id: str) -> LeadState | None:
    """By id, or by any spelling of the address; a lead stored under the unkeyed id of
    earlier releases is found too (read-through, until `leadscore` re-keys it). Other text
    is read as an address (hashed): it never reaches a store as a document id."""
    if is_lead_id(email_or_id):
        return store.get_lead(email_or_id)
    return store.get_lead(lead_id_for(email_or_id)) or store.get_lead(
        legacy_lead_id(email_or_id))


def shown(store: LeadStore, lead: LeadState, rules: Rules,
          now: datetime) -> tuple[LeadState, list[HistoryEntry]]:
    """The lead as the rules in force score it, with its newest history entries. A lead
    stored under other rules is rebuilt from its whole history here, read-only (its next
    write, the decay job or `rescore` stores it): showing it as stored gave the old rules'
    score, with an "older events" line making up the difference (an audit)."""
    if not stale_rules(lead, rules):
        return lead, store.history(lead.lead_id, limit=HISTORY_SHOWN)
    everything = store.history(lead.lead_id)
    return replayed(lead, everything, rules, now, orders={}), everything[-HISTORY_SHOWN:]


def purchases(lead: LeadState) -> dict[str, Any]:
    """Purchase count, total spent and average basket per currency, from the lead's bounded
    totals (its orders are records of their own)."""
    by = order_totals(lead)
    main = max(by, key=lambda c: (by[c].count, c)) if by else None
    by_currency = {c: {"count": t.count, "total_minor": t.net_minor,
                       "average_minor": t.net_minor // t.count,
                       "refunded_minor": t.refunded_minor}
                   for c, t in sorted(by.items()) if t.count}
    return {"count": sum(t.count for t in by.values()),
            "total_minor": by[main].net_minor if main else 0,
            "currency": main, "by_currency": by_currency,
            "first_at": lead.first_purchase_at, "last_at": lead.last_purchase_at}


def history_line(entry: HistoryEntry) -> dict[str, Any]:
    return {"at": entry.at, "event_id": entry.event_id, "kind": entry.kind,
            "delta": entry.delta, "reason": entry.reason, "rules_version": entry.rules_version,
            "source": entry.source}


def describe(lead: LeadState, history: list[HistoryEntry], rules: Rules,
             now: datetime) -> dict[str, Any]:
    """Everything about one lead, scored at `now`, in JSON-ready form."""
    fresh = materialise(lead, rules, now)
    parts = breakdown(lead, rules, now)
    return {
        "lead_id": fresh.lead_id, "email": fresh.email,
        "score": round(fresh.score, 2), "fit_score": round(fresh.fit_score, 2),
        "engagement_score": round(fresh.engagement_score, 2),
        "stage": fresh.stage, "grade": fresh.grade, "email_status": fresh.email_status,
        "non_opener": fresh.non_opener, "non_opener_since": fresh.non_opener_since,
        "last_open_at": fresh.last_open_at, "last_click_at": fresh.last_click_at,
        "last_activity_at": fresh.last_activity_at, "last_sent_at": fresh.last_sent_at,
        "created_at": fresh.created_at, "updated_at": fresh.updated_at,
        "scored_at": now, "rules_version": rules.version,
        "profile": fresh.profile, "counters": fresh.counters,
        "purchases": purchases(fresh),
        "breakdown": {
            "fit": [i.model_dump() for i in fit_items(lead, rules)],
            "engagement": round(sum(parts.engagement_by_half_life.values()), 4),
            "capped_engagement": round(parts.capped, 4),
            "purchases": round(parts.purchases, 4),
        },
        # what each rule is worth now; the points add up to the score (before rounding)
        "contributions": [line | {"points": round(line["points"], 6)}
                          for line in contributions(lead, history, rules, now)],
        "history": [history_line(e) for e in history],
    }


def summary(lead: LeadState) -> dict[str, Any]:
    """A lead in lists: as of its last scoring (use the lead itself for an exact score)."""
    return {"lead_id": lead.lead_id, "email": lead.email, "score": round(lead.score, 2),
            "stage": lead.stage, "grade": lead.grade, "email_status": lead.email_status,
            "non_opener": lead.non_opener, "scored_at": lead.scored_at}


def list_leads(store: LeadStore, stage: Stage | None, min_score: float | None,
               limit: int) -> list[LeadState]:
    return store.list_leads(stage=stage, min_score=min_score, limit=limit)
