"""Plans made before the write lock (issue 20): the embedded store plans a write from
committed data first and keeps that plan only if the rows it read are unchanged under the
lock; otherwise it plans again, so a write is never based on a stale read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import activity
from conftest import NOW

from leadscore.domain.identity import lead_id_for, ledger_key
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import apply_events
from leadscore.service.erasure import erase_address
from leadscore.service.ingest import ingest
from leadscore.store.port import LeadSnapshot, LeadWrite
from leadscore.store.sqlite import SqliteStore

EMAIL = "ana@example.org"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """An embedded store on a file (plans are made early only there, not in memory)."""
    opened = SqliteStore(tmp_path / "early.db")
    yield opened
    opened.close()


def _lead(rules: Rules, score: float) -> Any:
    lead = apply_events(None, lead_id_for(EMAIL), EMAIL, [], rules, NOW)[0]
    lead.score = score
    return lead


def test_a_plan_from_unchanged_rows_is_made_once(store: SqliteStore, rules: Rules) -> None:
    # GIVEN a stored lead
    store.put_lead(_lead(rules, 1.0))
    calls: list[float] = []
    locked: list[bool] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, float]:
        assert snap.lead is not None
        calls.append(snap.lead.score)
        locked.append(store._commits._writer.locked())
        return LeadWrite(lead=_lead(rules, snap.lead.score + 1)), snap.lead.score

    # WHEN a write is planned and nobody else writes the lead meanwhile
    seen = store.transact(lead_id_for(EMAIL), (), plan)
    # THEN the plan made before the lock (the write lock free while it ran) is the one
    # committed: it ran once
    assert calls == [1.0] and seen == 1.0
    assert locked == [False]
    stored = store.get_lead(lead_id_for(EMAIL))
    assert stored is not None and stored.score == 2.0


def test_a_plan_whose_rows_changed_before_the_lock_is_made_again(
        store: SqliteStore, rules: Rules) -> None:
    # GIVEN a stored lead, and another writer that changes it while our first plan runs
    store.put_lead(_lead(rules, 1.0))
    calls: list[float] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, float]:
        assert snap.lead is not None
        calls.append(snap.lead.score)
        if len(calls) == 1:  # the other writer commits after our read, before our lock
            store.put_lead(_lead(rules, 10.0))
        return LeadWrite(lead=_lead(rules, snap.lead.score + 1)), snap.lead.score

    # WHEN the write is committed
    seen = store.transact(lead_id_for(EMAIL), (), plan)
    # THEN it was planned again from the rows under the lock, and the other write counts
    assert calls == [1.0, 10.0] and seen == 10.0
    stored = store.get_lead(lead_id_for(EMAIL))
    assert stored is not None and stored.score == 11.0


def test_inside_a_request_unit_plans_are_made_under_the_lock_only(
        store: SqliteStore, rules: Rules) -> None:
    # GIVEN a stored lead and a request's unit of work (its lock is already held)
    store.put_lead(_lead(rules, 1.0))
    calls: list[float] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, None]:
        assert snap.lead is not None
        calls.append(snap.lead.score)
        return LeadWrite(lead=_lead(rules, snap.lead.score + 1)), None

    # WHEN two writes of the same lead run in one unit
    with store.unit_of_work():
        store.transact(lead_id_for(EMAIL), (), plan)
        store.transact(lead_id_for(EMAIL), (), plan)
    # THEN each saw the one before it (read through the unit's own connection)
    assert calls == [1.0, 2.0]
    stored = store.get_lead(lead_id_for(EMAIL))
    assert stored is not None and stored.score == 3.0


def test_a_plan_whose_event_was_recorded_meanwhile_is_made_again(
        store: SqliteStore, rules: Rules) -> None:
    # GIVEN a stored lead, and the same event recorded by another writer while our first
    # plan runs (a provider's retry racing the original delivery)
    ingest(store, rules, [activity(EMAIL, "k0", NOW)], NOW)
    late = activity(EMAIL, "k1", NOW)
    k1_id = ledger_key(late.source, late.idempotency_key)
    seen: list[bool] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, bool]:
        seen.append(k1_id in snap.known)
        if len(seen) == 1:
            ingest(store, rules, [late], NOW)
        return None, k1_id in snap.known

    # WHEN our write is committed
    known = store.transact(lead_id_for(EMAIL), [k1_id], plan)
    # THEN it was planned again under the lock, where the event is already known
    assert seen == [False, True] and known is True


def test_a_plan_for_an_address_erased_meanwhile_is_made_again(
        store: SqliteStore, rules: Rules) -> None:
    # GIVEN an address never stored, erased by another request while our first plan runs
    # (only the tombstone changes: there is no lead row to differ)
    stones: list[bool] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, bool]:
        stones.append(snap.tombstone is not None)
        if len(stones) == 1:
            erase_address(store, EMAIL, NOW)
        return None, snap.tombstone is not None

    # WHEN our write is committed
    erased = store.transact(lead_id_for(EMAIL), [], plan)
    # THEN the plan made under the lock saw the erasure (nothing is resurrected)
    assert stones == [False, True] and erased is True
    assert store.get_lead(lead_id_for(EMAIL)) is None
