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
from typing import TYPE_CHECKING

from leadscore.store.firestore_codec import to_seconds
from leadscore.store.port import TOMBSTONE_KEPT

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference

PURGE_PAGE = 400  # below Firestore's 500 writes per batch


class FirestoreRetention:
    _client: Client
    _erased: CollectionReference
    _aliases: CollectionReference
    _tokens: CollectionReference

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        raise NotImplementedError  # FirestoreStore's

    def move_away(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        from google.cloud.firestore_v1.base_query import FieldFilter

        target = self._erased.document(moved_to).get()
        if target.exists and (target.to_dict() or {}).get("moved_to"):
            target.reference.delete()  # a move back: the new id holds a lead again
        for snap in self._erased.where(
                filter=FieldFilter("moved_to", "==", lead_id)).stream():
            snap.reference.update({"moved_to": moved_to})
        self._erased.document(lead_id).set({
            "erased_at": to_seconds(moved_at), "settled": True, "moved_to": moved_to,
            "expires_at": moved_at + TOMBSTONE_KEPT})
        return self.erase(lead_id)

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
