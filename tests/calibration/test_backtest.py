"""Back-testing (issue 16): `calibrate` against an independent computation with
scikit-learn, leakage, exclusions and the marketer's targets, on a population whose true
conversion model is known (generator.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

from leadscore.domain import metrics
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules, default_rules, default_rules_text, parse_rules
from leadscore.errors import ValidationFailed
from leadscore.service.calibration import CalibrationReport, calibrate
from leadscore.service.ingest import ingest
from leadscore.store.memory import MemoryStore

from .generator import GeneratedLead, all_events, generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CUT = NOW - timedelta(days=90)


def seed(store: MemoryStore, leads: list[GeneratedLead], rules: Rules, now: datetime,
         before: datetime | None = None) -> None:
    events = all_events(leads, before)
    for start in range(0, len(events), 1000):
        ingest(store, rules, events[start:start + 1000], now)


@pytest.fixture(scope="module")
def population() -> list[GeneratedLead]:
    return generate(1500, CUT)


@pytest.fixture(scope="module")
def store(population: list[GeneratedLead]) -> MemoryStore:
    store = MemoryStore()
    seed(store, population, default_rules(), NOW)
    return store


@pytest.fixture(scope="module")
def report(store: MemoryStore) -> CalibrationReport:
    """The current and the leaky rules, back-tested once for the tests that read it."""
    return calibrate(store, {"current": default_rules(), "candidate": leaky_rules()}, NOW,
                     at=CUT, target_precision=0.3, target_volume=200)


def leaky_rules() -> Rules:
    """The default rules plus points that only converters ever earn, after converting."""
    data = yaml.safe_load(default_rules_text())
    data["version"] = "leaky"
    data["engagement"]["outcome.deal_won"] = {"points": 100}
    data["engagement"]["activity.onboarding_completed"] = {"points": 60}
    return parse_rules(yaml.safe_dump(data), "leaky")


def test_calibrate_matches_scikit_learn_on_an_independent_rebuild(
        report: CalibrationReport, population: list[GeneratedLead]) -> None:
    # GIVEN the leads' events before the cut-off alone, scored at the cut-off in another
    # store, and the generator's own labels
    rules = default_rules()
    included = [lead for lead in population if lead.included]
    before = MemoryStore()
    seed(before, included, rules, CUT, before=CUT)
    scores = [before.get_lead(lead_id_for(lead.email)).score  # type: ignore[union-attr]
              for lead in included]
    y = [int(lead.converted) for lead in included]
    # WHEN the whole population is back-tested (the `report` fixture)
    result = report.results[0]
    # THEN counts, AUC, calibrated Brier and precision/recall agree with scikit-learn
    assert report.included == len(included) and report.conversions == sum(y)
    assert report.excluded_young == sum(lead.young for lead in population) > 0
    assert report.excluded_converted == sum(lead.converted_before for lead in population) > 0
    assert result.auc == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    probs = IsotonicRegression(out_of_bounds="clip").fit(scores, y).predict(scores)
    assert result.brier == pytest.approx(brier_score_loss(y, probs), abs=1e-12)
    for row in result.thresholds:
        picked = [int(s >= row.threshold) for s in scores]
        assert row.volume == sum(picked)
        if not row.volume:  # nobody reaches it: no precision to speak of
            assert row.precision is None and row.recall == 0
            continue
        assert row.precision == pytest.approx(precision_score(y, picked, zero_division=0))
        assert row.recall == pytest.approx(recall_score(y, picked))
        assert row.lift == pytest.approx(row.precision / (sum(y) / len(y)))
    assert result.thresholds[0].volume > 0  # the MQL threshold was checked
    low, high = result.auc_interval.low, result.auc_interval.high
    assert low is not None and high is not None and low < result.auc < high
    assert 0.6 < result.auc < 0.95  # the default rules do rank this population
    for bands in (result.quantile_bands, result.stage_bands):
        assert sum(b.leads for b in bands) == len(y) and sum(b.conversions for b in bands) == sum(y)
    assert result.stage_bands[0].label == "< 0" and result.stage_bands[0].leads > 0


def test_targets_are_reported(report: CalibrationReport) -> None:
    chosen, by_volume = report.results[0].for_target_precision, report.results[0].for_target_volume
    assert chosen is not None and chosen.precision is not None and chosen.precision >= 0.3
    assert by_volume is not None and by_volume.volume <= 200


def test_targets_against_brute_force() -> None:
    scores = [5.0, 40.0, 40.0, 90.0, -10.0, 60.0, 60.0, 60.0, 12.0, 75.0]
    labels = [0, 1, 0, 1, 0, 1, 0, 0, 0, 1]
    by_precision, by_volume = metrics.targets(scores, labels, 0.5, 4)
    precision_at = {t: sum(y for s, y in zip(scores, labels, strict=True) if s >= t)
                    / sum(s >= t for s in scores) for t in scores}
    assert by_precision is not None and by_volume is not None
    assert by_precision.threshold == min(t for t, p in precision_at.items() if p >= 0.5)
    assert by_volume.threshold == min(t for t in scores if sum(s >= t for s in scores) <= 4)
    assert by_volume.volume == 2  # 60 has three leads: taking them would make 5
    assert metrics.targets(scores, labels, 1.01, 0) == (None, None)  # unreachable: said so


def test_a_rule_that_fires_only_after_conversion_does_not_improve_the_backtest(
        report: CalibrationReport, population: list[GeneratedLead]) -> None:
    # GIVEN a candidate that rewards winning and onboarding, which only converters do
    # WHEN both are back-tested (the `report` fixture)
    current, candidate = report.results
    # THEN the candidate ranks no better...
    assert candidate.auc is not None and current.auc is not None
    assert candidate.auc <= current.auc + 1e-9
    # ... although scoring with hindsight (every event, to now) would flatter it greatly
    hindsight = MemoryStore()
    seed(hindsight, [lead for lead in population if lead.included], leaky_rules(), NOW)
    included = [lead for lead in population if lead.included]
    leaked = roc_auc_score([int(lead.converted) for lead in included],
                           [hindsight.get_lead(lead_id_for(lead.email)).score  # type: ignore[union-attr]
                            for lead in included])
    assert leaked > current.auc + 0.1


def test_refunded_buyers_never_win_and_purchases_can_be_left_out(
        store: MemoryStore, report: CalibrationReport,
        population: list[GeneratedLead]) -> None:
    by_purchase = [lead for lead in population if lead.converted and any(
        e.type == "purchase_made" for e in lead.events)]
    refunded = [lead for lead in population if any(e.type == "purchase_refunded"
                                                   for e in lead.events)]
    assert by_purchase and refunded
    with_purchases = report
    without = calibrate(store, {"current": default_rules()}, NOW, at=CUT, resamples=0,
                        purchases_are_wins=False)
    assert with_purchases.conversions == sum(lead.converted for lead in population)
    assert without.conversions == with_purchases.conversions - len(by_purchase)
    assert without.included == with_purchases.included


def test_leads_younger_than_the_cutoff_are_excluded_not_counted_as_losses(
        population: list[GeneratedLead]) -> None:
    store = MemoryStore()
    seed(store, [lead for lead in population if lead.young][:50], default_rules(), NOW)
    report: CalibrationReport = calibrate(store, {"current": default_rules()}, NOW, at=CUT)
    assert report.examined == 50 and report.excluded_young == 50 and report.included == 0
    assert report.results[0].auc is None


def test_a_window_that_has_not_ended_is_refused(store: MemoryStore) -> None:
    with pytest.raises(ValidationFailed, match="window ends"):
        calibrate(store, {"current": default_rules()}, NOW, at=NOW - timedelta(days=30))
