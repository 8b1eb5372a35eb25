"""A Mailchimp `upemail` move and what comes for the old address after it, on every adapter
(memory, SQLite, Firestore emulator): the moved record (`Tombstone.moved_to`, written by
`store.move_away` as the old lead goes) sends every later write for the old address to the
new lead, where the ledger de-duplicates a provider's retry; erasures of either address
leave nothing that names them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import form, opened
from conftest import NOW, make_store

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.erasure import erase_address
from leadscore.service.ingest import ingest
from leadscore.service.moves import move_lead
from leadscore.service.writes import apply_events

OLD, NEW, THIRD = "ana@example.com", "ana.new@example.com", "ana.third@example.com"
OLD_ID, NEW_ID, THIRD_ID = lead_id_for(OLD), lead_id_for(NEW), lead_id_for(THIRD)
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def firestore_store(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    return make_store("firestore", tmp_path, request)


def moved_ana(store: Any, rules: Rules) -> Any:
    """GIVEN a lead with a form and an open, moved to a new address by `upemail`."""
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(hours=3)),
                          opened(OLD, "o1", NOW - timedelta(hours=2))], NOW)
    assert move_lead(store, rules, OLD, NEW, NOW) == 2
    return store.get_lead(NEW_ID)


def test_a_retried_old_address_event_is_a_duplicate_on_the_new_lead(store: Any,
                                                                    rules: Rules) -> None:
    before = moved_ana(store, rules)
    # WHEN the provider retries an old-address event the move carried over (same key)
    result = ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(hours=2))], LATER)
    # THEN it counts nowhere: the new lead's score is unchanged and no old-id lead exists
    assert (result.applied, result.duplicates) == (0, 1)
    after = store.get_lead(NEW_ID)
    assert after.score == before.score and after.counters == before.counters
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []
    assert [h.event_id for h in store.history(NEW_ID) if h.event_id] == ["f1", "o1"]


def test_a_new_old_address_event_scores_on_the_new_lead(store: Any, rules: Rules) -> None:
    before = moved_ana(store, rules)
    # WHEN an event the move never saw arrives for the old address
    result = ingest(store, rules, [opened(OLD, "o2", NOW - timedelta(minutes=5))], LATER)
    # THEN it scores on the new lead, under the new address, and starts no old-id lead
    assert result.applied == 1
    after = store.get_lead(NEW_ID)
    assert after.counters["email_opened"] == before.counters["email_opened"] + 1
    assert after.score > before.score
    entry = [h for h in store.history(NEW_ID) if h.event_id == "o2"]
    assert entry and entry[0].event["email"] == NEW
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []


def test_a_retried_upemail_keeps_the_moved_record(store: Any, rules: Rules) -> None:
    before = moved_ana(store, rules)
    # WHEN Mailchimp retries the `upemail` itself
    assert move_lead(store, rules, OLD, NEW, LATER) == 0
    # THEN the record still sends old-address events to the new lead, counted once
    assert store.tombstone(OLD_ID).moved_to == NEW_ID
    ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(hours=2))], LATER)
    assert store.get_lead(NEW_ID).counters == before.counters
    assert store.get_lead(OLD_ID) is None


def test_erasing_the_new_address_removes_the_moved_record(store: Any, rules: Rules) -> None:
    moved_ana(store, rules)
    # WHEN the new address is erased
    erase_address(store, NEW, LATER)
    # THEN nothing names it any more: no record points at its lead id
    assert store.tombstone(OLD_ID) is None
    assert store.get_lead(NEW_ID) is None
    # and an old-address event is one of an unknown address again (it writes nothing
    # erased: the erased lead is not brought back under either id)
    ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(hours=2))], LATER)
    assert store.get_lead(NEW_ID) is None and store.history(NEW_ID) == []


def test_erasing_the_old_address_after_a_move_resurrects_nothing(store: Any,
                                                                rules: Rules) -> None:
    before = moved_ana(store, rules)
    # WHEN the old address is erased after the move
    erase_address(store, OLD, LATER)
    # THEN its record is a plain tombstone: a retry, or a new event, starts no lead there
    stone = store.tombstone(OLD_ID)
    assert stone is not None and stone.moved_to is None
    ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(hours=2)),
                          opened(OLD, "o3", LATER + timedelta(minutes=1))],
           LATER + timedelta(minutes=2))
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []
    assert store.get_lead(NEW_ID).counters == before.counters  # the moved lead stays


def test_a_second_move_repoints_the_first_moves_record(store: Any, rules: Rules) -> None:
    before = moved_ana(store, rules)
    # WHEN the new address moves on again
    assert move_lead(store, rules, NEW, THIRD, LATER) == 2
    # THEN events for the first address land on the third lead, de-duplicated there
    assert store.tombstone(OLD_ID).moved_to == THIRD_ID
    ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(hours=2)),
                          opened(OLD, "o4", LATER)], LATER)
    third = store.get_lead(THIRD_ID)
    assert third.counters["email_opened"] == before.counters["email_opened"] + 1
    assert store.get_lead(OLD_ID) is None and store.get_lead(NEW_ID) is None


def test_moving_back_to_the_first_address_brings_the_lead_home(store: Any,
                                                               rules: Rules) -> None:
    before = moved_ana(store, rules)
    # WHEN the address moves back to the first one
    assert move_lead(store, rules, NEW, OLD, LATER) == 2
    # THEN the lead is under the first address again, with no moved record there, and
    # events for the second address land on it
    assert store.tombstone(OLD_ID) is None
    assert store.get_lead(OLD_ID).counters == before.counters
    ingest(store, rules, [opened(NEW, "o1", NOW - timedelta(hours=2)),
                          opened(NEW, "o5", LATER)], LATER)
    assert (store.get_lead(OLD_ID).counters["email_opened"]
            == before.counters["email_opened"] + 1)
    assert store.get_lead(NEW_ID) is None


@pytest.mark.firestore
def test_firestore_a_blind_write_racing_the_move_lands_on_the_new_lead(
        firestore_store: Any, rules: Rules) -> None:
    # GIVEN a lead, and an open (blind path) whose tombstone check passes just before the
    # address moves, so its batch is committed under the old id after the move
    store = firestore_store
    ingest(store, rules, [form(OLD, "f1", NOW - timedelta(hours=3)),
                          opened(OLD, "o1", NOW - timedelta(hours=2))], NOW)
    real = store.tombstone

    def tombstone(lead_id: str) -> Any:
        store.tombstone = real
        found = real(lead_id)
        assert move_lead(store, rules, OLD, NEW, NOW) == 2
        return found

    store.tombstone = tombstone
    # WHEN the open's batch commits under the old id
    result = apply_events(store, OLD_ID, OLD, [opened(OLD, "o2", NOW - timedelta(minutes=5))],
                          rules, LATER)
    # THEN its event counts on the new lead, and nothing is left under the old id
    assert result.applied == 1 and result.lead_id == NEW_ID
    assert store.get_lead(NEW_ID).counters["email_opened"] == 2
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []
