"""Orders as records of their own (issue 21), on every adapter: memory, SQLite, Firestore.

The lead document stays bounded however many orders a buyer makes; the lead's purchase
aggregates are exact whatever the order of events; a lead written before orders had records
(an `orders` map in its document) still reads the same and moves its orders out on the next
write.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
import yaml
from builders import event, form
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules, default_rules_text, parse_rules
from leadscore.domain.scoring import apply_events as domain_apply
from leadscore.domain.scoring import materialise
from leadscore.domain.state import LeadState, Order
from leadscore.service.leads import purchases
from leadscore.service.writes import apply_events, refresh_view, rescore_lead

ANA = "ana@example.com"
ANA_ID = lead_id_for(ANA)


def paid(key: str, order: str, amount: int, at: Any, currency: str = "EUR") -> Any:
    return event("purchase_made", ANA, key, at, source="shop", order_id=order,
                 amount_minor=amount, currency=currency)


def refund(key: str, order: str, refund_id: str, amount: int, at: Any) -> Any:
    return event("purchase_refunded", ANA, key, at, source="shop", order_id=order,
                 refund_id=refund_id, amount_minor=amount, currency="EUR")


def apply_one_by_one(store: Any, rules: Rules, events: list[Any]) -> None:
    for e in events:
        apply_events(store, ANA_ID, ANA, [e], rules, NOW)


def doc_size(lead: LeadState) -> int:
    return len(lead.model_dump_json())


def test_order_records_live_beside_the_lead_and_go_with_it(store: Any, rules: Rules) -> None:
    # GIVEN two orders, one partly refunded
    apply_one_by_one(store, rules, [
        paid("p1", "A-1", 10000, NOW - timedelta(days=2)),
        paid("p2", "A-2", 2500, NOW - timedelta(days=1)),
        refund("r1", "A-1", "R-1", 4000, NOW - timedelta(hours=1))])
    # THEN each order is its own record, and the lead keeps only totals
    records = store.orders_of(ANA_ID)
    assert {k: (o.amount_minor, o.refunded_minor) for k, o in records.items()} == {
        "shop:A-1": (10000, 4000), "shop:A-2": (2500, 0)}
    lead = store.get_lead(ANA_ID)
    assert lead.orders == {} and lead.stage == "customer"
    assert purchases(lead)["by_currency"]["EUR"] == {
        "count": 2, "total_minor": 8500, "average_minor": 4250, "refunded_minor": 4000}
    # AND erasing the lead erases its orders
    store.erase(ANA_ID)
    assert store.orders_of(ANA_ID) == {}


def test_an_order_refunded_in_full_leaves_the_stored_totals(store: Any, rules: Rules) -> None:
    # GIVEN a euro order that stays, and a dollar order paid then refunded in full, each
    # event its own write
    apply_one_by_one(store, rules, [
        paid("p1", "A-1", 10000, NOW - timedelta(days=3)),
        paid("p2", "B-1", 20000, NOW - timedelta(days=2), currency="USD"),
        event("purchase_refunded", ANA, "r2", NOW - timedelta(hours=1), source="shop",
              order_id="B-1", refund_id="R-2", amount_minor=20000, currency="USD")])
    # THEN the stored lead keeps no dollar totals, paid day or purchase points of it (a
    # merge-write on Firestore used to keep the emptied map keys: still a dollar buyer)
    lead = store.get_lead(ANA_ID)
    assert set(lead.purchase_totals) == {"EUR"}
    assert list(lead.purchase_days) == [(NOW - timedelta(days=3)).date().isoformat()]
    assert len(lead.purchase_acc) == 1


def test_faded_purchase_buckets_leave_the_stored_lead(store: Any, rules: Rules) -> None:
    # GIVEN purchase points with a one-hour half-life, bought ten days ago
    data = yaml.safe_load(default_rules_text())
    data["purchase"]["half_life_days"] = 1 / 24
    hourly = parse_rules(yaml.safe_dump(data))
    then = NOW - timedelta(days=10)
    apply_events(store, ANA_ID, ANA, [paid("p1", "A-1", 10000, then)], hourly, then)
    assert len(store.get_lead(ANA_ID).purchase_acc) == 1
    # WHEN the decay job refreshes the lead now
    refresh_view(store, ANA_ID, hourly, NOW)
    # THEN the bucket, worth nothing now, is gone from the stored lead; the totals stay
    lead = store.get_lead(ANA_ID)
    assert lead.purchase_acc == {} and lead.purchase_totals["EUR"].count == 1


def test_a_buyer_with_many_orders_keeps_a_bounded_lead(store: Any, rules: Rules) -> None:
    # GIVEN a buyer with a few orders, then with many more
    apply_events(store, ANA_ID, ANA, [paid(f"p{i}", f"A-{i}", 1000 + i, NOW - timedelta(
        minutes=i)) for i in range(5)], rules, NOW)
    small = doc_size(store.get_lead(ANA_ID))
    apply_events(store, ANA_ID, ANA, [paid(f"p{i}", f"A-{i}", 1000 + i, NOW - timedelta(
        minutes=i)) for i in range(5, 120)], rules, NOW)
    # THEN the lead document did not grow with them (a few bytes of bigger numbers at most)
    lead = store.get_lead(ANA_ID)
    assert doc_size(lead) <= small + 64
    assert purchases(lead)["count"] == 120 and len(store.orders_of(ANA_ID)) == 120


def _story() -> list[Any]:
    day = timedelta(days=1)
    return [paid("p1", "A-1", 20000, NOW - 9 * day), paid("p1b", "A-1", 20000, NOW - 8 * day),
            refund("r1", "A-1", "R-1", 5000, NOW - 7 * day),
            refund("r1b", "A-1", "R-1", 8000, NOW - 6 * day),  # cumulative: 8000 in all
            paid("p2", "A-2", 1500, NOW - 5 * day, currency="USD"),
            paid("p3", "A-3", 3000, NOW - 4 * day),
            refund("r3", "A-3", "R-3", 3000, NOW - 3 * day),  # fully refunded
            refund("r4", "A-4", "R-4", 700, NOW - 2 * day),  # its order comes later
            paid("p4", "A-4", 9900, NOW - day)]


def test_aggregates_are_exact_in_any_order_and_under_retries(store: Any, rules: Rules) -> None:
    # GIVEN the same purchases and refunds delivered in a shuffled order, some twice
    events = _story()
    shuffled = events + random.Random(7).sample(events, 4)
    random.Random(3).shuffle(shuffled)
    apply_one_by_one(store, rules, shuffled)
    # THEN the totals and the score are those of the events in time order, computed purely
    expected, _ = domain_apply(None, ANA_ID, ANA, events, rules, NOW)
    lead = store.get_lead(ANA_ID)
    assert lead.purchase_totals == expected.purchase_totals
    assert lead.purchase_acc.keys() == expected.purchase_acc.keys()
    for key, value in expected.purchase_acc.items():
        assert lead.purchase_acc[key] == pytest.approx(value, rel=1e-9)
    assert lead.score == pytest.approx(expected.score, abs=1e-3)
    assert purchases(lead)["by_currency"] == {
        "EUR": {"count": 2, "total_minor": 12000 + 9200, "average_minor": 10600,
                "refunded_minor": 8700},
        "USD": {"count": 1, "total_minor": 1500, "average_minor": 1500, "refunded_minor": 0}}


def _stored_as_legacy(store: Any, rules: Rules) -> tuple[Any, dict[str, Order]]:
    """Ana's story as a release before order records stored it (its orders inside the lead
    document); the lead as scored today, and its orders."""
    orders: dict[str, Order] = {}
    modern, _ = domain_apply(None, ANA_ID, ANA, _story(), rules, NOW, orders)
    store.put_lead(modern.model_copy(update={
        "orders": {k: o.model_copy(update={"weight": 0.0, "weight_key": ""})
                   for k, o in orders.items()},
        "purchase_totals": {}, "purchase_acc": {}}))
    return modern, orders


def test_a_legacy_lead_reads_the_same_and_moves_its_orders_out(store: Any,
                                                             rules: Rules) -> None:
    # GIVEN a lead written before orders had records: its orders inside its document
    modern, orders = _stored_as_legacy(store, rules)
    # THEN it reads as before: same stage, same purchases
    stored = store.get_lead(ANA_ID)
    assert purchases(stored)["by_currency"] == purchases(modern)["by_currency"]
    assert materialise(stored, rules, NOW).score == pytest.approx(modern.score, abs=1e-3)
    # WHEN its next transactional write arrives (a form post with a profile, no purchase;
    # blind writes such as opens leave the map alone, and no order is ever added to it)
    apply_events(store, ANA_ID, ANA, [form(ANA, "f1", NOW, kind="contact", job_title="CTO")],
                 rules, NOW)
    # THEN the orders left the document for records, and the totals are unchanged
    lead = store.get_lead(ANA_ID)
    assert lead.orders == {} and lead.stage == "customer"
    assert set(store.orders_of(ANA_ID)) == set(orders)
    assert lead.purchase_totals == modern.purchase_totals
    # AND a later refund of a legacy order lands on its record
    apply_events(store, ANA_ID, ANA, [refund("r9", "A-4", "R-9", 900, NOW)], rules, NOW)
    assert store.orders_of(ANA_ID)["shop:A-4"].refunded_minor == 1600


def test_a_legacy_leads_old_refund_redelivered_under_its_new_key_counts_once(
        store: Any, rules: Rules) -> None:
    # GIVEN a lead written before orders had records, whose order A-1 holds refund R-1 at
    # 8000 inside its document (review of the hooks merge)
    _stored_as_legacy(store, rules)
    counted = store.get_lead(ANA_ID).counters.get("purchase_refunded")
    # WHEN the shop redelivers that refund under the key refunds have now (by their order)
    out = apply_events(store, ANA_ID, ANA, [refund("refund:shop-A-1:R-1:8000", "A-1", "R-1",
                                                   8000, NOW)], rules, NOW)
    # THEN it is a duplicate: nothing applied, counted or refunded again
    assert out.applied == 0 and out.duplicates == 1
    lead = store.get_lead(ANA_ID)
    assert lead.counters.get("purchase_refunded") == counted
    assert [e.kind for e in store.history(ANA_ID)].count("purchase_refunded") == 0
    assert lead.orders["shop:A-1"].refunded_minor == 8000


def test_a_rescore_rebuilds_the_order_records(store: Any, rules: Rules) -> None:
    apply_one_by_one(store, rules, _story())
    before = store.orders_of(ANA_ID)
    # WHEN the rules change (a purchase is worth more) and the lead is rescored
    richer = rules.model_copy(update={
        "version": rules.version + "-richer",
        "purchase": rules.purchase.model_copy(update={
            "per_purchase": rules.purchase.per_purchase + 10})})
    change = rescore_lead(store, ANA_ID, richer, NOW)
    # THEN the score rose, and the records carry the new rules' weights, nothing else moved
    assert change is not None and change.score_after > change.score_before
    after = store.orders_of(ANA_ID)
    assert set(after) == set(before)
    assert all(after[k].net_minor == before[k].net_minor for k in after)
    assert after["shop:A-1"].weight > before["shop:A-1"].weight
    assert json.loads(store.get_lead(ANA_ID).model_dump_json())["orders"] == {}
