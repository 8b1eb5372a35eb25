"""Moves for the Firestore adapter (see `move_away` in port.py).

A move writes its moved record (a tombstone with `moved_to`) first, then deletes the old
lead like an erasure: every transaction reads the tombstone, so a writer either committed
before (and the move's deletion removes its writes, as it would an erasure's) or sees the
record and writes on the new lead; the blind path checks it after its commit (writes.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from leadscore.store.firestore_codec import to_seconds
from leadscore.store.port import TOMBSTONE_KEPT

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference


class FirestoreRetention:
    _client: Client
    _erased: CollectionReference

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
