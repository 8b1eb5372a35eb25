"""The back-test's fast paths give the same answers as the plain ones they replace:
SQLite's page scan of events vs `iter_leads` + `history`, rebuilding without explanations
vs with them, and the bootstrap counted by cells vs resampling the leads one by one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from leadscore.domain import metrics
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.service.calibration import backtest
from leadscore.service.ingest import ingest
from leadscore.service.lead_events import lead_pages
from leadscore.store.memory import MemoryStore
from leadscore.store.port import EventScan
from leadscore.store.sqlite import SqliteStore

from .generator import all_events, generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CUT = NOW - timedelta(days=90)


def test_sqlite_scan_and_the_plain_reads_give_the_same_back_test(tmp_path: Path) -> None:
    # GIVEN the same 600 leads in SQLite (which scans pages of events) and in memory (read
    # lead by lead through the port)
    events, rules = all_events(generate(600, CUT, seed=9)), default_rules()
    sqlite, memory = SqliteStore(tmp_path / "leads.db"), MemoryStore()
    for store in (sqlite, memory):
        for start in range(0, len(events), 1000):
            ingest(store, rules, events[start:start + 1000], NOW)
    assert isinstance(sqlite, EventScan) and not isinstance(memory, EventScan)
    # WHEN both are read page by page (pages of 7, so pages end mid-population)
    scanned = [lead for page in lead_pages(sqlite, page=7) for lead in page]
    plain = [lead for page in lead_pages(memory, page=7) for lead in page]
    # THEN every lead comes once, with the same events in the same order
    assert len(scanned) == 600
    assert [(lead.lead_id, lead.email, lead.events) for lead in scanned] == [
        (lead.lead_id, lead.email, lead.events) for lead in plain]
    # ... and the back-tests agree to the last digit
    a = backtest(sqlite, {"current": rules}, CUT, 90, NOW)
    b = backtest(memory, {"current": rules}, CUT, 90, NOW)
    assert (a.scores, a.stages, a.labels, a.examined, a.excluded_young,
            a.excluded_converted) == (b.scores, b.stages, b.labels, b.examined,
                                      b.excluded_young, b.excluded_converted)
    assert a.labels.count(1) > 10


def test_rebuilding_without_explanations_gives_the_same_lead() -> None:
    rules = default_rules()
    for lead in generate(200, CUT, seed=4):
        explained, entries = apply_events(None, "id", lead.email, lead.events, rules, NOW)
        bare, none = apply_events(None, "id", lead.email, lead.events, rules, NOW,
                                  explain=False)
        assert bare == explained and none == [] and len(entries) == len(lead.events)


@pytest.mark.parametrize("ties", [True, False])
def test_bootstrap_matches_resampling_lead_by_lead(ties: bool) -> None:
    # GIVEN 400 scored leads (with many equal scores, or almost none)
    rng = random.Random(2)
    scores = [float(rng.randrange(-3, 12)) if ties else rng.uniform(-30, 120)
              for _ in range(400)]
    labels = [int(rng.random() < 0.15 + (0.03 * s if ties else 0.003 * s)) for s in scores]
    probs = metrics.isotonic(scores, labels)
    # WHEN the intervals are computed
    auc, brier = metrics.bootstrap(scores, labels, probs, resamples=60, seed=16)
    # THEN they are those of resampling the leads with the same draws, each resample's AUC
    # by scikit-learn
    draws = random.Random(16)
    aucs, briers = [], []
    for _ in range(60):
        picked = draws.choices(range(400), k=400)
        y = [labels[i] for i in picked]
        if 0 < sum(y) < len(y):
            aucs.append(roc_auc_score(y, [scores[i] for i in picked]))
        briers.append(sum((probs[i] - labels[i]) ** 2 for i in picked) / 400)
    aucs.sort()
    briers.sort()
    assert auc.low == pytest.approx(aucs[round(0.025 * (len(aucs) - 1))], abs=1e-12)
    assert auc.high == pytest.approx(aucs[round(0.975 * (len(aucs) - 1))], abs=1e-12)
    assert brier.low == pytest.approx(briers[round(0.025 * 59)], abs=1e-12)
    assert brier.high == pytest.approx(briers[round(0.975 * 59)], abs=1e-12)
    assert auc.low < auc.high
