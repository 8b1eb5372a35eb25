"""A Mailchimp `upemail` against erasures and concurrent writes, on every adapter (memory,
SQLite, Firestore emulator): an erasure of either address wins over the move, an event
committed while the move runs is never lost, and a write following a moved record lands
where the address is now (`service/moves.py`, `store.record_move`, `writes._follow_move`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import form, opened
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.errors import TransientError
from leadscore.service.erasure import erase_address
from leadscore.service.ingest import ingest
from leadscore.service.moves import move_lead
from leadscore.service.writes import apply_events

OLD, NEW, THIRD = "ana@example.com", "ana.new@example.com", "ana.third@example.com"
OLD_ID, NEW_ID, THIRD_ID = lead_id_for(OLD), lead_id_for(NEW), lead_id_for(THIRD)
LATER = NOW + timedelta(hours=1)


def keys(store: Any, lead_id: str) -> list[str]:
    return [h.event_id for h in store.history(lead_id) if h.event_id]


def test_an_upemail_for_an_erased_address_brings_nobody_back(store: Any,
                                                             rules: Rules) -> None:
    # GIVEN a person at the old address, erased, and a lead at the new address
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(days=3)),
                          opened(OLD, "o1", NOW - timedelta(days=2))], NOW - timedelta(days=2))
    ingest(store, rules, [form(NEW, "fn", NOW - timedelta(days=3))], NOW - timedelta(days=2))
    erase_address(store, OLD, NOW - timedelta(days=1))
    # WHEN Mailchimp still sends the `upemail`, then a late redelivery of an old event
    assert move_lead(store, rules, OLD, NEW, NOW) == 0
    late = ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(days=2))], LATER)
    # THEN the erasure stands: no moved record replaced it, the event is dropped
    stone = store.tombstone(OLD_ID)
    assert stone is not None and stone.moved_to is None
    assert stone.erased_at == NOW - timedelta(days=1)
    assert (late.applied, late.erased) == (0, 1)
    assert keys(store, NEW_ID) == ["fn"] and store.get_lead(OLD_ID) is None
    # and erasing the new address later leaves the old one erased too
    erase_address(store, NEW, LATER)
    again = ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(days=2))],
                   LATER + timedelta(hours=1))
    assert again.applied == 0 and store.get_lead(OLD_ID) is None
    assert store.tombstone(OLD_ID).moved_to is None


def test_an_upemail_after_an_erasure_and_a_consented_restart_keeps_the_erasure(
        store: Any, rules: Rules) -> None:
    # GIVEN an erased old address whose person started again with a form
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(days=3)),
                          opened(OLD, "o1", NOW - timedelta(days=2))], NOW - timedelta(days=2))
    erase_address(store, OLD, NOW - timedelta(days=1))
    ingest(store, rules, [form(OLD, "f2", NOW - timedelta(hours=5))], NOW - timedelta(hours=5))
    restarted = store.get_lead(OLD_ID)
    assert restarted is not None
    # WHEN the address moves, then an event from before the erasure is redelivered
    move_lead(store, rules, OLD, NEW, NOW)
    late = ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(days=2))], LATER)
    # THEN it counts nowhere: the erasure's tombstone still guards the old id
    assert late.applied == 0
    assert "o1" not in keys(store, NEW_ID) and "o1" not in keys(store, OLD_ID)
    stone = store.tombstone(OLD_ID)
    assert stone is not None and stone.moved_to is None
    assert stone.erased_at == NOW - timedelta(days=1)


def test_a_move_onto_an_erased_address_leaves_the_old_lead_in_place(store: Any,
                                                                   rules: Rules) -> None:
    # GIVEN a lead at the old address, and an erased new address
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(days=5))], NOW - timedelta(days=5))
    ingest(store, rules, [form(NEW, "fn", NOW - timedelta(days=3))], NOW - timedelta(days=3))
    erase_address(store, NEW, NOW - timedelta(days=2))
    # WHEN the old address is moved onto it
    assert move_lead(store, rules, OLD, NEW, NOW) == 0
    # THEN no moved record blocks the old address: its lead stays, a later form counts there
    assert store.tombstone(OLD_ID) is None
    assert keys(store, OLD_ID) == ["f1"]
    result = ingest(store, rules, [form(OLD, "f2", LATER)], LATER)
    assert result.applied == 1 and keys(store, OLD_ID) == ["f1", "f2"]
    assert store.get_lead(NEW_ID) is None and store.tombstone(NEW_ID).moved_to is None


def test_the_new_address_erased_while_the_move_replays_leaves_no_record(
        store: Any, rules: Rules) -> None:
    # GIVEN a lead at the old address and one at the new address, which is erased just as
    # the move reads the old lead's history
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(days=5))], NOW - timedelta(days=5))
    ingest(store, rules, [form(NEW, "fn", NOW - timedelta(days=3))], NOW - timedelta(days=3))
    real = store.history

    def history(lead_id: str, limit: int | None = None) -> Any:
        found = real(lead_id, limit)
        if lead_id == OLD_ID and limit is None:
            store.history = real
            erase_address(store, NEW, NOW - timedelta(minutes=1))
        return found

    store.history = history
    # WHEN the move goes on
    move_lead(store, rules, OLD, NEW, NOW)
    store.history = real
    # THEN nothing points at the erased address, and the old lead is kept
    assert store.tombstone(OLD_ID) is None
    assert keys(store, OLD_ID) == ["f1"] and store.get_lead(NEW_ID) is None
    result = ingest(store, rules, [opened(OLD, "o2", LATER)], LATER)
    assert result.applied == 1 and keys(store, OLD_ID) == ["f1", "o2"]


@pytest.mark.parametrize("new_lead", [False, True], ids=["new-address", "known-address"])
def test_an_event_committed_while_the_move_runs_is_kept(store: Any, rules: Rules,
                                                        new_lead: bool) -> None:
    # GIVEN a lead at the old address (and maybe one at the new), and an open for the old
    # address committed just after the move read the old lead's history
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(hours=3))], NOW)
    if new_lead:
        ingest(store, rules, [form(NEW, "fn", NOW - timedelta(hours=4))], NOW)
    real, answered = store.history, []

    def history(lead_id: str, limit: int | None = None) -> Any:
        found = real(lead_id, limit)
        if lead_id == OLD_ID and limit is None:
            store.history = real
            try:
                answered.append(ingest(store, rules, [opened(OLD, "o2", NOW)], NOW).applied)
            except TransientError:  # refused: the sender retries
                answered.append(None)
        return found

    store.history = history
    # WHEN the move finishes, and the sender retries the open if it was refused
    move_lead(store, rules, OLD, NEW, NOW)
    store.history = real
    if answered == [None]:
        ingest(store, rules, [opened(OLD, "o2", NOW)], LATER)
    # THEN the open counts once, on the new lead; nothing is left under the old id
    assert keys(store, NEW_ID).count("o2") == 1 and "f1" in keys(store, NEW_ID)
    assert store.get_lead(NEW_ID).counters["email_opened"] == 1
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []
    if new_lead:
        assert answered == [1]  # nothing to wait for: it followed the record at once


def test_a_followed_write_racing_a_second_move_lands_on_the_third_lead(
        store: Any, rules: Rules) -> None:
    # GIVEN an address moved once, whose new address moves on while a write for the first
    # address follows the first record
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(hours=3)),
                          opened(OLD, "o1", NOW - timedelta(hours=2))], NOW)
    move_lead(store, rules, OLD, NEW, NOW)
    real = store.get_lead

    def get_lead(lead_id: str) -> Any:
        found = real(lead_id)
        if lead_id == NEW_ID:
            store.get_lead = real
            assert move_lead(store, rules, NEW, THIRD, NOW) == 2
        return found

    store.get_lead = get_lead
    # WHEN that write commits
    result = ingest(store, rules, [opened(OLD, "o2", NOW - timedelta(minutes=5))], LATER)
    store.get_lead = real
    # THEN it counts on the third lead, and nothing is written under the second id
    assert result.applied == 1
    assert keys(store, THIRD_ID) == ["f1", "o1", "o2"]
    assert store.get_lead(NEW_ID) is None and store.history(NEW_ID) == []
    assert store.tombstone(NEW_ID).moved_to == THIRD_ID


def test_a_lead_stranded_under_a_moved_record_is_carried_over_by_the_next_write(
        store: Any, rules: Rules) -> None:
    # GIVEN a moved address under whose record a lead stands again with an event the move
    # never carried (a write that ignored the record, as one racing a second move did)
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(hours=3))], NOW)
    move_lead(store, rules, OLD, NEW, NOW)
    apply_events(store, OLD_ID, OLD, [opened(OLD, "o1", NOW - timedelta(hours=2))], rules,
                 NOW, follow_moves=False)
    assert store.get_lead(OLD_ID) is not None
    # WHEN the next event for the old address arrives
    result = ingest(store, rules, [opened(OLD, "o2", NOW - timedelta(minutes=5))], LATER)
    # THEN it counts on the new lead, with the stranded lead's event, and nothing is left
    # under the old id
    assert result.applied == 1
    assert keys(store, NEW_ID) == ["f1", "o1", "o2"]
    assert store.get_lead(NEW_ID).counters["email_opened"] == 2
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []
