"""Firestore adapter (production): the primitives of `store/port.py`, nothing more.

It offers both write paths (DESIGN.md §3); `leadscore.service.writes` chooses between them:
- *blind* (`append_blind`, then `commit_view`): one atomic batch of
  `create(history/<ledger key>)` per event plus one merge-set of field transforms
  (Increment, Maximum, Minimum) on the lead. No read, no lock: any number of writers on one
  lead all count, and a retried event fails the create precondition. The view is then
  stored with an update conditioned on the document's update time.
- *transactional* (`transact`): a read-modify-write transaction for the rare changes that
  need the old state (profile, email status, orders), rescoring and the decay refresh.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.identity import shard_of
from leadscore.domain.outbox import StageChange
from leadscore.domain.state import VIEW_FIELDS, HistoryEntry, LeadState, Order, Stage
from leadscore.errors import TransientError
from leadscore.store.firestore_codec import from_doc, to_doc, to_seconds
from leadscore.store.firestore_outbox import FirestoreOutbox
from leadscore.store.firestore_rekey import FirestoreRekey
from leadscore.store.firestore_retention import FirestoreRetention
from leadscore.store.firestore_stats import FirestoreStats
from leadscore.store.firestore_visitors import FirestoreVisitors
from leadscore.store.port import (
    TOMBSTONE_KEPT,
    EspSynced,
    FieldTransforms,
    LeadSnapshot,
    LeadWrite,
    LedgerConflict,
    Plan,
    R,
    Tombstone,
)

if TYPE_CHECKING:
    from google.cloud.firestore import Client, DocumentReference, WriteBatch

# tombstones and erased orders' markers expire after TOMBSTONE_KEPT (store/port.py) by a
# TTL policy on `expires_at` (infra/data_care.py)
TX_ATTEMPTS = 12  # contended transactions: attempts, and the time they may take in all
TX_BUDGET_S = 8.0


class FirestoreStore(FirestoreVisitors, FirestoreStats, FirestoreRekey, FirestoreOutbox,
                     FirestoreRetention):
    def __init__(self, client: Client, collection: str = "leads") -> None:
        self._client = client
        self._leads = client.collection(collection)
        self._orders = client.collection(f"{collection}_orders")
        self._aliases = client.collection(f"{collection}_order_aliases")
        self._tokens = client.collection(f"{collection}_tokens")
        self._handovers = client.collection(f"{collection}_handovers")
        self._visitors = client.collection(f"{collection}_visitors")
        self._erased = client.collection(f"{collection}_erased")  # tombstones, by lead id
        self._esp = client.collection(f"{collection}_esp_sync")
        self._crm_erasures = client.collection(f"{collection}_crm_erasures")  # not erased

    # -- the unit of work's primitives ----------------------------------------------------
    def _history_ref(self, lead_id: str, entry_id: str) -> DocumentReference:
        ref: DocumentReference = (
            self._leads.document(lead_id).collection("history").document(entry_id))
        return ref

    def _order_ref(self, lead_id: str, order_key: str) -> DocumentReference:
        """An order's record: a document under its lead, so erasing the lead removes it."""
        ref: DocumentReference = (self._leads.document(lead_id).collection("orders")
                                  .document(_order_doc_id(order_key)))
        return ref

    def read(self, lead_id: str, ledger_keys: Sequence[str] = (),
             with_history: bool = False) -> LeadSnapshot:
        lead_ref = self._leads.document(lead_id)
        with _transient():
            if ledger_keys:  # the lead and the ledger entries in one round trip
                snaps = list(self._client.get_all(
                    [lead_ref, *(self._history_ref(lead_id, k) for k in ledger_keys)]))
                lead_snap = next(x for x in snaps if x.reference.path == lead_ref.path)
                known = {x.id for x in snaps if x.exists and x is not lead_snap}
            else:
                lead_snap, known = lead_ref.get(), set()
            history = self._all_history(lead_ref) if with_history else []
        return LeadSnapshot(lead_id=lead_id, known=known, history=history,
                            lead=from_doc(lead_snap.to_dict() or {}) if lead_snap.exists
                            else None, version=lead_snap.update_time)

    def _all_history(self, lead_ref: DocumentReference,
                     transaction: Any = None) -> list[HistoryEntry]:
        entries = [HistoryEntry.model_validate(d.to_dict()) for d in
                   lead_ref.collection("history").stream(transaction=transaction)]
        return sorted(entries, key=lambda e: (e.at, e.entry_id))

    def transact(self, lead_id: str, ledger_keys: Sequence[str], plan: Plan[R],
                 with_history: bool = False, order_keys: Sequence[str] = ()) -> R:
        """A read-modify-write transaction; the client re-runs it (and `plan`) when it
        contends with another writer."""
        from google.cloud import firestore

        lead_ref = self._leads.document(lead_id)
        refs = [self._history_ref(lead_id, key) for key in ledger_keys]
        order_refs = [self._order_ref(lead_id, key) for key in order_keys]

        stone_ref = self._erased.document(lead_id)

        @firestore.transactional
        def run(transaction: Any) -> R:
            snap = lead_ref.get(transaction=transaction)
            # the tombstone is read in the transaction: an erasure that writes it after this
            # read makes the commit fail and the plan run again, seeing it
            read = list(self._client.get_all([stone_ref, *refs], transaction=transaction))
            stone = next((x for x in read if x.reference.path == stone_ref.path), None)
            known = {x.id for x in read if x.exists and x is not stone}
            history = self._all_history(lead_ref, transaction) if with_history else []
            orders = {d["key"]: Order.model_validate(d) for s in (self._client.get_all(
                order_refs, transaction=transaction) if order_refs else [])
                if s.exists and (d := s.to_dict() or {}).get("key")}
            before = from_doc(snap.to_dict() or {}) if snap.exists else None
            counted = before.counted if before else None  # what the shards hold for it
            write, result = plan(LeadSnapshot(
                lead_id=lead_id, lead=before,
                known=known, history=history, version=snap.update_time, orders=orders,
                tombstone=_tombstone_from(stone)))
            if write is not None:
                self._stage_commit(transaction, lead_id, write, set(ledger_keys))
                self._stage_counts(transaction, (lead_id, counted, write.lead.counted))
            return result

        result: R = self._with_jitter(lambda: run(self._client.transaction(max_attempts=1)))
        return result

    def _with_jitter(self, attempt: Any) -> Any:
        """Bounded retries of a contended transaction, with jittered exponential backoff.

        The client's own retries re-run at once, so writers on one busy lead keep aborting
        each other (issue 21: 149 of 180 first deliveries failed); spreading them out lets
        them commit in turn. Past `TX_ATTEMPTS` or `TX_BUDGET_S` it is a TransientError:
        503 with Retry-After, and the provider retries later."""
        started = time.monotonic()
        for n in range(TX_ATTEMPTS):
            try:
                with _transient():
                    return attempt()
            except TransientError as exc:
                contended = isinstance(exc.__cause__, ValueError | _aborted())
                if not contended or n == TX_ATTEMPTS - 1 or (
                        time.monotonic() - started > TX_BUDGET_S):
                    raise
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2 ** n)))
        raise TransientError("Firestore transaction kept contending; retry later")

    def _stage_commit(self, transaction: Any, lead_id: str, write: LeadWrite,
                      ledger_keys: set[str]) -> None:
        # a transaction reads before it writes: which outbox records are new
        outbox = [(ref, change) for change in write.outbox
                  if not (ref := self._handovers.document(change.id)).get(
                      transaction=transaction).exists]
        for entry in write.history:
            ref, doc = self._history_ref(lead_id, entry.entry_id), entry.model_dump(mode="python")
            if entry.entry_id in ledger_keys:  # read absent above: must still be absent
                transaction.create(ref, doc)
            else:
                transaction.set(ref, doc)
        self._after_staging("history")
        lead_ref = self._leads.document(lead_id)
        if write.fields == "merge":
            self._stage_lead_write(transaction, lead_id, to_doc(write.lead))
        elif write.fields == "replace":
            transaction.set(lead_ref, to_doc(write.lead))  # whole document: old keys go
        else:
            transaction.update(lead_ref, to_doc(write.lead, include=VIEW_FIELDS))
        self._after_staging("lead")
        for ref, change in outbox:
            transaction.create(ref, _handover_doc(change))
        self._after_staging("outbox")
        for key in write.orders:
            transaction.set(self._orders.document(_order_doc_id(key)), {"lead_id": lead_id})
        for alias, key in write.aliases.items():
            transaction.set(self._aliases.document(_hashed("a_", alias)),
                            {"alias": alias, "order_key": key, "lead_id": lead_id})
        for key, order in write.order_records.items():
            transaction.set(self._order_ref(lead_id, key),
                            {"key": key, **order.model_dump(mode="python")})
        self._after_staging("orders")

    def append_blind(self, lead_id: str, entries: Sequence[HistoryEntry],
                     transforms: FieldTransforms) -> None:
        from google.api_core import exceptions as gexc

        batch = self._client.batch()
        for entry in entries:
            batch.create(self._history_ref(lead_id, entry.entry_id),
                         entry.model_dump(mode="python"))
        self._after_staging("history")
        self._stage_lead_write(batch, lead_id, _sentinels(lead_id, transforms))
        self._after_staging("lead")
        with _transient():
            try:
                batch.commit()
            except gexc.Aborted:  # a subclass of Conflict: contention, never a duplicate
                raise
            except gexc.Conflict:
                raise LedgerConflict(lead_id) from None

    def commit_view(self, snapshot: LeadSnapshot, lead: LeadState,
                    outbox: Sequence[StageChange]) -> bool:
        from google.api_core import exceptions as gexc

        batch = self._client.batch()
        batch.update(self._leads.document(snapshot.lead_id), to_doc(lead, include=VIEW_FIELDS),
                     option=self._client.write_option(last_update_time=snapshot.version))
        for change in outbox:  # recorded with the stage it reports, or not at all
            batch.create(self._handovers.document(change.id), _handover_doc(change))
        self._stage_counts(batch, (snapshot.lead_id, snapshot.lead.counted
                                   if snapshot.lead else None, lead.counted))
        with _transient():
            try:
                batch.commit()
            except gexc.Aborted:
                raise
            except (gexc.FailedPrecondition, gexc.Conflict):
                return False
        return True

    def _stage_lead_write(self, batch: WriteBatch, lead_id: str, fields: dict[str, Any]) -> None:
        """Seam for fault-injection tests: stage the lead's update after the ledger entries."""
        batch.set(self._leads.document(lead_id), fields, merge=True)

    def _after_staging(self, step: str) -> None:
        """Seam for fault-injection tests, after each part of a commit is staged."""

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (self._handovers.where(filter=FieldFilter("delivered", "==", False))
                 .where(filter=FieldFilter("next_attempt_at", "<=", to_seconds(now)))
                 .order_by("next_attempt_at").limit(limit))
        return [_handover_from(d.to_dict() or {}) for d in query.stream()]

    def record_handover(self, change: StageChange, lease: datetime | None = None) -> bool:
        """Only if the change still exists: one erased while it was being delivered must not
        come back with its address (`update` requires the document). With `lease`, only
        while it is still that claim (`FirestoreOutbox._update_claimed`)."""
        from google.api_core import exceptions as gexc

        ref = self._handovers.document(change.id)
        doc = _handover_doc(change)
        del doc["lead_id"]  # the stored one stands: a re-key may have moved the change
        if lease is not None:
            return self._update_claimed(ref, doc, lease)
        try:
            ref.update(doc)
        except gexc.NotFound:
            return False
        return True

    def purge_handovers(self, now: datetime, limit: int = 300) -> int:
        """The TTL policy deletes closed changes in production; this also deletes what it
        never will: a change closed by an older release, without `expires_at` (and with
        the address). A closed change's `next_attempt_at` is its expiry (`_handover_doc`),
        so one query on the outbox's index finds both; an empty answer costs one read."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (self._handovers.where(filter=FieldFilter("delivered", "==", True))
                 .where(filter=FieldFilter("next_attempt_at", "<=", to_seconds(now)))
                 .limit(limit))
        expired = [snap.reference for snap in query.stream()]
        if expired:
            batch = self._client.batch()
            for ref in expired:
                batch.delete(ref)
            batch.commit()
        return len(expired)

    def esp_synced(self, tool: str, lead_ids: Sequence[str]) -> dict[str, EspSynced]:
        refs = [self._esp.document(f"{tool}:{lead_id}") for lead_id in lead_ids]
        found: dict[str, EspSynced] = {}
        for start in range(0, len(refs), 300):
            for snap in self._client.get_all(refs[start:start + 300]):
                if snap.exists:
                    record = EspSynced.model_validate(snap.to_dict())
                    found[record.lead_id] = record
        return found

    def record_esp_synced(self, records: Sequence[EspSynced]) -> None:
        for start in range(0, len(records), 500):  # Firestore's batch limit
            batch = self._client.batch()
            for r in records[start:start + 500]:
                batch.set(self._esp.document(f"{r.tool}:{r.lead_id}"), r.model_dump(mode="json"))
            batch.commit()

    def put_lead(self, lead: LeadState) -> None:
        from google.api_core import exceptions as gexc

        batch = self._client.batch()  # a new lead: one blind batch, counted with it
        batch.create(self._leads.document(lead.lead_id), to_doc(lead))
        self._stage_counts(batch, (lead.lead_id, None, lead.counted))
        try:
            batch.commit()
        except gexc.Aborted:
            raise
        except gexc.Conflict:  # it exists: replace it in a transaction, its counts with it
            self.transact(lead.lead_id, (), lambda _: (LeadWrite(lead=lead, fields="replace"),
                                                       None))

    def claim_token(self, token: str, owner: str, expires_at: datetime | None = None) -> bool:
        from google.api_core import exceptions as gexc

        ref = self._tokens.document(_hashed("t_", token))
        doc: dict[str, Any] = {"owner": owner}
        if expires_at is not None:  # the TTL policy's field (infra/data_care.py)
            doc["expires_at"] = expires_at
        with _transient():
            try:
                ref.create(doc)
                return True
            except gexc.Aborted:  # contention, not a used token
                raise
            except gexc.Conflict:
                return (ref.get().to_dict() or {}).get("owner") == owner

    def order_owner(self, order_key: str) -> str | None:
        snap = self._orders.document(_order_doc_id(order_key)).get()
        owner = (snap.to_dict() or {}).get("lead_id") if snap.exists else None
        return str(owner) if owner else None

    def orders_of(self, lead_id: str) -> dict[str, Order]:
        docs = [d.to_dict() or {} for d in
                self._leads.document(lead_id).collection("orders").stream()]
        return {d["key"]: Order.model_validate(d) for d in sorted(
            (d for d in docs if d.get("key")), key=lambda d: str(d["key"]))}

    def order_record(self, lead_id: str, order_key: str) -> Order | None:
        with _transient():
            snap = self._order_ref(lead_id, order_key).get()
        doc = (snap.to_dict() or {}) if snap.exists else {}
        return Order.model_validate(doc) if doc.get("key") else None

    def order_alias(self, alias: str) -> str | None:
        with _transient():
            snap = self._aliases.document(_hashed("a_", alias)).get()
        key = (snap.to_dict() or {}).get("order_key") if snap.exists else None
        return str(key) if key else None

    def record_aliases(self, aliases: Mapping[str, str],
                       expires_at: datetime | None = None) -> None:
        if not aliases:
            return
        batch = self._client.batch()
        for alias, key in aliases.items():  # merge: an alias written with a lead keeps it
            doc: dict[str, Any] = {"alias": alias, "order_key": key}
            if expires_at is not None:  # an erased order's marker: goes with the tombstone
                doc["expires_at"] = expires_at
            batch.set(self._aliases.document(_hashed("a_", alias)), doc, merge=True)
        with _transient():
            batch.commit()

    def tombstone(self, lead_id: str) -> Tombstone | None:
        with _transient():
            return _tombstone_from(self._erased.document(lead_id).get())

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        """Tombstone first, then delete, then mark the tombstone settled.

        Every transaction reads the tombstone, so a writer either committed before it was
        written (and the deletion, which lists documents after it, removes its writes) or
        sees it (and drops events from before the erasure; while unsettled it starts no
        new lead). The blind path checks it before and after its commit (writes.py)."""
        stone_ref = self._erased.document(lead_id)
        if erased_at is not None:
            with _transient():
                stone_ref.set({"erased_at": to_seconds(erased_at), "settled": False,
                               "expires_at": erased_at + TOMBSTONE_KEPT})
        from google.cloud.firestore_v1.base_query import FieldFilter

        for collection in (self._orders, self._aliases, self._handovers, self._esp):
            for snap in collection.where(filter=FieldFilter("lead_id", "==", lead_id)).stream():
                snap.reference.delete()
        if erased_at is not None:  # moved records pointing here name the erased lead id
            for snap in self._erased.where(
                    filter=FieldFilter("moved_to", "==", lead_id)).stream():
                snap.reference.delete()
        ref = self._leads.document(lead_id)
        # recursive_delete counts the lead document even when it does not exist
        found = ref.get().exists or any(True for _ in ref.collection("history").limit(1).stream())
        for _ in range(2):  # twice: anything a writer added meanwhile goes too
            for child in ref.collections():  # history and orders; the lead document last,
                self._client.recursive_delete(child)  # with its counts, in a transaction
            self._delete_counted(ref)
        # a sync that read the lead before its document went may have recorded what a tool
        # accepted after the first pass: its record would outlive the lead (no TTL) and mark
        # a lead started again with consent "not due"; a check from now on sees no lead.
        # So may a writer that read the lead before it went: a hand-over (with the address)
        # or an order record it committed after the first pass. Nothing can start the lead
        # again before the tombstone is settled, so these are all the erased lead's.
        for collection in (self._orders, self._aliases, self._handovers, self._esp):
            for snap in collection.where(filter=FieldFilter("lead_id", "==", lead_id)).stream():
                snap.reference.delete()
        self.erase_visitors(lead_id)
        if erased_at is not None:
            with _transient():
                stone_ref.update({"settled": True})
        return found

    def erase_leftover(self, lead_id: str) -> bool:
        """What names the leftover is listed first (nothing can start the lead again while
        the leftover exists: `erasure.admitted`), then one transaction checks it is still a
        leftover and deletes the document, then the listed records go."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        ref, stone_ref = self._leads.document(lead_id), self._erased.document(lead_id)
        with _transient():
            named = [s.reference for c in (ref.collection("history"), ref.collection("orders"))
                     for s in c.stream()]
            named += [s.reference for c in (self._orders, self._aliases, self._handovers,
                                            self._esp)
                      for s in c.where(filter=FieldFilter("lead_id", "==", lead_id)).stream()]

        @firestore.transactional
        def run(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            stone = _tombstone_from(stone_ref.get(transaction=transaction))
            if not snap.exists or stone is None or stone.restarted(
                    from_doc(snap.to_dict() or {})):
                return False
            transaction.delete(ref)
            self._stage_counts(transaction,
                               (lead_id, (snap.to_dict() or {}).get("counted"), None))
            return True

        if not self._with_jitter(lambda: run(self._client.transaction(max_attempts=1))):
            return False
        with _transient():
            for start in range(0, len(named), 400):
                batch = self._client.batch()
                for doc in named[start:start + 400]:
                    batch.delete(doc)
                batch.commit()
        return True

    def _delete_counted(self, ref: DocumentReference) -> None:
        """Delete the lead document and take its `counted` back from its shard, atomically."""
        from google.cloud import firestore

        @firestore.transactional
        def run(transaction: Any) -> None:
            snap = ref.get(transaction=transaction)
            if snap.exists:
                transaction.delete(ref)
                self._stage_counts(transaction,
                                   (ref.id, (snap.to_dict() or {}).get("counted"), None))

        self._with_jitter(lambda: run(self._client.transaction(max_attempts=1)))

    # -- reads ----------------------------------------------------------------------------
    def get_lead(self, lead_id: str) -> LeadState | None:
        snap = self._leads.document(lead_id).get()
        return from_doc(snap.to_dict() or {}) if snap.exists else None

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        from google.cloud import firestore

        query = self._leads.document(lead_id).collection("history")
        if limit:  # the newest, by (at, entry_id) like every adapter
            down = firestore.Query.DESCENDING
            query = query.order_by("at", direction=down).order_by(
                "__name__", direction=down).limit(limit)
        entries = [HistoryEntry.model_validate(d.to_dict()) for d in query.stream()]
        return sorted(entries, key=lambda e: (e.at, e.entry_id))

    def list_leads(self, stage: Stage | None = None, min_score: float | None = None,
                   limit: int = 100, non_opener: bool | None = None, grade: str | None = None,
                   after: tuple[float, str] | None = None) -> list[LeadState]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        query: Any = self._leads
        if grade is not None:
            query = query.where(filter=FieldFilter("grade", "==", grade))
        if non_opener is not None:
            query = query.where(filter=FieldFilter("non_opener", "==", non_opener))
        if stage is not None:
            query = query.where(filter=FieldFilter("stage", "==", stage))
        if min_score is not None:
            query = query.where(filter=FieldFilter("score", ">=", min_score))
        down = firestore.Query.DESCENDING
        query = query.order_by("score", direction=down).order_by("__name__", direction=down)
        if after is not None:
            query = query.start_after({"score": after[0],
                                       "__name__": self._leads.document(after[1])})
        return [from_doc(d.to_dict() or {}) for d in query.limit(limit).stream()]

    def count_leads(self) -> int:
        result = self._leads.count().get()  # type: ignore[no-untyped-call]  # 1 read per 1,000
        return int(result[0][0].value)

    def iter_leads(self, after_id: str | None = None, limit: int = 500) -> list[LeadState]:
        query = self._leads.order_by("__name__")
        if after_id is not None:
            query = query.start_after({"__name__": self._leads.document(after_id)})
        return [from_doc(d.to_dict() or {}) for d in query.limit(limit).stream()]

    def due_for_review(self, now: datetime, limit: int = 500,
                       buckets: Sequence[int] | None = None) -> list[LeadState]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        due = FieldFilter("next_review_at", "<=", to_seconds(now))
        if buckets is None:
            queries = [self._leads.where(filter=due)]
        else:  # "in" takes at most 30 values
            chunks = [list(buckets[i:i + 30]) for i in range(0, len(buckets), 30)]
            queries = [self._leads.where(filter=FieldFilter("shard", "in", chunk))
                       .where(filter=due) for chunk in chunks]
        found = [from_doc(d.to_dict() or {}) for q in queries
                 for d in q.order_by("next_review_at").limit(limit).stream()]
        return sorted(found, key=lambda x: (x.next_review_at or now, x.lead_id))[:limit]

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def _handover_doc(change: StageChange) -> dict[str, Any]:
    """`expires_at` stays a datetime (a Timestamp: the TTL policy reads no other type) and
    is written only once the change is closed; a pending change has no such field. A
    closed change's `next_attempt_at` is its expiry, for `purge_handovers`."""
    doc = change.model_dump(mode="python")
    due = change.expires_at if change.delivered and change.expires_at else (
        change.next_attempt_at)
    doc["next_attempt_at"] = to_seconds(due)
    for unset in ("closed_at", "expires_at"):
        if doc[unset] is None:
            del doc[unset]
    return doc


def _handover_from(doc: dict[str, Any]) -> StageChange:
    data = dict(doc)
    data["next_attempt_at"] = datetime.fromtimestamp(float(data["next_attempt_at"]), UTC)
    return StageChange.model_validate(data)


def _aborted() -> type[Exception]:
    from google.api_core import exceptions as gexc

    return gexc.Aborted


def _tombstone_from(snap: Any) -> Tombstone | None:
    if snap is None or not snap.exists:
        return None
    doc = snap.to_dict() or {}
    return Tombstone(erased_at=datetime.fromtimestamp(float(doc["erased_at"]), UTC),
                     settled=bool(doc.get("settled", True)), moved_to=doc.get("moved_to"))


def _hashed(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:40]


def _order_doc_id(order_key: str) -> str:
    return _hashed("o_", order_key)


@contextmanager
def _transient() -> Iterator[None]:
    """Firestore's retryable failures become TransientError (503: the sender retries)."""
    from google.api_core import exceptions as gexc

    try:
        yield
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.Aborted,
            gexc.InternalServerError, gexc.TooManyRequests, gexc.RetryError) as exc:
        raise TransientError(f"Firestore did not commit: {type(exc).__name__}") from exc
    except ValueError as exc:  # the client's "Failed to commit transaction in N attempts"
        if isinstance(exc.__context__, TransientError):  # its rollback after a failed
            raise exc.__context__ from exc.__context__.__cause__  # begin hides the cause
        if "attempts" not in str(exc):
            raise
        raise TransientError("Firestore transaction kept contending; retry later") from exc


def _sentinels(lead_id: str, transforms: FieldTransforms) -> dict[str, Any]:
    """The transforms as one merge-set of Firestore's Increment, Maximum and Minimum."""
    from google.cloud import firestore

    fields: dict[str, Any] = {**transforms.set, "shard": shard_of(lead_id)}
    for name, amounts in transforms.increment.items():
        fields[name] = {k: firestore.Increment(v) for k, v in amounts.items()}
    fields.update({k: firestore.Maximum(to_seconds(t)) for k, t in transforms.maximum.items()})
    fields.update({k: firestore.Minimum(to_seconds(t)) for k, t in transforms.minimum.items()})
    return fields
