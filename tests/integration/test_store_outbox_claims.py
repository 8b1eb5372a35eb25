"""The outbox claims of every store (`OutboxClaims` in store/port.py): a due item is taken
by one claimer while its lease lasts, comes back when the lease runs out (a claimer that
died), and CRM erasures outlive the erasure of their lead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW

from leadscore.domain.outbox import StageChange
from leadscore.store.port import CrmErasure, LeadWrite, OutboxClaims

LEASE = timedelta(minutes=15)


def erasure(n: int, due: Any) -> CrmErasure:
    return CrmErasure(id=f"crm:hubspot:l_{n}:x", tool="crm:hubspot", lead_id=f"l_{n}",
                      email=f"p{n}@example.com", next_attempt_at=due,
                      expires_at=NOW + timedelta(days=90))


def test_a_crm_erasure_is_claimed_once_per_lease_and_outlives_its_lead(store: Any) -> None:
    assert isinstance(store, OutboxClaims)
    # GIVEN an erasure due now and one due later
    store.record_crm_erasures([erasure(1, NOW), erasure(2, NOW + timedelta(minutes=5))])
    # WHEN the lead is erased (again) THEN its CRM erasure stays
    store.erase("l_1", erased_at=NOW)
    # WHEN two claimers ask at once THEN only the first gets the due one, leased
    first = store.claim_crm_erasures(NOW, NOW + LEASE)
    assert [(i.id, i.email, i.next_attempt_at) for i in first] == [
        ("crm:hubspot:l_1:x", "p1@example.com", NOW + LEASE)]
    assert store.claim_crm_erasures(NOW + timedelta(minutes=1), NOW + LEASE) == []
    # WHEN the lease runs out (the claimer died) THEN both are due to the next claimer
    late = store.claim_crm_erasures(NOW + LEASE, NOW + 2 * LEASE)
    assert sorted(i.lead_id for i in late) == ["l_1", "l_2"]
    # WHEN they are forgotten THEN nothing is left
    store.forget_crm_erasures([i.id for i in late])
    assert store.claim_crm_erasures(NOW + 9 * LEASE, NOW + 10 * LEASE) == []


def change(n: int) -> StageChange:
    return StageChange(id=f"h_{n}", lead_id=f"l_{n}", email=f"p{n}@example.com",
                       stage_before="lead", stage_after="mql", score=60, grade="B2", at=NOW,
                       next_attempt_at=NOW)


def with_outbox(store: Any, n: int) -> None:
    from leadscore.domain.state import LeadState

    def plan(snap: Any) -> tuple[LeadWrite, None]:
        lead = LeadState(lead_id=f"l_{n}", email=f"p{n}@example.com", score=60, stage="mql",
                         grade="B2", scored_at=NOW)
        return LeadWrite(lead=lead, fields="replace", outbox=[change(n)]), None

    store.transact(f"l_{n}", [], plan)


def test_a_pending_handover_is_claimed_once_per_lease(store: Any) -> None:
    # GIVEN two stage changes waiting in the outbox
    with_outbox(store, 1)
    with_outbox(store, 2)
    # WHEN one claimer takes one THEN a second claimer gets only the other
    first = store.claim_handovers(NOW, NOW + LEASE, limit=1)
    second = store.claim_handovers(NOW, NOW + LEASE)
    assert [c.id for c in first] + [c.id for c in second] == ["h_1", "h_2"]
    assert store.claim_handovers(NOW + timedelta(minutes=1), NOW + LEASE) == []
    # WHEN one is delivered and the other's claimer died THEN only that one comes back
    delivered = first[0].model_copy(update={"delivered": True, "attempts": 1})
    store.record_handover(delivered)
    assert [c.id for c in store.claim_handovers(NOW + LEASE, NOW + 2 * LEASE)] == ["h_2"]


def second_connection(store: Any) -> Any:
    """Another store object on the same data, as another worker process opens it."""
    kind = type(store).__name__
    if kind == "SqliteStore":
        from leadscore.store.sqlite import SqliteStore

        return SqliteStore(store.path)
    if kind == "FirestoreStore":
        from leadscore.store.firestore import FirestoreStore

        return FirestoreStore(store._client, store._leads.id)
    return store  # one process: the same object, from two threads


def test_claimers_racing_on_one_outbox_never_take_the_same_item(store: Any) -> None:
    import threading

    # GIVEN twenty CRM erasures due, and two claimers on their own connections
    store.record_crm_erasures([erasure(n, NOW) for n in range(20)])
    claimers = [store, second_connection(store)]
    taken: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def claim(k: int) -> None:
        start.wait()
        while got := claimers[k].claim_crm_erasures(NOW, NOW + LEASE, limit=3):
            taken[k] += [i.id for i in got]

    # WHEN both claim at the same time until nothing is left
    threads = [threading.Thread(target=claim, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # THEN every item was taken exactly once
    assert sorted(taken[0] + taken[1]) == sorted(erasure(n, NOW).id for n in range(20))
    if claimers[1] is not store and type(store).__name__ == "SqliteStore":
        claimers[1].close()


def test_a_change_erased_while_it_was_being_delivered_is_not_written_back(store: Any) -> None:
    from leadscore.domain.state import LeadState

    lead = LeadState(lead_id="l_7", email="p7@example.com", score=60, stage="mql",
                     grade="B2", scored_at=NOW)
    change = StageChange(id="h_7", lead_id="l_7", email=lead.email, stage_before="lead",
                         stage_after="mql", score=60, grade="B2", at=NOW, next_attempt_at=NOW)
    store.transact("l_7", [], lambda snap: (
        LeadWrite(lead=lead, fields="replace", outbox=[change]), None))
    # GIVEN a sweep claimed the change, and the lead was erased while it was on its way
    [claimed] = store.claim_handovers(NOW, NOW + LEASE)
    assert store.erase("l_7", erased_at=NOW)
    # WHEN the sweep records the delivery's outcome (failed: backed off)
    store.record_handover(claimed.model_copy(update={
        "attempts": 1, "next_attempt_at": NOW + timedelta(minutes=2)}))
    # THEN nothing of it comes back: no change, no address, due now or ever
    assert store.pending_handovers(NOW + timedelta(days=365)) == []
    assert store.claim_handovers(NOW + timedelta(days=365), NOW + 2 * LEASE) == []


@pytest.mark.firestore
def test_a_firestore_claim_that_loses_a_race_asks_again(
        tmp_path: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import make_store
    from google.cloud.firestore_v1.document import DocumentReference

    from leadscore.store.firestore import FirestoreStore

    store = make_store("firestore", tmp_path, request)
    other = FirestoreStore(store._client, collection=store._leads.id)  # another worker
    store.record_crm_erasures([erasure(1, NOW), erasure(2, NOW)])
    real, raced = DocumentReference.update, []

    def update(ref: DocumentReference, *args: Any, **kwargs: Any) -> Any:
        if not raced:  # the other worker claims the same item between query and update
            raced.append([])
            raced[0] = other.claim_crm_erasures(NOW, NOW + LEASE, limit=1)
        return real(ref, *args, **kwargs)

    monkeypatch.setattr(DocumentReference, "update", update)
    # WHEN a sweep claims one item and loses the race for the first one it found
    mine = store.claim_crm_erasures(NOW, NOW + LEASE, limit=1)
    # THEN it takes the other due item instead of ending empty-handed
    assert [i.lead_id for i in raced[0]] == ["l_1"]
    assert [i.lead_id for i in mine] == ["l_2"]


def test_a_write_back_does_not_bring_back_a_crm_erasure_forgotten_meanwhile(
        store: Any) -> None:
    assert isinstance(store, OutboxClaims)
    # GIVEN two erasures, one of which another claimer finished and forgot meanwhile
    store.record_crm_erasures([erasure(1, NOW), erasure(2, NOW)])
    store.forget_crm_erasures(["crm:hubspot:l_1:x"])
    # WHEN the first claimer writes both back after its send
    store.update_crm_erasures([erasure(n, NOW).model_copy(update={"attempts": 1})
                               for n in (1, 2)])
    # THEN the forgotten one stays forgotten, and the other one is replaced
    due = store.claim_crm_erasures(NOW, NOW + LEASE)
    assert [(i.lead_id, i.attempts) for i in due] == [("l_2", 1)]
