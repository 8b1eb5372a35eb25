"""Concurrent and permuted deliveries: every event counts once, whatever the order."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest
from builders import activity, event, form, opened
from conftest import NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.test_store_contract import facts
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.writes import apply_events

HOT = "hot.lead@example.com"
THREADS, PER_THREAD = 8, 25


def test_eight_writers_on_one_lead_count_every_event_once(durable_store: Any,
                                                          rules: Rules) -> None:
    # GIVEN 8 writers, each with 25 distinct events for the same lead, each sent twice
    lead_id = lead_id_for(HOT)
    batches = [[activity(HOT, f"w{w}-e{i}", NOW - timedelta(minutes=i + 30 * w))
                for i in range(PER_THREAD)] for w in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def write(events: list[Any]) -> None:
        try:
            start.wait()
            for e in events:
                apply_events(durable_store, lead_id, HOT, [e], rules, NOW)
                apply_events(durable_store, lead_id, HOT, [e], rules, NOW)  # the retry
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    # WHEN they all write at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # THEN exactly 200 events counted, no errors, and the view reflects all of them
    assert errors == []
    lead = durable_store.get_lead(lead_id)
    assert lead.counters["activity"] == THREADS * PER_THREAD
    assert len(durable_store.history(lead_id)) == THREADS * PER_THREAD
    assert sum(lead.cap_counts.values()) == THREADS * PER_THREAD
    assert lead.score == pytest.approx(lead.engagement_score + lead.fit_score)
    assert lead.scored_at == NOW


EMAIL = "perm@example.com"
POOL = [
    form(EMAIL, "f1", NOW - timedelta(days=20), kind="webinar", company="A", job_title="CTO"),
    form(EMAIL, "f2", NOW - timedelta(days=2), kind="demo_request", company="B"),
    opened(EMAIL, "o1", NOW - timedelta(days=10)),
    opened(EMAIL, "o2", NOW - timedelta(days=9), machine=True),
    opened(EMAIL, "o3", NOW - timedelta(days=1)),
    event("email_clicked", EMAIL, "c1", NOW - timedelta(days=9), source="esp"),
    event("email_delivered", EMAIL, "d1", NOW - timedelta(days=30), source="esp"),
    event("email_unsubscribed", EMAIL, "u1", NOW - timedelta(days=8), source="esp"),
    event("email_resubscribed", EMAIL, "r1", NOW - timedelta(days=3), source="esp"),
    event("purchase_made", EMAIL, "p1", NOW - timedelta(days=4), source="shop",
          order_id="A-1", amount_minor=15000, currency="EUR"),
    event("purchase_refunded", EMAIL, "p1r", NOW - timedelta(days=1), source="shop",
          order_id="A-1", refund_id="R-1", amount_minor=5000, currency="EUR"),
    # purchase rules read per-currency totals and paid days: a second report of an order
    # (earlier), a dollar order refunded in full, a yen order
    event("purchase_made", EMAIL, "p1b", NOW - timedelta(days=6), source="shop",
          order_id="A-1", amount_minor=15000, currency="EUR"),
    event("purchase_made", EMAIL, "p2", NOW - timedelta(days=400), source="shop",
          order_id="B-1", amount_minor=40000, currency="USD"),
    event("purchase_refunded", EMAIL, "p2r", NOW - timedelta(days=300), source="shop",
          order_id="B-1", refund_id="R-2", amount_minor=40000, currency="USD"),
    event("purchase_made", EMAIL, "p3", NOW - timedelta(days=500), source="shop",
          order_id="C-1", amount_minor=900000, currency="JPY"),
    activity(EMAIL, "v1", NOW - timedelta(days=5), name="pricing_page_visit"),
]


def _apply_in_chunks(store: Any, rules: Rules, events: list[Any], seed: int) -> Any:
    chunks, rest, rng = [], list(events), random.Random(seed)
    while rest:
        size = rng.randint(1, 4)
        chunks.append(rest[:size])
        rest = rest[size:]
    for chunk in chunks:
        apply_events(store, lead_id_for(EMAIL), EMAIL, chunk, rules, NOW)
    return store.get_lead(lead_id_for(EMAIL))


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(order=st.permutations(POOL), repeats=st.lists(st.sampled_from(POOL), max_size=5),
       seed=st.integers(0, 1000))
def test_any_order_with_duplicates_gives_the_same_lead(store: Any, rules: Rules, order: Any,
                                                       repeats: Any, seed: int) -> None:
    # GIVEN the reference lead, built in time order, one event at a time
    store.erase(lead_id_for(EMAIL))
    reference = _apply_in_chunks(store, rules, sorted(POOL, key=lambda e: e.occurred_at), 0)
    store.erase(lead_id_for(EMAIL))
    # WHEN the same events arrive permuted, in random groups, with some delivered again
    shuffled = _apply_in_chunks(store, rules, list(order) + list(repeats), seed)
    # THEN the lead is the same (purchase totals, paid days and buckets included)
    assert facts(shuffled) == facts(reference)
    assert set(shuffled.purchase_totals) == {"EUR", "JPY"} and len(shuffled.purchase_days) == 2
    assert len(store.history(lead_id_for(EMAIL))) == len(POOL)
