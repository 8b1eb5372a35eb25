"""The scoring engine's working copy of a lead: as good as a deep copy, without its cost."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from leadscore.domain.movement import ScoreMark
from leadscore.domain.state import LeadState, Order, PurchaseTotals, working_copy

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def a_lead_with_every_container_filled() -> LeadState:
    models: dict[str, Any] = {"purchase_totals": {"EUR": PurchaseTotals(count=2)},
                              "orders": {"shopify:1": Order(refunds={"r1": 500})},
                              "profile_at": {"company": AT},
                              "score_marks": [ScoreMark(day="2026-11-01", score=12.5)]}
    lead = LeadState(lead_id="l_copy", email="ana@acme.example")
    for name, value in lead.__dict__.items():
        if isinstance(value, dict | list):
            setattr(lead, name, models.get(name, {"k": 1} if isinstance(value, dict) else [1]))
    return lead


def mutate_every_container(lead: LeadState) -> None:
    for value in lead.__dict__.values():
        if isinstance(value, dict):
            for item in value.values():
                if isinstance(item, Order):
                    item.refunds["r2"] = 1
                    item.weight = 99.0
                elif isinstance(item, PurchaseTotals):
                    item.count = 99
            value["added"] = 1
        elif isinstance(value, list):
            for mark in value:
                mark.score = -1.0
            value.append("added")


def test_a_working_copy_equals_a_deep_copy_and_shares_nothing_that_can_change() -> None:
    # GIVEN a lead whose every map and list holds something (models where the field does)
    lead = a_lead_with_every_container_filled()
    deep = lead.model_copy(deep=True)
    # WHEN the working copy is changed everywhere it can be changed in place
    copy = working_copy(lead)
    assert copy == deep
    mutate_every_container(copy)
    # THEN the original is untouched, as it would be after a deep copy
    assert lead == deep
    assert copy != deep
