"""`suggest-rules` on a population whose true conversion model is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from leadscore.cli import main
from leadscore.container import install
from leadscore.domain.metrics import roc_auc
from leadscore.domain.rules import default_rules, default_rules_text, parse_rules
from leadscore.errors import ValidationFailed
from leadscore.service.ingest import ingest
from leadscore.service.suggest import candidate_yaml, suggest
from leadscore.store.memory import MemoryStore
from leadscore.store.sqlite import SqliteStore

from .generator import TRUE_EFFECTS, all_events, generate

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


def true_model_rules() -> str:
    """Rules whose score is the generator's true logit in points (20 a unit of log-odds):
    no fading to speak of (the longest half-life), no frequency bonus, a newsletter worth
    nothing, and the true effects' points."""
    data = yaml.safe_load(default_rules_text())
    data["version"] = "true-model"
    data["engagement_half_life_days"] = 3650
    data["behaviour"] = []
    data["engagement"]["form.newsletter"] = {"points": 0}
    data["engagement"]["form.demo_request"] = {"points": 20 * TRUE_EFFECTS["demo_request"]}
    data["engagement"]["activity.pricing_page_visit"] = {
        "points": 20 * TRUE_EFFECTS["pricing_visits"]}
    for rule in data["fit"]:
        if rule["id"] == "student":
            rule["points"] = 20 * TRUE_EFFECTS["student"]
    return yaml.safe_dump(data, sort_keys=False)


def test_it_says_so_when_the_current_rules_are_as_good(tmp_path: Path) -> None:
    # GIVEN 3,000 leads converting by a known model, and current rules that score exactly
    # that model (in a SQLite store, as the command line reads it)
    rules_file = tmp_path / "true.yaml"
    rules_file.write_text(true_model_rules())
    rules = parse_rules(rules_file.read_text(), str(rules_file))
    store = SqliteStore(tmp_path / "leads.db")
    events = all_events(generate(3000, CUT, seed=33))
    for start in range(0, len(events), 2000):
        ingest(store, rules, events[start:start + 2000], NOW)
    # WHEN weights are suggested against them
    found = suggest(store, rules, NOW, at=CUT)
    # THEN the fit does not beat them on the holdout, and the suggestion says so
    assert found.conversions >= 100
    assert found.holdout_auc_current is not None and found.holdout_auc_model is not None
    assert found.holdout_auc_current >= found.holdout_auc_model - 0.01
    assert found.current_is_as_good
    # ... while rules that ignore demo requests, on the same leads, are not as good
    blind = yaml.safe_load(rules_file.read_text())
    blind["engagement"]["form.demo_request"] = {"points": 0}
    worse = suggest(store, parse_rules(yaml.safe_dump(blind), "blind"), NOW, at=CUT)
    assert not worse.current_is_as_good, worse
    # ... and the command line tells the marketer
    store.close()
    out = CliRunner().invoke(main, ["--store", f"sqlite:///{tmp_path / 'leads.db'}",
                                    "suggest-rules", "--out", str(tmp_path / "c.yaml"),
                                    "--at", CUT.isoformat()],
                             env={"LEADSCORE_RULES": str(rules_file)})
    install(None)
    assert out.exit_code == 0, out.output
    assert "the current rules rank as well as the suggestion: no change needed" in out.output
