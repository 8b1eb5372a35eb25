"""Visitor records for the Firestore adapter (see `VisitorStore` in port.py).

One collection, `{collection}_visitors`: a document per anonymous event (`visitor` names its
visitor key) and one per visitor link (its id is the key; `lead_id` once identified). Every
document has `expires_at`, on which the deployment declares a TTL policy, so anonymous
events nobody identifies go away by themselves; erasing a lead deletes its links.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.store.port import VisitorEvent, VisitorLink

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference, Query

BATCH = 400  # below Firestore's 500 writes per batch


class FirestoreVisitors:
    _client: Client
    _visitors: CollectionReference

    def _event_id(self, key: str, ledger_key: str) -> str:
        return f"{key}_{ledger_key}"

    def save_visitor_events(self, events: Sequence[VisitorEvent]) -> None:
        for start in range(0, len(events), BATCH):
            batch = self._client.batch()
            for e in events[start:start + BATCH]:
                batch.set(self._visitors.document(self._event_id(e.key, e.ledger_key)),
                          {"visitor": e.key, "ledger_key": e.ledger_key, "event": e.event,
                           "expires_at": e.expires_at})
            batch.commit()

    def visitor_events(self, key: str, limit: int | None = None) -> list[VisitorEvent]:
        query = self._events_of(key).order_by("expires_at")  # then by id: key_ledger
        if limit is not None:
            query = query.limit(limit)
        return [_event_from(snap.to_dict() or {}) for snap in query.stream()]

    def trim_visitor_events(self, keys: Sequence[str], keep: int) -> int:
        count = 0
        for key in keys:
            query: Any = self._events_of(key)
            extra = int(query.count().get()[0][0].value) - keep  # one read per 1,000 matched
            if extra > 0:
                gone = [e.ledger_key for e in self.visitor_events(key, extra)]
                self.drop_visitor_events(key, gone)
                count += len(gone)
        return count

    def _events_of(self, key: str) -> Query:
        from google.cloud.firestore_v1.base_query import FieldFilter

        return self._visitors.where(filter=FieldFilter("visitor", "==", key))

    def drop_visitor_events(self, key: str, ledger_keys: Sequence[str]) -> None:
        keys = list(ledger_keys)
        for start in range(0, len(keys), BATCH):
            batch = self._client.batch()
            for ledger in keys[start:start + BATCH]:
                batch.delete(self._visitors.document(self._event_id(key, ledger)))
            batch.commit()

    def visitor_link(self, key: str) -> VisitorLink | None:
        snap = self._visitors.document(key).get()
        return VisitorLink.model_validate(snap.to_dict()) if snap.exists else None

    def put_visitor_link(self, link: VisitorLink) -> None:
        self._visitors.document(link.key).set(link.model_dump())

    def erase_visitors(self, lead_id: str) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        links = list(self._visitors.where(filter=FieldFilter("lead_id", "==", lead_id)).stream())
        for snap in links:
            for event in self.visitor_events(snap.id):
                self._visitors.document(self._event_id(snap.id, event.ledger_key)).delete()
            snap.reference.delete()
        return len(links)

    def purge_visitors(self, now: datetime) -> int:
        """Firestore's TTL policy deletes expired records; this does it now (tests, tools)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        expired = self._visitors.where(filter=FieldFilter("expires_at", "<=", now)).stream()
        count = 0
        for snap in expired:
            snap.reference.delete()
            count += 1
        return count


def _event_from(doc: dict[str, Any]) -> VisitorEvent:
    return VisitorEvent(key=doc["visitor"], ledger_key=doc["ledger_key"], event=doc["event"],
                        expires_at=doc["expires_at"])
