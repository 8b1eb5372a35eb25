"""Moves and expiries for the Firestore adapter (see `move_away`, `purge_expired_erasures`
and `purge_used_tokens` in port.py).

A move writes its moved record (a tombstone with `moved_to`) first, then deletes the old
lead like an erasure: every transaction reads the tombstone, so a writer either committed
before (and the move's deletion removes its writes, as it would an erasure's) or sees the
record and writes on the new lead; the blind path checks it after its commit (writes.py).

Tombstones, moved records, erased orders' markers and used signature tokens carry
`expires_at`, which Firestore's TTL policies (infra/data_care.py) delete by in production,
usually within a day. The purges delete at most `PURGE_PAGE` of each per decay tick, by a
query on `expires_at`: what the TTL has not reached yet, and everything on the emulator
(which runs no TTL).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.store.firestore_codec import from_doc, to_seconds
from leadscore.store.port import TOMBSTONE_KEPT

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference

PURGE_PAGE = 400  # below Firestore's 500 writes per batch


class FirestoreRetention:
    _client: Client
    _erased: CollectionReference
    _aliases: CollectionReference
    _tokens: CollectionReference
    _leads: CollectionReference

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        raise NotImplementedError  # FirestoreStore's

    def move_away(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        return self.record_move(lead_id, moved_to, moved_at) and self.erase(lead_id)

    def record_move(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        """One transaction reads both ids' tombstones (and the target lead): an erasure
        of either that commits first refuses the record, one after it meets the record
        (`erase` replaces it, or deletes the records pointing at the erased id)."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        from leadscore.store.firestore import _tombstone_from

        mine_ref, theirs_ref = self._erased.document(lead_id), self._erased.document(moved_to)

        @firestore.transactional
        def run(tx: Any) -> bool:
            mine = _tombstone_from(mine_ref.get(transaction=tx))
            theirs = _tombstone_from(theirs_ref.get(transaction=tx))
            if mine is not None and mine.moved_to is None:
                return False  # an erasure stays an erasure
            if theirs is not None and theirs.moved_to is None:
                lead = self._leads.document(moved_to).get(transaction=tx)
                if not lead.exists or not theirs.restarted(from_doc(lead.to_dict() or {})):
                    return False  # erased there: the record would send writes nowhere
            pointing = list(self._erased.where(filter=FieldFilter("moved_to", "==", lead_id))
                            .stream(transaction=tx))
            if theirs is not None and theirs.moved_to is not None:
                tx.delete(theirs_ref)  # a move back: the new id holds a lead again
            for snap in pointing:
                if snap.id != moved_to:  # a move back deleted it above
                    tx.update(snap.reference, {"moved_to": moved_to})
            tx.set(mine_ref, {"erased_at": to_seconds(moved_at), "settled": True,
                              "moved_to": moved_to, "expires_at": moved_at + TOMBSTONE_KEPT})
            return True

        recorded: bool = run(self._client.transaction())
        return recorded

    def forget_move(self, lead_id: str, moved_to: str) -> bool:
        from google.cloud import firestore

        ref = self._erased.document(lead_id)

        @firestore.transactional
        def run(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            if not snap.exists or (snap.to_dict() or {}).get("moved_to") != moved_to:
                return False
            tx.delete(ref)
            return True

        forgotten: bool = run(self._client.transaction())
        return forgotten

    def purge_expired_erasures(self, now: datetime) -> int:
        return self._purge(self._erased, now) + self._purge(self._aliases, now)

    def purge_used_tokens(self, now: datetime) -> int:
        return self._purge(self._tokens, now)

    def _purge(self, collection: CollectionReference, now: datetime) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        expired = list(collection.where(filter=FieldFilter("expires_at", "<=", now))
                       .limit(PURGE_PAGE).stream())
        if expired:
            batch = self._client.batch()
            for snap in expired:
                batch.delete(snap.reference)
            batch.commit()
        return len(expired)
