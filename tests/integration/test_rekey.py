"""`leadscore rekey` (issue 21): leads stored under the unkeyed ids of earlier releases move
to their keyed ids with everything stored with them, atomically per lead, idempotently and
resumably; a lead that already started under the new id is merged exactly. On memory,
SQLite and the Firestore emulator."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import event, form, opened
from click.testing import CliRunner
from conftest import NOW, another_store_like, fail_on_call

from leadscore.cli import main
from leadscore.container import install
from leadscore.domain.identity import lead_id_for, legacy_lead_id
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState
from leadscore.service.rekey import rekey_leads
from leadscore.service.writes import apply_events
from leadscore.store.port import EspSynced, VisitorLink
from leadscore.store.sqlite import SqliteStore

ANA = "ana@old-release.example"
OLD, NEW = legacy_lead_id(ANA), lead_id_for(ANA)
EARLY = NOW - timedelta(days=20)


def _old_events() -> list[Any]:
    return [form(ANA, "f1", EARLY, kind="demo_request", job_title="CTO", industry="SaaS",
                 seniority="VP"),
            opened(ANA, "o1", EARLY + timedelta(days=1)),
            event("purchase_made", ANA, "p1", EARLY + timedelta(days=2), source="shop",
                  order_id="in_1", amount_minor=4990, currency="EUR",
                  aliases={"pi_1": "in_1"})]


def _seed_legacy(store: Any, rules: Rules) -> LeadState:
    """A lead as an earlier release stored it: under the unkeyed id, with an order, an
    alias, a pending handover, an email-tool record and a visitor link."""
    apply_events(store, OLD, ANA, _old_events(), rules, EARLY + timedelta(days=2))
    store.record_esp_synced([EspSynced(tool="brevo", lead_id=OLD, member={"SCORE": 1},
                                       synced_at=EARLY)])
    store.put_visitor_link(VisitorLink(key="v_ana", lead_id=OLD, email=ANA,
                                       expires_at=NOW + timedelta(days=30)))
    lead = store.get_lead(OLD)
    assert lead is not None and store.pending_handovers(NOW)
    return lead


def _nothing_left_under(store: Any, lead_id: str) -> None:
    assert store.get_lead(lead_id) is None
    assert store.history(lead_id) == [] and store.orders_of(lead_id) == {}
    assert store.esp_synced("brevo", [lead_id]) == {}
    assert all(c.lead_id != lead_id for c in store.pending_handovers(NOW + timedelta(days=9)))


def test_a_legacy_lead_moves_to_its_keyed_id_with_everything_stored_with_it(
        store: Any, rules: Rules) -> None:
    # GIVEN a lead stored under its old, unkeyed id
    before = _seed_legacy(store, rules)
    history = store.history(OLD)
    # WHEN the operator re-keys
    report = rekey_leads(store, rules, NOW)
    # THEN it is under its keyed id, unchanged, and nothing of it is left under the old one
    assert (report.scanned, report.moved, report.merged) == (1, 1, 0)
    moved = store.get_lead(NEW)
    assert moved is not None
    assert moved.model_dump(exclude={"lead_id"}) == before.model_dump(exclude={"lead_id"})
    assert [e.model_dump() for e in store.history(NEW)] == [e.model_dump() for e in history]
    assert set(store.orders_of(NEW)) == {"shop:in_1"}
    assert store.order_owner("shop:in_1") == NEW and store.order_alias("shop:pi_1") == "shop:in_1"
    assert [c.lead_id for c in store.pending_handovers(NOW)] == [NEW]
    assert list(store.esp_synced("brevo", [NEW])) == [NEW]
    link = store.visitor_link("v_ana")
    assert link is not None and link.lead_id == NEW
    _nothing_left_under(store, OLD)
    # AND erasing the lead by address removes the order aliases written with it
    store.erase(NEW)
    assert store.order_alias("shop:pi_1") is None


def test_rekey_is_idempotent_and_a_dry_run_writes_nothing(store: Any, rules: Rules) -> None:
    _seed_legacy(store, rules)
    dry = rekey_leads(store, rules, NOW, dry_run=True)
    assert (dry.moved, dry.dry_run) == (1, True) and store.get_lead(NEW) is None
    assert rekey_leads(store, rules, NOW).moved == 1
    again = rekey_leads(store, rules, NOW)
    assert (again.scanned, again.moved, again.current) == (1, 0, 1)


def test_a_lead_started_under_the_new_id_after_the_upgrade_is_merged_exactly(
        store: Any, rules: Rules, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # GIVEN the legacy lead, and events that arrived after the upgrade under the keyed id
    old = _seed_legacy(store, rules)
    later = [opened(ANA, "o2", NOW - timedelta(days=1)),
             event("email_clicked", ANA, "c1", NOW - timedelta(hours=20), source="esp")]
    apply_events(store, NEW, ANA, later, rules, NOW - timedelta(hours=20))
    # WHEN the operator re-keys
    report = rekey_leads(store, rules, NOW)
    # THEN one lead holds both histories, scored as if every event had come to it
    assert (report.moved, report.merged) == (1, 1)
    reference = another_store_like(store, tmp_path, request)
    apply_events(reference, NEW, ANA, _old_events() + later, rules, NOW)
    merged, expected = store.get_lead(NEW), reference.get_lead(NEW)
    assert merged is not None and expected is not None
    assert merged.score == pytest.approx(expected.score)
    assert (merged.counters, merged.profile, merged.email_status) == (
        expected.counters, expected.profile, expected.email_status)
    assert merged.created_at == old.created_at  # the earlier of the two
    assert {e.entry_id for e in store.history(NEW)} == {
        e.entry_id for e in reference.history(NEW)} | {f"merged-{OLD}"}  # + what it did
    assert set(store.orders_of(NEW)) == {"shop:in_1"}
    _nothing_left_under(store, OLD)


def test_an_interrupted_run_resumes_and_finishes(store: Any, rules: Rules,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN three legacy leads, and a run that dies on the second move
    emails = [f"r{i}@old-release.example" for i in range(3)]
    for email in emails:
        apply_events(store, legacy_lead_id(email), email,
                     [form(email, "f", EARLY, kind="contact")], rules, EARLY)
    fail_on_call(monkeypatch, store, "rekey_lead", 2, RuntimeError("instance stopped"))
    with pytest.raises(RuntimeError):
        rekey_leads(store, rules, NOW, page=1)
    # WHEN it runs again
    report = rekey_leads(store, rules, NOW, page=1)
    # THEN every lead is under its keyed id, once
    assert report.moved == 2 and report.current == 1
    assert all(store.get_lead(lead_id_for(e)) for e in emails)
    assert not any(store.get_lead(legacy_lead_id(e)) for e in emails)
    assert store.count_leads() == 3


@pytest.mark.firestore
def test_a_firestore_move_that_stopped_between_its_steps_is_finished_by_the_next_run(
        firestore_client: Any, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a Firestore move that copied the history, then stopped before the switch
    import uuid

    from leadscore.store.firestore import FirestoreStore

    store = FirestoreStore(firestore_client, collection=f"leads_{uuid.uuid4().hex[:12]}")
    before = _seed_legacy(store, rules)
    fail_on_call(monkeypatch, store, "_switch", 1, RuntimeError("instance stopped"))
    with pytest.raises(RuntimeError):
        rekey_leads(store, rules, NOW)
    assert store.get_lead(OLD) is not None and store.history(OLD) == []  # half-way
    # WHEN the next run comes
    report = rekey_leads(store, rules, NOW)
    # THEN the move is complete and exact
    assert report.moved == 1
    moved = store.get_lead(NEW)
    assert moved is not None
    assert moved.model_dump(exclude={"lead_id"}) == before.model_dump(exclude={"lead_id"})
    assert len(store.history(NEW)) == 3
    _nothing_left_under(store, OLD)


@pytest.mark.firestore
def test_a_firestore_write_to_the_old_lead_during_its_move_is_moved_too(
        firestore_client: Any, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a legacy lead on Firestore, and a writer (a refund's order owner look-up still
    # names the old id) that writes to it after its history was copied, before the switch
    import uuid

    from leadscore.store.firestore import FirestoreStore

    store = FirestoreStore(firestore_client, collection=f"leads_{uuid.uuid4().hex[:12]}")
    _seed_legacy(store, rules)
    real, calls = store._switch, []

    def racing(*args: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:
            apply_events(store, OLD, ANA, [opened(ANA, "o9", NOW - timedelta(hours=1))],
                         rules, NOW)
        return real(*args)

    monkeypatch.setattr(store, "_switch", racing)
    # WHEN the lead is re-keyed
    assert rekey_leads(store, rules, NOW).moved == 1
    # THEN the switch noticed the write, copied again, and nothing was lost
    assert len(calls) == 2
    lead = store.get_lead(NEW)
    assert lead is not None and lead.counters.get("email_opened") == 2
    assert len(store.history(NEW)) == 4
    _nothing_left_under(store, OLD)


def test_the_cli_rekeys_with_a_dry_run_first(tmp_path: Path, rules: Rules) -> None:
    path = tmp_path / "leads.db"
    store = SqliteStore(path)
    _seed_legacy(store, rules)
    store.close()
    url = f"sqlite:///{path}"
    try:
        dry = CliRunner().invoke(main, ["--store", url, "rekey", "--dry-run"])
        install(None)
        done = CliRunner().invoke(main, ["--store", url, "rekey"])
        install(None)
        resumed = CliRunner().invoke(main, ["--store", url, "rekey", "--json", "--after", NEW])
    finally:
        install(None)
    assert dry.exit_code == 0 and "would move 1" in dry.output, dry.output
    assert done.exit_code == 0 and "moved 1" in done.output, done.output
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["scanned"] == 0
    reopened = SqliteStore(path)
    assert reopened.get_lead(NEW) is not None and reopened.get_lead(OLD) is None
    reopened.close()


def test_a_rekey_racing_an_erasure_never_brings_the_lead_back(store: Any, rules: Rules) -> None:
    # GIVEN a legacy lead, and `leadscore rekey` running at the moment the erasure of its
    # address has erased its first id (found by /tmp/rev3/r1_rekey_erase.py: the move put
    # the lead back under the tombstoned keyed id, and the erasure answered "nothing")
    from leadscore.service.erasure import erase_address

    _seed_legacy(store, rules)
    real, calls = store.erase, []

    def erase(lead_id: str, erased_at: Any = None) -> bool:
        found: bool = real(lead_id, erased_at=erased_at)
        calls.append(lead_id)
        if len(calls) == 1:
            rekey_leads(store, rules, NOW)
        return found

    store.erase = erase
    # WHEN the address is erased
    erased = erase_address(store, ANA, NOW)
    store.erase = real
    # THEN the lead was erased, nothing of it is left under either id, and a later open
    # for the address starts nothing
    assert erased
    _nothing_left_under(store, OLD)
    _nothing_left_under(store, NEW)
    late = apply_events(store, NEW, ANA, [opened(ANA, "o-late", NOW + timedelta(minutes=1))],
                        rules, NOW + timedelta(minutes=2))
    assert late.applied == 0 and store.get_lead(NEW) is None


def test_a_legacy_lead_whose_address_was_erased_is_erased_not_moved(
        store: Any, rules: Rules) -> None:
    # GIVEN a legacy lead whose keyed id already carries an erasure's tombstone
    _seed_legacy(store, rules)
    store.erase(NEW, erased_at=NOW)
    # WHEN the operator re-keys
    report = rekey_leads(store, rules, NOW + timedelta(minutes=1))
    # THEN nothing moved: the legacy lead is erased too, with the same erasure time
    assert report.moved == 0
    _nothing_left_under(store, OLD)
    _nothing_left_under(store, NEW)
    stone = store.tombstone(OLD)
    assert stone is not None and stone.erased_at == NOW


@pytest.mark.firestore
def test_firestore_an_erasure_between_copying_and_switching_is_never_undone(
        firestore_client: Any, rules: Rules, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    # GIVEN a legacy lead on Firestore, and an erasure of its address that lands after the
    # move copied the history under the keyed id but before the switching transaction
    from conftest import make_store

    store = make_store("firestore", tmp_path, request)
    _seed_legacy(store, rules)
    real, calls = store._move_children, []

    def move_children(old: Any, new: Any) -> Any:
        copied = real(old, new)
        calls.append(1)
        if len(calls) == 2:  # history and orders copied
            store.erase(NEW, erased_at=NOW)
        return copied

    store._move_children = move_children
    # WHEN the operator re-keys
    report = rekey_leads(store, rules, NOW + timedelta(minutes=1))
    # THEN the switch reads the tombstone: nothing moved, nothing copied is left behind
    assert report.moved == 0
    _nothing_left_under(store, OLD)
    _nothing_left_under(store, NEW)


def test_a_merge_that_moves_the_stage_hands_it_over_and_says_so_in_the_history(
        store: Any, rules: Rules) -> None:
    # GIVEN two halves of one person below MQL each: a contact form under the legacy id, a
    # webinar and a download under the keyed id (/tmp/rev3/r4_rekey_handover.py: the merge
    # reached MQL with no hand-over and no history entry)
    at = NOW - timedelta(hours=2)
    old = apply_events(store, OLD, ANA, [form(ANA, "c1", at, kind="contact")], rules, at)
    new = apply_events(store, NEW, ANA, [form(ANA, "w1", at, kind="webinar"),
                                         form(ANA, "d1", at, kind="content_download")],
                       rules, at)
    assert (old.stage_after, new.stage_after) == ("lead", "lead")
    assert store.pending_handovers(NOW + timedelta(days=1)) == []
    # WHEN the operator re-keys
    report = rekey_leads(store, rules, NOW)
    # THEN the merged lead's new stage is handed over, and its history says it was merged
    lead = store.get_lead(NEW)
    assert report.merged == 1 and lead is not None and lead.stage == "mql"
    changes = store.pending_handovers(NOW + timedelta(days=1))
    assert [(c.lead_id, c.stage_before, c.stage_after) for c in changes] == [
        (NEW, "lead", "mql")]
    merged = [e for e in store.history(NEW) if e.kind == "merged"]
    assert len(merged) == 1 and "lead -> mql" in merged[0].reason
    assert ANA not in merged[0].reason
    # and re-keying again changes nothing (no second hand-over)
    rekey_leads(store, rules, NOW + timedelta(minutes=1))
    assert len(store.pending_handovers(NOW + timedelta(days=1))) == 1
