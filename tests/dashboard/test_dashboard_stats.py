"""The dashboard's store primitives (`DashboardStats`) on memory, SQLite and the Firestore
emulator: counts by aggregation equal counts of the listed leads, and snapshots round-trip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.dashboard import snapshot
from leadscore.domain.outbox import StageChange
from leadscore.domain.state import LeadState
from leadscore.store.port import DashboardStats, LeadCount


def _lead(i: int, score: float, stage: str, grade: str, status: str) -> LeadState:
    return LeadState.model_validate({
        "lead_id": f"lead-{i:03d}", "email": f"p{i}@example.com", "score": score,
        "stage": stage, "grade": grade, "email_status": status, "non_opener": i % 4 == 0})


def test_counts_match_what_the_leads_say(store: Any) -> None:
    assert isinstance(store, DashboardStats)
    leads = [_lead(i, -30 + 7 * i, ["lead", "mql", "sql"][i % 3], "ABCD"[i % 4] + "1234"[i % 3],
                   ["active", "active", "bounced", "unsubscribed", "complained"][i % 5])
             for i in range(24)]
    for lead in leads:
        store.put_lead(lead)
    # WHEN counted by each filter THEN the aggregation equals a count of the leads
    for query in (LeadCount(stage="mql"), LeadCount(grade="B2"), LeadCount(non_opener=True),
                  LeadCount(email_status="bounced"), LeadCount(min_score=0, below_score=40),
                  LeadCount(below_score=0), LeadCount(min_score=40)):
        expected = sum(1 for x in leads if (query.stage in (None, x.stage))
                       and query.grade in (None, x.grade)
                       and query.non_opener in (None, x.non_opener)
                       and query.email_status in (None, x.email_status)
                       and (query.min_score is None or x.score >= query.min_score)
                       and (query.below_score is None or x.score < query.below_score))
        assert store.count_matching(query) == expected, query
    assert store.count_matching(LeadCount(below_score=0)) > 0  # negatives are counted


def test_handover_counts_split_sent_given_up_failed_and_pending(store: Any) -> None:
    def change(i: int, attempts: int, delivered: bool, given_up: bool = False) -> StageChange:
        return StageChange(id=f"h{i}", lead_id=f"lead-{i}", email=f"p{i}@example.com",
                           stage_before="lead", stage_after="mql", score=50, grade="B2",
                           at=NOW, attempts=attempts, next_attempt_at=NOW + timedelta(hours=i),
                           delivered=delivered, given_up=given_up)
    changes = [change(0, 0, False), change(1, 2, False), change(2, 1, True), change(3, 0, False),
               change(4, 10, True, given_up=True)]
    lead = _lead(0, 50, "mql", "B2", "active")
    from leadscore.store.port import LeadWrite

    store.transact(lead.lead_id, [], lambda snap: (LeadWrite(lead=lead, outbox=changes), None))
    assert store.count_handovers(False, attempted=False) == 2  # all new, none tried
    for c in changes:
        store.record_handover(c)
    assert store.count_handovers(True) == 2
    assert store.count_handovers(True, given_up=True) == 1  # the dashboard's "given up"
    assert store.count_handovers(False, attempted=True) == 1
    assert store.count_handovers(False, attempted=False) == 2


def test_snapshots_keep_one_record_per_day(store: Any) -> None:
    store.put_lead(_lead(1, 90, "sql", "A1", "active"))
    first = snapshot.take(store, NOW, store.count_leads())
    assert first["stage:sql"] == 1 and first["grade:A1"] == 1 and first["stage:lead"] == 0
    store.put_lead(_lead(2, 10, "lead", "D4", "active"))
    snapshot.take(store, NOW, store.count_leads())  # the same day: replaced
    snapshot.take(store, NOW + timedelta(days=1), store.count_leads())
    days = store.snapshots(limit=30)
    assert list(days) == [NOW.date().isoformat(), (NOW + timedelta(days=1)).date().isoformat()]
    assert days[NOW.date().isoformat()]["stage:lead"] == 1
    assert list(store.snapshots(limit=1)) == [(NOW + timedelta(days=1)).date().isoformat()]


def test_newest_in_stage_orders_by_the_time_the_stage_was_entered(store: Any) -> None:
    # GIVEN MQLs that entered the stage at different times, their scores in another order
    for i, (hours, score) in enumerate([(5, 90.0), (1, 41.0), (3, 60.0), (2, 75.0)]):
        lead = _lead(i, score, "mql", "B2", "active")
        lead.stage_since = NOW - timedelta(hours=hours)
        store.put_lead(lead)
    store.put_lead(_lead(9, 99.0, "sql", "A1", "active"))
    # WHEN the newest MQLs are asked for THEN the latest arrivals come first, score aside
    newest = store.newest_in_stage("mql", 3)
    assert [x.lead_id for x in newest] == ["lead-001", "lead-003", "lead-002"]
    assert [x.lead_id for x in store.newest_in_stage("sql", 5)] == ["lead-009"]


def test_top_movers_come_by_movement_each_way_and_skip_the_still(store: Any) -> None:
    for i, moved in enumerate([12.5, -40.0, 0.0, 33.0, -2.0, 7.0]):
        lead = _lead(i, 50.0, "mql", "B2", "active")
        lead.movement = moved
        store.put_lead(lead)
    assert [x.movement for x in store.top_movers(True, 2)] == [33.0, 12.5]
    assert [x.movement for x in store.top_movers(False, 5)] == [-40.0, -2.0]


def test_open_counters_are_summed_by_an_aggregation(store: Any) -> None:
    for i, (human, machine) in enumerate([(3, 1), (0, 4), (2, 0), (0, 0)]):
        lead = _lead(i, 10.0, "lead", "D4", "active")
        lead.counters = {k: v for k, v in (("email_opened", human),
                                           ("email_opened_machine", machine)) if v}
        store.put_lead(lead)
    assert store.sum_counter("email_opened") == 5
    assert store.sum_counter("email_opened_machine") == 5
    assert store.sum_counter("email_clicked") == 0


def test_the_latest_back_test_is_kept_as_one_document(store: Any) -> None:
    assert store.latest_calibration() is None
    report = {"at": "2026-08-24T12:00:00Z", "conversions": 3, "base_rate": None,
              "results": [{"name": "current", "thresholds": [{"threshold": 40.0}]}]}
    store.put_calibration(report)
    store.put_calibration({**report, "conversions": 4})  # the newer run replaces it
    assert store.latest_calibration() == {**report, "conversions": 4}


def test_a_counter_name_is_never_spliced_into_a_query(store: Any) -> None:
    import pytest

    if type(store).__name__ == "MemoryStore":
        return  # a dict look-up: nothing to splice
    with pytest.raises(ValueError, match="counter name"):
        store.sum_counter("x') + 1 --")
