"""Back-testing the score against what really happened, without leakage.

For a cut-off C and a window of W days: every lead that existed before C is rebuilt from
its history entries dated before C only (the history keeps every canonical event, so this
is exact), under each rules set being compared, and scored as it stood at C. Its label is
whether it converted in (C, C+W]. Nothing after C reaches the score, so a rule that only
fires after buying cannot flatter the back-test. Leads first seen at or after C are
excluded (they did not exist), and so are leads that converted at or before C (they are
no longer prospects). C+W must be in the past, so every included lead had the whole window.

Conversion is a `deal_won` outcome, or, by default, a paid purchase that was not fully
refunded (refunds known today count: a refunded buyer is not a win). This is decided here,
at evaluation time, and never written to the lead.

Leads and histories are read a page at a time; what is kept per lead is one score per
rules set and one label byte, so memory grows by a few dozen bytes a lead.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from leadscore.domain import metrics
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import apply_events
from leadscore.errors import ValidationFailed
from leadscore.service.lead_events import PAGE, conversion_times, lead_pages
from leadscore.store.port import LeadStore

__all__ = ["PAGE", "CalibrationReport", "Sample", "calibrate", "conversion_times", "evaluate"]
DEFAULT_WINDOW_DAYS = 90


@dataclass
class Sample:
    """What the back-test saw: a score per rules set and a label per included lead."""

    at: datetime
    window_days: int
    scores: dict[str, array[float]]
    stages: dict[str, bytearray]  # index into STAGE_CODES
    labels: bytearray
    examined: int = 0
    excluded_young: int = 0  # first seen at or after the cut-off
    excluded_converted: int = 0  # converted at or before the cut-off


STAGE_CODES = ("lead", "mql", "sql", "customer")


def backtest(store: LeadStore, rules_sets: dict[str, Rules], at: datetime, window_days: int,
             now: datetime, *, purchases_are_wins: bool = True,
             on_progress: Callable[[int], None] | None = None) -> Sample:
    """Score every lead as it stood at `at` under each rules set, and label it by whether it
    converted in the window after; one pass over the store, a page of leads at a time."""
    end = at + timedelta(days=window_days)
    if end > now:
        raise ValidationFailed(
            f"the window ends {end.isoformat()}, after now: choose a cut-off at least "
            f"{window_days} days ago (--at) or a shorter window (--window)",
            details=[{"field": "at", "problem": "cut-off plus window is in the future"}])
    sample = Sample(at=at, window_days=window_days, labels=bytearray(),
                    scores={name: array("d") for name in rules_sets},
                    stages={name: bytearray() for name in rules_sets})
    for page in lead_pages(store):
        for lead in page:
            sample.examined += 1
            before = [e for e in lead.events if e.occurred_at < at]
            if not before:
                sample.excluded_young += 1
                continue
            wins = conversion_times(lead.events, purchases_are_wins)
            if any(w <= at for w in wins):
                sample.excluded_converted += 1
                continue
            for name, rules in rules_sets.items():
                state, _ = apply_events(None, lead.lead_id, lead.email, before, rules, at,
                                        explain=False)
                sample.scores[name].append(state.score)
                sample.stages[name].append(STAGE_CODES.index(state.stage))
            sample.labels.append(1 if any(at < w <= end for w in wins) else 0)
        if on_progress:
            on_progress(len(page))
    return sample


class RulesResult(BaseModel):
    """How well one rules set's score at the cut-off predicted conversion in the window."""

    name: str  # "current" or "candidate"
    rules_version: str
    auc: float | None
    auc_interval: metrics.Interval
    brier: float | None  # of the isotonic-calibrated probability (see domain/metrics.py)
    brier_interval: metrics.Interval
    quantile_bands: list[metrics.Band]
    stage_bands: list[metrics.Band]  # <0, below MQL, MQL to SQL, SQL and above
    stages: dict[str, metrics.Band]  # by the stage each lead had at the cut-off
    thresholds: list[metrics.ThresholdRow]  # at the MQL and SQL score thresholds
    for_target_precision: metrics.ThresholdRow | None = None
    for_target_volume: metrics.ThresholdRow | None = None


class CalibrationReport(BaseModel):
    at: datetime
    window_days: int
    purchases_are_wins: bool
    examined: int
    excluded_young: int
    excluded_converted: int
    included: int
    conversions: int
    base_rate: float | None
    target_precision: float | None
    target_volume: int | None
    bootstrap_resamples: int
    results: list[RulesResult]


def evaluate(sample: Sample, rules_sets: dict[str, Rules], *, purchases_are_wins: bool,
             target_precision: float | None = None, target_volume: int | None = None,
             resamples: int = 200, seed: int = 16) -> CalibrationReport:
    labels = sample.labels
    results = []
    for name, rules in rules_sets.items():
        scores = sample.scores[name]
        probs = metrics.isotonic(scores, labels)
        auc_ci, brier_ci = metrics.bootstrap(scores, labels, probs, resamples, seed)
        mql, sql = rules.stages.gate("mql").score, rules.stages.gate("sql").score
        by_stage = {}
        for code, stage in enumerate(STAGE_CODES):
            members = [y for s, y in zip(sample.stages[name], labels, strict=True) if s == code]
            by_stage[stage] = metrics.Band(
                label=stage, low=None, high=None, leads=len(members),
                conversions=sum(members),
                rate=sum(members) / len(members) if members else None)
        precision_row, volume_row = metrics.targets(scores, labels, target_precision,
                                                    target_volume)
        results.append(RulesResult(
            name=name, rules_version=rules.version,
            auc=metrics.roc_auc(scores, labels), auc_interval=auc_ci,
            brier=metrics.brier(probs, labels) if labels else None, brier_interval=brier_ci,
            quantile_bands=metrics.bands(scores, labels, metrics.quantile_edges(scores)),
            stage_bands=metrics.bands(scores, labels, sorted({0.0, mql, sql}),
                                      names=None if len({0.0, mql, sql}) < 3 else
                                      ["< 0", f"0 to MQL ({mql:g})",
                                       f"MQL to SQL ({sql:g})", f"SQL ({sql:g}) and up"]),
            stages=by_stage,
            thresholds=[metrics.at_threshold(scores, labels, t) for t in (mql, sql)],
            for_target_precision=precision_row, for_target_volume=volume_row))
    conversions = sum(labels)
    return CalibrationReport(
        at=sample.at, window_days=sample.window_days, purchases_are_wins=purchases_are_wins,
        examined=sample.examined, excluded_young=sample.excluded_young,
        excluded_converted=sample.excluded_converted, included=len(labels),
        conversions=conversions, base_rate=conversions / len(labels) if labels else None,
        target_precision=target_precision, target_volume=target_volume,
        bootstrap_resamples=resamples, results=results)


def calibrate(store: LeadStore, rules_sets: dict[str, Rules], now: datetime, *,
              at: datetime | None = None, window_days: int = DEFAULT_WINDOW_DAYS,
              purchases_are_wins: bool = True, target_precision: float | None = None,
              target_volume: int | None = None, resamples: int = 200,
              on_progress: Callable[[int], None] | None = None) -> CalibrationReport:
    """The whole back-test: by default the cut-off is `window_days` before `now`."""
    cut = at or now - timedelta(days=window_days)
    sample = backtest(store, rules_sets, cut, window_days, now,
                      purchases_are_wins=purchases_are_wins, on_progress=on_progress)
    return evaluate(sample, rules_sets, purchases_are_wins=purchases_are_wins,
                    target_precision=target_precision, target_volume=target_volume,
                    resamples=resamples)
