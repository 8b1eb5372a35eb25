"""Rescoring from stored events, and the report's calibration (issue 7)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import yaml
from builders import event, form, opened
from conftest import NOW, another_store_like, fail_on_call

from integration.test_store_contract import facts
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules, default_rules_text, parse_rules
from leadscore.service import writes as uow
from leadscore.service.reports import build_report
from leadscore.service.rescore import rescore
from leadscore.service.writes import apply_events

LATER = NOW + timedelta(hours=1)


def generous_rules() -> Rules:
    data = yaml.safe_load(default_rules_text())
    data["version"] = "generous-2026.12"
    data["engagement"]["form.newsletter"] = {"points": 40}
    return parse_rules(yaml.safe_dump(data))


def seed(store: Any, rules: Rules) -> None:
    for i in range(8):
        email = f"p{i}@acme.com"
        kind = "newsletter" if i % 2 else "webinar"
        apply_events(store, lead_id_for(email), email, [
            form(email, f"f{i}", NOW - timedelta(days=i), kind=kind, job_title="CTO"),
            opened(email, f"o{i}", NOW - timedelta(hours=i))], rules, NOW)


def snapshot(store: Any) -> dict[str, Any]:
    return {x.lead_id: facts(x) for x in store.list_leads(limit=100)}


def test_a_dry_run_writes_nothing_and_the_applied_run_matches_it(store: Any,
                                                                 rules: Rules) -> None:
    seed(store, rules)
    before = snapshot(store)
    new = generous_rules()
    preview = rescore(store, new, LATER, dry_run=True)
    assert snapshot(store) == before  # nothing written
    assert preview.changed == 4 and preview.stage_moves == {"lead->mql": 4}
    applied = rescore(store, new, LATER, dry_run=False)
    assert applied.changed == preview.changed
    assert applied.stage_moves == preview.stage_moves
    assert applied.distribution == preview.distribution
    assert [m.lead_id for m in applied.biggest_movers] == [
        m.lead_id for m in preview.biggest_movers]
    lead = store.get_lead(lead_id_for("p1@acme.com"))
    assert lead.rules_version == new.version and lead.stage == "mql"
    assert store.history(lead.lead_id)[-1].kind == "rescore"


def test_an_interrupted_rescore_resumes_to_the_same_end(store: Any, rules: Rules,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Any,
                                                        request: pytest.FixtureRequest) -> None:
    clean = another_store_like(store, tmp_path, request)
    seed(store, rules)
    seed(clean, rules)
    new = generous_rules()
    rescore(clean, new, LATER, dry_run=False)
    fail_on_call(monkeypatch, uow, "rescore_lead", 5, OSError("instance stopped"))
    with pytest.raises(OSError):
        rescore(store, new, LATER, dry_run=False)
    monkeypatch.undo()
    resumed = rescore(store, new, LATER, dry_run=False)
    assert resumed.skipped == 4  # the four done before the crash
    assert snapshot(store) == snapshot(clean)


def test_calibration_rates_rise_with_score(store: Any, rules: Rules) -> None:
    # GIVEN 120 leads of rising engagement, where the chance of buying rises with the score
    rng = random.Random(7)
    for i in range(120):
        email = f"c{i}@shop.com"
        heat = i % 4  # 0: cold ... 3: hot
        kinds = ["newsletter", "content_download", "webinar", "demo_request"][: heat + 1]
        events = [form(email, f"{email}-{k}", NOW - timedelta(days=30), kind=k) for k in kinds]
        if rng.random() < [0.05, 0.25, 0.5, 0.85][heat]:
            events.append(event("purchase_made", email, f"{email}-p", NOW - timedelta(days=10),
                                source="shop", order_id=f"O-{i}", amount_minor=5000,
                                currency="EUR"))
        apply_events(store, lead_id_for(email), email, events, rules, NOW)
    report = build_report(store, rules, NOW)
    rates = [row.purchase_rate for row in report.calibration if row.leads >= 10]
    assert len(rates) >= 3 and rates == sorted(rates) and rates[-1] > rates[0] + 0.4
    assert report.leads == 120 and sum(report.funnel.values()) == 120
    assert sum(sum(row.values()) for row in report.grades.values()) == 120
    assert all(r.median_days_to_purchase == 20 for r in report.calibration if r.purchased)
