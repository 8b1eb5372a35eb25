"""Re-keying for the Firestore adapter (see `Rekeyable` in port.py).

A lead's history can outgrow one transaction, so the move has two steps, each safe to
repeat: (1) copy the old lead's history and order records under the new id, deleting each
old one once copied; (2) one transaction that reads the old lead document, checks it has not
changed since step 1 began (a writer that slipped in sends us back to step 1), merges, writes
the new lead document, re-points every record that names the old id (order index, aliases,
handovers, email-tool sync records, visitor links) and deletes the old document. A crash
between the steps leaves the old document in place, so the next run finds it and finishes;
readers meanwhile see the old lead (by address, read-through) or the new one, never neither.

The new id's tombstone is read before step 1 and again in the step-2 transaction: a lead
whose address was erased meanwhile is erased under its old id (with the same erasure time)
instead of moved, and what step 1 copied under the erased id is deleted; otherwise the move
would bring the erased lead back under the id its tombstone guards. A moved record there
(Mailchimp's `upemail`) is no erasure: the lead is kept as it is (what step 1 copied is put
back), and `service/rekey.py` re-keys it onto the lead the address moved to.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from leadscore.domain.outbox import StageChange
from leadscore.domain.state import HistoryEntry, Order
from leadscore.errors import TransientError
from leadscore.store.firestore_codec import from_doc, to_doc
from leadscore.store.port import Merge, Tombstone

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference, DocumentReference

ATTEMPTS = 5
BATCH = 400  # below Firestore's 500 writes per batch


class FirestoreRekey:
    _client: Client
    _leads: CollectionReference
    _orders: CollectionReference
    _aliases: CollectionReference
    _handovers: CollectionReference
    _visitors: CollectionReference
    _esp: CollectionReference
    _erased: CollectionReference

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        raise NotImplementedError  # FirestoreStore's

    def tombstone(self, lead_id: str) -> Tombstone | None:
        raise NotImplementedError  # FirestoreStore's

    def _stage_counts(self, writer: Any,
                      *changes: tuple[str, list[str] | None, list[str] | None]) -> None:
        raise NotImplementedError  # FirestoreStats'

    def rekey_lead(self, old_id: str, new_id: str, merge: Merge) -> bool:
        old_ref, new_ref = self._leads.document(old_id), self._leads.document(new_id)
        for _ in range(ATTEMPTS):
            before = old_ref.get()
            if not before.exists:
                return False
            if (stone := self.tombstone(new_id)) is not None and stone.moved_to is not None:
                return False  # moved away (`upemail`), no erasure: kept (see the module)
            if stone is not None:
                self.erase(old_id, erased_at=stone.erased_at)
                return False
            copied = [ref for name in ("history", "orders") for ref in
                      self._move_children(old_ref.collection(name), new_ref.collection(name))]
            outcome = self._switch(old_ref, new_ref, before.update_time, merge)
            if outcome == "erased":  # erased between the check and the switch
                self._forget_copies(copied)
                stone = self.tombstone(new_id)
                self.erase(old_id, erased_at=stone.erased_at if stone else None)
                return False
            if outcome == "moved":
                return True
            if outcome == "kept":  # moved away between the check and the switch
                self._put_back(copied, old_ref)
                return False
        raise TransientError(f"lead {old_id} kept changing while it was re-keyed; run again")

    def _forget_copies(self, copied: list[DocumentReference]) -> None:
        """Delete what step 1 copied under an id erased meanwhile: facts from before the
        erasure (a lead started again with consent under that id has other documents)."""
        for start in range(0, len(copied), BATCH):
            batch = self._client.batch()
            for ref in copied[start:start + BATCH]:
                batch.delete(ref)
            batch.commit()

    def _put_back(self, copied: list[DocumentReference], old_ref: DocumentReference) -> None:
        """Return what step 1 copied to its place under the old id (the lead is kept)."""
        for start in range(0, len(copied), BATCH):
            part = [(ref, ref.get()) for ref in copied[start:start + BATCH]]
            batch = self._client.batch()
            for ref, snap in part:
                if snap.exists:
                    batch.set(old_ref.collection(ref.parent.id).document(ref.id),
                              snap.to_dict() or {})
            batch.commit()
            batch = self._client.batch()
            for ref, _ in part:
                batch.delete(ref)
            batch.commit()

    def _move_children(self, old: CollectionReference,
                       new: CollectionReference) -> list[DocumentReference]:
        snaps = list(old.stream())
        for start in range(0, len(snaps), BATCH):
            part = snaps[start:start + BATCH]
            batch = self._client.batch()
            for snap in part:  # same id, same content: copying twice changes nothing
                batch.set(new.document(snap.id), snap.to_dict() or {})
            batch.commit()
            batch = self._client.batch()
            for snap in part:
                batch.delete(snap.reference)
            batch.commit()
        return [new.document(snap.id) for snap in snaps]

    def _switch(self, old_ref: DocumentReference, new_ref: DocumentReference,
                seen: Any, merge: Merge) -> Literal["moved", "changed", "erased", "kept"]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        old_id, new_id = old_ref.id, new_ref.id

        def naming_old(collection: CollectionReference, tx: Any) -> list[Any]:
            return list(collection.where(filter=FieldFilter("lead_id", "==", old_id))
                        .stream(transaction=tx))

        @firestore.transactional
        def run(tx: Any) -> Literal["moved", "changed", "erased", "kept"]:
            old = old_ref.get(transaction=tx)
            if not old.exists or old.update_time != seen:
                return "changed"  # moved meanwhile, or written to: copy again first
            stone = self._erased.document(new_id).get(transaction=tx)
            if stone.exists and (stone.to_dict() or {}).get("moved_to"):
                return "kept"  # moved away (`upemail`), no erasure: the lead stays
            if stone.exists:
                return "erased"  # the erasure's deletion may have passed: never move
            target = new_ref.get(transaction=tx)
            history = sorted((HistoryEntry.model_validate(d.to_dict()) for d in
                              new_ref.collection("history").stream(transaction=tx)),
                             key=lambda e: (e.at, e.entry_id))
            records = {d["key"]: Order.model_validate(d) for s in
                       new_ref.collection("orders").stream(transaction=tx)
                       if (d := s.to_dict() or {}).get("key")}
            pointing = [s for c in (self._orders, self._aliases, self._handovers,
                                    self._visitors) for s in naming_old(c, tx)]
            esp = [(s, self._esp.document(s.id.rsplit(":", 1)[0] + ":" + new_id))
                   for s in naming_old(self._esp, tx)]
            esp_new = {ref.id for _, ref in esp if ref.get(transaction=tx).exists}
            merged = merge(from_doc(old.to_dict() or {}),
                           from_doc(target.to_dict() or {}) if target.exists else None,
                           history, records)
            lead, records = merged.lead, merged.records
            tx.set(new_ref, to_doc(lead))
            # the shards: the old lead's counts go, the new id's are replaced by the merge's
            self._stage_counts(tx, (old_id, (old.to_dict() or {}).get("counted"), None),
                               (new_id, (target.to_dict() or {}).get("counted")
                                if target.exists else None, lead.counted))
            for key, order in records.items():
                tx.set(new_ref.collection("orders").document(_order_doc(key)),
                       {"key": key, **order.model_dump(mode="python")})
            for entry in merged.history:
                tx.set(new_ref.collection("history").document(entry.entry_id),
                       entry.model_dump(mode="python"))
            for change in merged.outbox:  # its id is the change's: a second merge rewrites it
                tx.set(self._handovers.document(change.id), _handover(change))
            for snap in pointing:
                tx.update(snap.reference, {"lead_id": new_id})
            for snap, ref in esp:
                if ref.id not in esp_new:  # a record the new id has already is the newer
                    tx.set(ref, {**(snap.to_dict() or {}), "lead_id": new_id})
                tx.delete(snap.reference)
            tx.delete(old_ref)
            return "moved"

        try:
            outcome: Literal["moved", "changed", "erased", "kept"] = run(self._client.transaction())
        except ValueError as exc:  # the client's "Failed to commit transaction in N attempts"
            raise TransientError(f"re-keying {old_id} kept contending; run again") from exc
        return outcome


def _handover(change: StageChange) -> dict[str, Any]:
    from leadscore.store.firestore import _handover_doc

    return _handover_doc(change)


def _order_doc(order_key: str) -> str:
    from leadscore.store.firestore import _order_doc_id

    return _order_doc_id(order_key)
