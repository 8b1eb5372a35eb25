"""`leadscore report`: distribution, funnel, grade matrix and the thresholds' track record."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime

from pydantic import BaseModel, Field

from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import apply_events, materialise
from leadscore.domain.state import STAGES, LeadState, Order
from leadscore.service.rescore import BAND_ORDER, band, in_band_order
from leadscore.store.port import LeadStore


class CalibrationRow(BaseModel):
    band: str
    leads: int
    purchased: int
    purchase_rate: float
    median_days_to_purchase: float | None


class Report(BaseModel):
    leads: int
    distribution: dict[str, int]
    funnel: dict[str, int]
    grades: dict[str, dict[str, int]] = Field(description="fit letter -> engagement digit -> n")
    calibration: list[CalibrationRow]


def peak_score(store: LeadStore, lead: LeadState, rules: Rules,
               until: datetime | None) -> tuple[float, datetime | None]:
    """The highest score the lead reached before `until` (its first purchase), and when its
    first event happened. Scores only jump at events and fade between them, so the peak is
    the score right after one of its events."""
    history = sorted((e for e in store.history(lead.lead_id) if e.event),
                     key=lambda e: (e.at, e.entry_id))
    first = history[0].at if history else None
    state, peak = None, 0.0
    orders: dict[str, Order] = {}  # the replay's order records
    for entry in history:
        if until is not None and entry.at >= until:
            break
        event = EVENT_ADAPTER.validate_python(entry.event)
        state, _ = apply_events(state, lead.lead_id, lead.email, [event], rules, entry.at,
                                orders)
        peak = max(peak, state.score)
    return peak, first


def build_report(store: LeadStore, rules: Rules, now: datetime) -> Report:
    """Scores are exact at `now`; calibration places each lead in the band of the highest
    score it reached (before its first purchase, for buyers) and counts who bought."""
    spread: Counter[str] = Counter()
    funnel: Counter[str] = Counter()
    grades: dict[str, Counter[str]] = defaultdict(Counter)
    cohort: Counter[str] = Counter()
    bought: Counter[str] = Counter()
    days: dict[str, list[float]] = defaultdict(list)
    total = 0
    after: str | None = None
    while page := store.iter_leads(after_id=after, limit=500):
        after = page[-1].lead_id
        for stored in page:
            total += 1
            lead = materialise(stored, rules, now)
            spread[band(lead.score)] += 1
            funnel[lead.stage] += 1
            grades[lead.grade[0]][lead.grade[1]] += 1
            peak, first = peak_score(store, lead, rules, lead.first_purchase_at)
            where = band(peak)
            cohort[where] += 1
            if lead.first_purchase_at is not None:
                bought[where] += 1
                start = first or lead.first_purchase_at
                days[where].append(max(0.0, (lead.first_purchase_at - start).days))
    calibration = [CalibrationRow(
        band=b, leads=cohort[b], purchased=bought[b],
        purchase_rate=round(bought[b] / cohort[b], 4),
        median_days_to_purchase=statistics.median(days[b]) if days[b] else None)
        for b in BAND_ORDER if cohort[b]]
    return Report(leads=total,
                  distribution=in_band_order(spread),
                  funnel={s: funnel[s] for s in STAGES},
                  grades={f: {e: grades[f][e] for e in "1234"} for f in "ABCD"},
                  calibration=calibration)
