"""On every store (memory, SQLite, the Firestore emulator, its blind path included): any
permutation of a random history from 1970 to 2200, with duplicates and in random
deliveries, under half-lives from one hour to ten years, gives the same lead as scoring the
whole history at once, every number finite (issue 15, "What it must show")."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.test_decay_any_date import ANA, _close, draw_case

from leadscore.domain.identity import lead_id_for
from leadscore.domain.scoring import apply_events as score_whole
from leadscore.domain.scoring import breakdown
from leadscore.service.writes import apply_events

ANA_ID = lead_id_for(ANA)


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_order_on_any_store_gives_the_whole_history(store: Any, data: Any) -> None:
    # GIVEN random rules (half-lives from one hour to ten years) and a history 1970-2200
    rules, history, now = draw_case(data.draw)
    # WHEN it arrives in any order, in deliveries of any size, some events delivered again
    stream = data.draw(st.permutations(
        history + data.draw(st.lists(st.sampled_from(history), max_size=4))))
    store.erase(ANA_ID)
    while stream:
        size = data.draw(st.integers(min_value=1, max_value=len(stream)))
        apply_events(store, ANA_ID, ANA, stream[:size], rules, now)
        stream = stream[size:]
    lead = store.get_lead(ANA_ID)
    records: dict[str, Any] = {}
    whole = score_whole(None, ANA_ID, ANA, history, rules, now, records)[0]
    # THEN the stored lead is the whole history's: view, facts, order records, all finite
    for name in ("score", "fit_score", "engagement_score"):
        assert _close(getattr(lead, name), getattr(whole, name), rounded=True), name
    assert (lead.stage, lead.grade, lead.profile, lead.counters, lead.cap_counts,
            lead.email_status, lead.purchase_totals, lead.purchase_days) == (
                whole.stage, whole.grade, whole.profile, whole.counters, whole.cap_counts,
                whole.email_status, whole.purchase_totals, whole.purchase_days)
    assert store.orders_of(ANA_ID) == records
    for facts, other in ((lead.eng_acc, whole.eng_acc), (lead.cap_weights, whole.cap_weights),
                         (lead.purchase_acc, whole.purchase_acc)):
        assert facts.keys() == other.keys()
        assert all(_close(facts[k], other[k]) for k in facts)
    assert len(store.history(ANA_ID)) == len(history)
    parts = breakdown(lead, rules, now)
    assert all(math.isfinite(v) for v in [parts.fit, parts.engagement, lead.score])
    assert breakdown(whole, rules, now).purchase_bands == parts.purchase_bands
