"""The LeadStore contract, part two: every write of the unit of work (service/writes.py) on
every adapter (memory, SQLite, Firestore emulator): faults at each step of a commit,
rescore, decay refresh, move, erase, and one history order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import event, form, opened
from conftest import NOW

from integration.test_rescore_and_report import generous_rules
from integration.test_store_concurrency import (
    test_eight_writers_on_one_lead_count_every_event_once as eight_writers,
)
from leadscore.domain.identity import lead_id_for, ledger_key
from leadscore.domain.rules import Rules
from leadscore.service.moves import move_lead
from leadscore.service.writes import apply_events, refresh_view, rescore_lead
from leadscore.store.memory import MemoryStore

ANA = "ana@example.com"
ANA_ID = lead_id_for(ANA)
STEPS = ["history", "lead", "outbox", "orders"]


def purchase(key: str = "p1", order: str = "A-1") -> Any:
    return event("purchase_made", ANA, key, NOW - timedelta(hours=1), source="shop",
                 order_id=order, amount_minor=15000, currency="EUR")


def fail_after(store: Any, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """Make the commit fail once the given part of it is staged, before it commits."""
    def staged(done: str) -> None:
        if done == step:
            raise RuntimeError(f"crash after staging {done}")
    monkeypatch.setattr(store, "_after_staging", staged)


def everything_about_ana(store: Any) -> Any:
    return (store.get_lead(ANA_ID), store.history(ANA_ID), store.order_owner("shop:A-1"),
            [h.id for h in store.pending_handovers(NOW + timedelta(days=1))])


@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_any_step_of_a_commit_writes_nothing(store: Any, rules: Rules,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        step: str) -> None:
    # GIVEN a purchase: a ledger entry, a new lead, a stage change and an order to index
    events = [purchase(), form(ANA, "f1", NOW, kind="demo_request", company="Acme")]
    fail_after(store, monkeypatch, step)
    # WHEN the commit fails after staging one of its parts
    with pytest.raises(RuntimeError):
        apply_events(store, ANA_ID, ANA, events, rules, NOW)
    # THEN nothing of it is stored
    assert everything_about_ana(store) == (None, [], None, [])
    # AND the retry applies everything once, with its stage change recorded once
    monkeypatch.undo()
    assert apply_events(store, ANA_ID, ANA, events, rules, NOW).applied == 2
    lead, history, owner, handovers = everything_about_ana(store)
    assert lead.stage == "customer" and len(history) == 2 and owner == ANA_ID
    assert len(handovers) == 1


@pytest.mark.parametrize("step", ["history", "lead"])
def test_a_fault_in_the_blind_path_writes_nothing(store: Any, rules: Rules,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  step: str) -> None:
    # GIVEN opens only (Firestore's blind path; one transaction elsewhere)
    events = [opened(ANA, "o1", NOW), opened(ANA, "o2", NOW)]
    fail_after(store, monkeypatch, step)
    with pytest.raises(RuntimeError):
        apply_events(store, ANA_ID, ANA, events, rules, NOW)
    assert everything_about_ana(store) == (None, [], None, [])
    monkeypatch.undo()
    assert apply_events(store, ANA_ID, ANA, events, rules, NOW).applied == 2
    assert store.get_lead(ANA_ID).counters == {"email_opened": 2}


@pytest.mark.parametrize("step", STEPS)
def test_a_fault_in_a_refresh_leaves_the_lead_as_it_was(store: Any, rules: Rules,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        step: str) -> None:
    # GIVEN an mql lead whose engagement will have faded in 40 days
    apply_events(store, ANA_ID, ANA, [form(ANA, "f1", NOW, kind="demo_request")], rules, NOW)
    before = everything_about_ana(store)
    fail_after(store, monkeypatch, step)
    # WHEN its refresh fails part-way
    with pytest.raises(RuntimeError):
        refresh_view(store, ANA_ID, rules, NOW + timedelta(days=40))
    # THEN nothing of it is stored, and the next run does it
    assert everything_about_ana(store) == before
    monkeypatch.undo()
    assert refresh_view(store, ANA_ID, rules, NOW + timedelta(days=40)) is not None


def test_rescore_stores_the_rebuilt_lead_with_its_entry_once(store: Any,
                                                             rules: Rules) -> None:
    # GIVEN a lead with a newsletter signup and an open
    apply_events(store, ANA_ID, ANA, [form(ANA, "f1", NOW - timedelta(days=1)),
                                      opened(ANA, "o1", NOW - timedelta(hours=2))], rules, NOW)
    new = generous_rules()
    # WHEN it is rescored under more generous rules, twice
    change = rescore_lead(store, ANA_ID, new, NOW)
    again = rescore_lead(store, ANA_ID, new, NOW)
    # THEN the first stores the new score with a history entry; the second changes nothing
    assert change is not None and change.score_after > change.score_before
    assert again is None
    lead = store.get_lead(ANA_ID)
    assert lead.rescored_for == new.version and lead.score == change.score_after
    kinds = [h.kind for h in store.history(ANA_ID)]
    assert kinds.count("rescore") == 1 and len(kinds) == 3
    assert rescore_lead(store, lead_id_for("nobody@x.com"), new, NOW) is None


def test_a_decay_refresh_is_recorded_once_per_moment(store: Any, rules: Rules) -> None:
    # GIVEN an sql lead
    apply_events(store, ANA_ID, ANA, [form(ANA, "f1", NOW, kind="demo_request",
                                           job_title="CTO", industry="SaaS")], rules, NOW)
    later = NOW + timedelta(days=60)
    # WHEN it is refreshed 60 days later, twice at that moment
    change = refresh_view(store, ANA_ID, rules, later)
    assert refresh_view(store, ANA_ID, rules, later) is None
    # THEN the faded view is stored with one decay entry, and the stage change handed over
    assert change is not None and change.score_after < change.score_before
    lead = store.get_lead(ANA_ID)
    assert lead.scored_at == later and lead.score == change.score_after
    assert [h.kind for h in store.history(ANA_ID)] == ["form_submitted", "decay"]
    if change.stage_after != change.stage_before:
        assert any(h.stage_after == change.stage_after
                   for h in store.pending_handovers(later))
    assert refresh_view(store, lead_id_for("nobody@x.com"), rules, later) is None


def test_a_move_carries_every_event_and_erases_the_old_lead(store: Any,
                                                            rules: Rules) -> None:
    # GIVEN a lead with a form, opens and a purchase
    events = [form(ANA, "f1", NOW - timedelta(days=2), company="Acme"),
              opened(ANA, "o1", NOW - timedelta(days=1)), purchase()]
    apply_events(store, ANA_ID, ANA, events, rules, NOW)
    old = store.get_lead(ANA_ID)
    # WHEN the address changes (twice: a retry)
    assert move_lead(store, rules, ANA, "ana.new@example.com", NOW) == 3
    assert move_lead(store, rules, ANA, "ana.new@example.com", NOW) == 0
    # THEN the new lead holds the same facts and history, and the old one is gone
    new_id = lead_id_for("ana.new@example.com")
    moved = store.get_lead(new_id)
    assert moved.counters == old.counters and moved.profile == old.profile
    assert [h.event_id for h in store.history(new_id)] == ["f1", "o1", "p1"]
    assert store.get_lead(ANA_ID) is None and store.history(ANA_ID) == []
    assert store.order_owner("shop:A-1") == new_id


def test_history_order_is_the_same_on_every_adapter(store: Any, rules: Rules) -> None:
    # GIVEN entries at the same moment with ids out of order, and a decay entry
    same = NOW - timedelta(hours=1)
    apply_events(store, ANA_ID, ANA, [opened(ANA, "o-b", same), opened(ANA, "o-c", same),
                                      opened(ANA, "o-a", same),
                                      opened(ANA, "o-z", NOW - timedelta(hours=2))],
                 rules, NOW)
    refresh_view(store, ANA_ID, rules, NOW + timedelta(days=3))
    # THEN the history reads by (time, entry id); a limited read is its newest tail
    full = store.history(ANA_ID)
    same_time = sorted(["o-a", "o-b", "o-c"], key=lambda k: ledger_key("esp", k))
    assert [h.event_id or h.kind for h in full] == ["o-z", *same_time, "decay"]
    assert full == sorted(full, key=lambda h: (h.at, h.entry_id))
    assert store.history(ANA_ID, limit=3) == full[-3:]
    assert store.history(ANA_ID, limit=1) == full[-1:]


def test_eight_writers_on_one_lead_in_memory(rules: Rules) -> None:
    """The durable stores run this in test_store_concurrency; the fake keeps up too."""
    eight_writers(MemoryStore(), rules)
