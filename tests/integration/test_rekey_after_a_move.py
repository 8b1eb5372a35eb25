"""`leadscore rekey` after a Mailchimp `upemail` moved the keyed id of a legacy lead's
address: the moved record there is no erasure, so the legacy lead is never erased for it;
the re-key merges it into the lead the address moved to (`service/rekey.py`), and a store
asked to re-key onto the moved id keeps the lead as it is. Memory, SQLite, Firestore."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import form, opened
from conftest import NOW, make_store

from leadscore.domain.identity import lead_id_for, legacy_lead_id
from leadscore.domain.rules import Rules
from leadscore.service.ingest import ingest
from leadscore.service.moves import move_lead
from leadscore.service.rekey import merger, rekey_leads
from leadscore.service.writes import apply_events

OLD, NEW = "ana@example.com", "ana.new@example.com"
LEGACY, OLD_ID, NEW_ID = legacy_lead_id(OLD), lead_id_for(OLD), lead_id_for(NEW)
LATER = NOW + timedelta(hours=1)


def keys(store: Any, lead_id: str) -> list[str]:
    return [h.event_id for h in store.history(lead_id) if h.event_id]


def legacy_and_moved(store: Any, rules: Rules) -> None:
    """GIVEN a lead an earlier release stored under the unkeyed id of the old address, and
    a lead at the new address, to which the old address moved before `leadscore rekey`."""
    apply_events(store, LEGACY, OLD, [form(OLD, "f1", NOW - timedelta(days=3)),
                                      opened(OLD, "o1", NOW - timedelta(days=2))],
                 rules, NOW - timedelta(days=2))
    ingest(store, rules, [form(NEW, "fn", NOW - timedelta(days=3))], NOW - timedelta(days=2))
    move_lead(store, rules, OLD, NEW, NOW)
    assert store.tombstone(OLD_ID).moved_to == NEW_ID


def test_a_legacy_lead_whose_keyed_id_moved_is_merged_where_it_went(store: Any,
                                                                   rules: Rules) -> None:
    legacy_and_moved(store, rules)
    # WHEN the operator re-keys
    report = rekey_leads(store, rules, LATER)
    # THEN the legacy lead's events count on the new lead, and nothing was erased
    assert (report.moved, report.merged) == (1, 1)
    assert sorted(keys(store, NEW_ID)) == ["f1", "fn", "o1"]
    assert store.get_lead(NEW_ID).counters["email_opened"] == 1
    assert store.get_lead(LEGACY) is None and store.tombstone(LEGACY) is None
    assert store.tombstone(OLD_ID).moved_to == NEW_ID
    # and a provider's retry of the legacy open, sent to the old address, counts once
    ingest(store, rules, [opened(OLD, "o1", NOW - timedelta(days=2))], LATER)
    assert store.get_lead(NEW_ID).counters["email_opened"] == 1


def test_a_store_asked_to_rekey_onto_a_moved_id_keeps_the_lead(store: Any,
                                                              rules: Rules) -> None:
    legacy_and_moved(store, rules)
    # WHEN a re-key onto the keyed id reaches the store after the move (a racing run)
    moved = store.rekey_lead(LEGACY, OLD_ID, merger(OLD_ID, rules, LATER))
    # THEN it is refused and the legacy lead stays whole: no erasure, nothing under the id
    assert moved is False
    assert keys(store, LEGACY) == ["f1", "o1"] and store.get_lead(LEGACY) is not None
    assert store.tombstone(LEGACY) is None
    assert store.get_lead(OLD_ID) is None and store.history(OLD_ID) == []


@pytest.mark.firestore
def test_firestore_a_move_between_copying_and_switching_puts_the_copies_back(
        tmp_path: Path, rules: Rules, request: pytest.FixtureRequest) -> None:
    # GIVEN a legacy lead on Firestore, whose keyed id gets a moved record after the re-key
    # copied its history there but before the switching transaction
    store = make_store("firestore", tmp_path, request)
    apply_events(store, LEGACY, OLD, [form(OLD, "f1", NOW - timedelta(days=3)),
                                      opened(OLD, "o1", NOW - timedelta(days=2))],
                 rules, NOW - timedelta(days=2))
    ingest(store, rules, [form(NEW, "fn", NOW - timedelta(days=3))], NOW - timedelta(days=2))
    real, calls = store._move_children, []

    def move_children(old: Any, new: Any) -> Any:
        copied = real(old, new)
        calls.append(1)
        if len(calls) == 2:  # history and orders copied
            store._erased.document(OLD_ID).set(  # what `record_move` writes
                {"erased_at": NOW.timestamp(), "settled": True, "moved_to": NEW_ID})
        return copied

    store._move_children = move_children
    # WHEN the store re-keys onto the keyed id
    moved = store.rekey_lead(LEGACY, OLD_ID, merger(OLD_ID, rules, LATER))
    # THEN the switch sees the record: the legacy lead is back whole, nothing under the id
    assert moved is False
    assert keys(store, LEGACY) == ["f1", "o1"] and store.get_lead(LEGACY) is not None
    assert store.tombstone(LEGACY) is None
    assert store.history(OLD_ID) == []
