"""`suggest-rules` on a population whose true conversion model is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadscore.domain.metrics import roc_auc
from leadscore.domain.rules import default_rules, default_rules_text, parse_rules
from leadscore.errors import ValidationFailed
from leadscore.service.ingest import ingest
from leadscore.service.suggest import candidate_yaml, suggest
from leadscore.store.memory import MemoryStore

from .generator import all_events, generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CUT = NOW - timedelta(days=90)


def seeded(n: int, seed: int) -> tuple[MemoryStore, list]:  # type: ignore[type-arg]
    leads = generate(n, CUT, seed=seed)
    store, rules, events = MemoryStore(), default_rules(), all_events(leads)
    for start in range(0, len(events), 2000):
        ingest(store, rules, events[start:start + 2000], NOW)
    return store, leads


def test_suggested_weights_recover_the_true_effects() -> None:
    # GIVEN 4,000 leads converting by a known logistic model
    store, leads = seeded(4000, seed=21)
    # WHEN weights are suggested
    found = suggest(store, default_rules(), NOW, at=CUT)
    # THEN the signs and the order of the effects' sizes are the true ones
    demo, pricing = found.coefficients["form.demo_request"], \
        found.coefficients["activity.pricing_page_visit"]
    student = found.coefficients["fit.student"]
    assert demo > 0 and pricing > 0 and student < 0
    assert abs(demo) > abs(student) > abs(pricing)
    assert found.points["form.demo_request"] > found.points["activity.pricing_page_visit"] > 0
    # ... and on the same holdout (the latest leads) it ranks within 0.02 of the true model
    included = sorted((lead for lead in leads if lead.included),
                      key=lambda lead: lead.events[0].occurred_at)
    holdout = included[found.training_leads:]
    true_auc = roc_auc([lead.true_logit for lead in holdout],
                       [int(lead.converted) for lead in holdout])
    assert found.holdout_leads == len(holdout) and true_auc is not None
    assert found.holdout_auc_model is not None
    assert abs(found.holdout_auc_model - true_auc) <= 0.02
    # the candidate file is a valid rules file with the proposed points
    candidate = parse_rules(candidate_yaml(default_rules_text(), found, "suggested"), "c")
    assert candidate.engagement["form.demo_request"].points == found.points["form.demo_request"]


def test_it_refuses_below_the_minimum_number_of_conversions() -> None:
    store, leads = seeded(300, seed=5)
    assert sum(lead.converted for lead in leads) < 100
    with pytest.raises(ValidationFailed, match="at least 100"):
        suggest(store, default_rules(), NOW, at=CUT)
