"""Firestore adapter (production).

Two write paths, chosen per group of events for one lead (DESIGN.md §3):
- *blind*, for the hot events (opens, clicks, deliveries, activities without profile):
  one atomic batch of `create(history/<ledger key>)` for each event plus one merge-set of
  field transforms (Increment, Maximum, Minimum) on the lead. No read, no lock: any number
  of writers on one lead all count, and a retried event fails the create precondition. Then
  the view (score, stage, grade) is refreshed with an update conditioned on the document's
  update time; if another writer got there first its refresh saw our events too, and the
  scheduled job refreshes anything a crashed writer left behind (`next_review_at`).
- *transactional*, for the rare events that need the old state (profile, email status,
  orders): read the lead and ledger entries, apply the pure domain, write in one
  transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadscore.domain.effects import LeadDelta, effect_of
from leadscore.domain.events import Event
from leadscore.domain.handover import StageChange, stage_change
from leadscore.domain.identity import shard_of
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import (
    ViewChange,
    history_entry,
    materialise,
    rebuilt,
    refreshed,
)
from leadscore.domain.state import VIEW_FIELDS, HistoryEntry, LeadState, Stage
from leadscore.errors import TransientError
from leadscore.store.firestore_codec import from_doc, to_doc, to_seconds
from leadscore.store.port import ApplyOutcome, order_keys, plan, unique_by_key

if TYPE_CHECKING:
    from google.cloud.firestore import Client, DocumentReference, WriteBatch

MAX_CONFLICT_ROUNDS = 5
SAFETY_REVIEW = timedelta(minutes=10)


class FirestoreStore:
    def __init__(self, client: Client, collection: str = "leads") -> None:
        self._client = client
        self._leads = client.collection(collection)
        self._orders = client.collection(f"{collection}_orders")
        self._tokens = client.collection(f"{collection}_tokens")
        self._handovers = client.collection(f"{collection}_handovers")

    # -- writes ---------------------------------------------------------------------------
    def apply_events(self, lead_id: str, email: str, events: Sequence[Event], rules: Rules,
                     now: datetime) -> ApplyOutcome:
        from google.api_core import exceptions as gexc

        keyed = unique_by_key(events)
        try:
            deltas = {key: effect_of(event, rules) for key, event in keyed}
            if all(delta.blind for delta, _ in deltas.values()):
                return self._apply_blind(lead_id, email, keyed, deltas, rules, now, len(events))
            return self._apply_in_transaction(lead_id, email, keyed, rules, now, len(events))
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.Aborted,
                gexc.InternalServerError, gexc.TooManyRequests) as exc:
            raise TransientError(f"Firestore did not commit: {type(exc).__name__}") from exc

    def _history_ref(self, lead_id: str, entry_id: str) -> DocumentReference:
        ref: DocumentReference = (
            self._leads.document(lead_id).collection("history").document(entry_id))
        return ref

    def _existing(self, lead_id: str, keys: list[str]) -> set[str]:
        refs = [self._history_ref(lead_id, key) for key in keys]
        return {snap.id for snap in self._client.get_all(refs) if snap.exists}

    def _apply_blind(self, lead_id: str, email: str, keyed: list[tuple[str, Event]],
                     deltas: dict[str, tuple[LeadDelta, Any]], rules: Rules, now: datetime,
                     received: int) -> ApplyOutcome:
        from google.api_core import exceptions as gexc

        pending = keyed
        commits = 0
        for _ in range(MAX_CONFLICT_ROUNDS):
            batch = self._client.batch()
            for key, event in pending:
                entry = history_entry(event, deltas[key][1], rules, now)
                batch.create(self._history_ref(lead_id, key), entry.model_dump(mode="python"))
            self._stage_lead_write(batch, lead_id,
                                   _transforms(lead_id, email, [deltas[k][0] for k, _ in pending],
                                               now))
            try:
                batch.commit()
                commits += 1
                break
            except gexc.Conflict:  # some events were applied before: drop them, try again
                known = self._existing(lead_id, [key for key, _ in pending])
                pending = [(key, event) for key, event in pending if key not in known]
                if not pending:
                    break
        else:
            raise TransientError("events kept conflicting; retry the delivery")
        stage_before, stage_after = self._refresh(lead_id, rules, now) if pending else (None, None)
        return ApplyOutcome(lead_id=lead_id, applied=len(pending),
                            duplicates=received - len(pending),
                            created=bool(pending) and stage_before is None,
                            stage_before=stage_before, stage_after=stage_after,
                            commits=commits)

    def _stage_lead_write(self, batch: WriteBatch, lead_id: str, fields: dict[str, Any]) -> None:
        """Seam for fault-injection tests: stage the lead's update after the ledger entries."""
        batch.set(self._leads.document(lead_id), fields, merge=True)

    def _refresh(self, lead_id: str, rules: Rules,
                 now: datetime) -> tuple[Stage | None, Stage]:
        """Write the view computed from the facts just committed, unless someone else did.

        Returns the stored stage before (None for a lead never scored: just created) and
        after."""
        from google.api_core import exceptions as gexc

        snap = self._leads.document(lead_id).get()
        lead = from_doc(snap.to_dict() or {})
        fresh = materialise(lead, rules, now)
        if fresh.view() != lead.view():
            batch = self._client.batch()
            batch.update(snap.reference, to_doc(fresh, include=VIEW_FIELDS),
                         option=self._client.write_option(last_update_time=snap.update_time))
            change = stage_change(lead if lead.scored_at else None, fresh, now)
            if change is not None:  # recorded with the stage it reports, or not at all
                batch.create(self._handovers.document(change.id), _handover_doc(change))
            try:
                batch.commit()
            except (gexc.FailedPrecondition, gexc.Conflict):
                pass  # a later writer committed after our read; its refresh sees our events
        return (lead.stage if lead.scored_at else None), fresh.stage

    def _apply_in_transaction(self, lead_id: str, email: str, keyed: list[tuple[str, Event]],
                              rules: Rules, now: datetime, received: int) -> ApplyOutcome:
        from google.cloud import firestore

        lead_ref = self._leads.document(lead_id)
        refs = {key: self._history_ref(lead_id, key) for key, _ in keyed}

        @firestore.transactional
        def run(transaction: Any) -> ApplyOutcome:
            snap = lead_ref.get(transaction=transaction)
            known = {s.id for s in self._client.get_all(list(refs.values()),
                                                        transaction=transaction) if s.exists}
            current = from_doc(snap.to_dict() or {}) if snap.exists else None
            lead, entries = plan(current, known, lead_id, email, keyed, rules, now)
            before = current.stage if current else None
            if lead is None:
                return ApplyOutcome(lead_id=lead_id, applied=0, duplicates=received,
                                    created=False, stage_before=before, stage_after=before,
                                    commits=0)
            self._outbox(transaction, current, lead, now)  # reads before any write
            for entry in entries:
                transaction.create(refs[entry.entry_id], entry.model_dump(mode="python"))
            self._stage_lead_write(transaction, lead_id, to_doc(lead))
            for key in order_keys([event for _, event in keyed]):
                transaction.set(self._orders.document(_order_doc_id(key)),
                                {"lead_id": lead_id})
            return ApplyOutcome(lead_id=lead_id, applied=len(entries),
                                duplicates=received - len(entries), created=current is None,
                                stage_before=before, stage_after=lead.stage)

        result: ApplyOutcome = run(self._client.transaction(max_attempts=10))
        return result

    def rescore_lead(self, lead_id: str, rules: Rules, now: datetime) -> ViewChange | None:
        from google.cloud import firestore

        ref = self._leads.document(lead_id)

        @firestore.transactional
        def run(transaction: Any) -> ViewChange | None:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                return None
            history = [HistoryEntry.model_validate(d.to_dict()) for d in
                       ref.collection("history").stream(transaction=transaction)]
            done = rebuilt(from_doc(snap.to_dict() or {}),
                           sorted(history, key=lambda e: (e.at, e.entry_id)), rules, now)
            if done is None:
                return None
            fresh, change, entry = done
            self._outbox(transaction, from_doc(snap.to_dict() or {}), fresh, now)
            transaction.set(ref.collection("history").document(entry.entry_id),
                            entry.model_dump(mode="python"))
            transaction.set(ref, to_doc(fresh))  # whole document: old rules' keys go
            return change

        result: ViewChange | None = run(self._client.transaction(max_attempts=10))
        return result

    def _outbox(self, transaction: Any, before: LeadState | None, after: LeadState,
                now: datetime) -> None:
        """Inside a transaction (reads first): record the stage change if it is new."""
        change = stage_change(before, after, now)
        if change is not None:
            ref = self._handovers.document(change.id)
            if not ref.get(transaction=transaction).exists:
                transaction.create(ref, _handover_doc(change))

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (self._handovers.where(filter=FieldFilter("delivered", "==", False))
                 .where(filter=FieldFilter("next_attempt_at", "<=", to_seconds(now)))
                 .order_by("next_attempt_at").limit(limit))
        return [_handover_from(d.to_dict() or {}) for d in query.stream()]

    def record_handover(self, change: StageChange) -> None:
        self._handovers.document(change.id).set(_handover_doc(change))

    def put_lead(self, lead: LeadState) -> None:
        self._leads.document(lead.lead_id).set(to_doc(lead))

    def claim_token(self, token: str, owner: str) -> bool:
        from google.api_core import exceptions as gexc

        ref = self._tokens.document(_hashed("t_", token))
        try:
            ref.create({"owner": owner})
            return True
        except gexc.Conflict:
            return (ref.get().to_dict() or {}).get("owner") == owner

    def order_owner(self, order_key: str) -> str | None:
        snap = self._orders.document(_order_doc_id(order_key)).get()
        owner = (snap.to_dict() or {}).get("lead_id") if snap.exists else None
        return str(owner) if owner else None

    def erase(self, lead_id: str) -> bool:
        from google.cloud.firestore_v1.base_query import FieldFilter

        for collection in (self._orders, self._handovers):
            for snap in collection.where(filter=FieldFilter("lead_id", "==", lead_id)).stream():
                snap.reference.delete()
        ref = self._leads.document(lead_id)
        # recursive_delete counts the lead document even when it does not exist
        found = ref.get().exists or any(True for _ in ref.collection("history").limit(1).stream())
        self._client.recursive_delete(ref)
        return found

    # -- reads ----------------------------------------------------------------------------
    def get_lead(self, lead_id: str) -> LeadState | None:
        snap = self._leads.document(lead_id).get()
        return from_doc(snap.to_dict() or {}) if snap.exists else None

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        from google.cloud import firestore

        query = self._leads.document(lead_id).collection("history")
        if limit:
            query = query.order_by("at", direction=firestore.Query.DESCENDING).limit(limit)
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

    def refresh_view(self, lead_id: str, rules: Rules, now: datetime) -> ViewChange | None:
        from google.cloud import firestore

        ref = self._leads.document(lead_id)

        @firestore.transactional
        def run(transaction: Any) -> ViewChange | None:
            snap = ref.get(transaction=transaction)
            done = refreshed(from_doc(snap.to_dict() or {}), rules, now) if snap.exists else None
            if done is None:
                return None
            fresh, change, entry = done
            history = ref.collection("history").document(entry.entry_id)
            self._outbox(transaction, from_doc(snap.to_dict() or {}), fresh, now)
            transaction.set(history, entry.model_dump(mode="python"))
            transaction.update(ref, to_doc(fresh, include=VIEW_FIELDS))
            return change

        result: ViewChange | None = run(self._client.transaction(max_attempts=10))
        return result

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def _handover_doc(change: StageChange) -> dict[str, Any]:
    doc = change.model_dump(mode="python")
    doc["next_attempt_at"] = to_seconds(change.next_attempt_at)
    return doc


def _handover_from(doc: dict[str, Any]) -> StageChange:
    data = dict(doc)
    data["next_attempt_at"] = datetime.fromtimestamp(float(data["next_attempt_at"]), UTC)
    return StageChange.model_validate(data)


def _hashed(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:40]


def _order_doc_id(order_key: str) -> str:
    return _hashed("o_", order_key)


def _transforms(lead_id: str, email: str, deltas: list[LeadDelta],
                now: datetime) -> dict[str, Any]:
    """One merge-set that adds every delta with commutative field transforms."""
    from google.cloud import firestore

    acc: dict[str, float] = {}
    caps: dict[str, int] = {}
    cap_weights: dict[str, float] = {}
    counters: dict[str, int] = {}
    latest: dict[str, float] = {}
    # due soon for the scheduled job, in case this writer dies before its refresh
    earliest: dict[str, float] = {"created_at": to_seconds(now),
                                  "next_review_at": to_seconds(now + SAFETY_REVIEW)}
    for d in deltas:
        for k, v in d.acc.items():
            acc[k] = acc.get(k, 0.0) + v
        for k, n in d.caps.items():
            caps[k] = caps.get(k, 0) + n
        for k, w in d.cap_weights.items():
            cap_weights[k] = cap_weights.get(k, 0.0) + w
        for k, n in d.counters.items():
            counters[k] = counters.get(k, 0) + n
        for k, t in d.latest.items():
            latest[k] = max(latest.get(k, float("-inf")), to_seconds(t))
        for k, t in d.earliest.items():
            earliest[k] = min(earliest.get(k, float("inf")), to_seconds(t))
    latest["updated_at"] = to_seconds(now)
    fields: dict[str, Any] = {"lead_id": lead_id, "email": email, "shard": shard_of(lead_id)}
    fields["eng_acc"] = {k: firestore.Increment(v) for k, v in acc.items()}
    fields["cap_counts"] = {k: firestore.Increment(n) for k, n in caps.items()}
    fields["cap_weights"] = {k: firestore.Increment(w) for k, w in cap_weights.items()}
    fields["counters"] = {k: firestore.Increment(n) for k, n in counters.items()}
    fields.update({k: firestore.Maximum(v) for k, v in latest.items()})
    fields.update({k: firestore.Minimum(v) for k, v in earliest.items()})
    return {k: v for k, v in fields.items() if v != {}}
