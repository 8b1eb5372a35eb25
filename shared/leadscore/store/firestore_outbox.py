"""Outbox claims for the Firestore adapter (see `OutboxClaims` in port.py).

A claim reads the due documents with a query, then moves each one's `next_attempt_at` to
the lease's end with an update conditioned on the document's update time: if another
instance claimed (or delivered) it since the query read it, the precondition fails and this
claimer skips it. So each item has one claimer at a time, without a transaction per item.
CRM erasures live in `{collection}_crm_erasures`, apart from the lead's documents (erasing
the lead must not delete what finishes its erasure in the CRM).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.outbox import StageChange
from leadscore.store.firestore_codec import to_seconds
from leadscore.store.port import CrmErasure

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference, DocumentReference, Query


CLAIM_TRIES = 4  # queries of one claim when others keep taking what it found


def _when(seconds: Any) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


class FirestoreOutbox:
    _client: Client
    _handovers: CollectionReference
    _crm_erasures: CollectionReference

    def _claimed(self, query: Query, until: datetime) -> Iterator[dict[str, Any]]:
        """Each document of `query` this call took: its fields with the new next attempt.
        If the query found documents but another claimer took every one of them meanwhile
        (a sweep asks for one at a time), it asks again, a few times: a lost race must not
        end a sweep while other items are due."""
        from google.api_core import exceptions as gexc

        for _ in range(CLAIM_TRIES):
            found = taken = 0
            for snap in query.stream():
                found += 1
                try:
                    snap.reference.update({"next_attempt_at": to_seconds(until)},
                                          option=self._client.write_option(
                                              last_update_time=snap.update_time))
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue  # another claimer took it (or delivered or forgot it) meanwhile
                taken += 1
                yield {**(snap.to_dict() or {}), "next_attempt_at": until}
            if taken or not found:
                return

    def _update_claimed(self, ref: DocumentReference, doc: dict[str, Any],
                        lease: datetime) -> bool:
        """Write `doc` only while the stored change is still the claim that ends at `lease`
        (not closed, its next attempt that lease's end): read, checked, then updated on the
        condition that nothing wrote it since the read (looked at again if something did).
        A sweeper that outlasted its lease, another having claimed and closed the change
        since, never reopens it."""
        from google.api_core import exceptions as gexc

        for _ in range(CLAIM_TRIES):
            snap = ref.get()
            held = snap.to_dict() if snap.exists else None
            if held is None or held.get("delivered") or (
                    held.get("next_attempt_at") != to_seconds(lease)):
                return False
            try:
                ref.update(doc, option=self._client.write_option(
                    last_update_time=snap.update_time))
            except (gexc.FailedPrecondition, gexc.NotFound):
                continue  # written meanwhile: look again
            return True
        return False

    def claim_handovers(self, now: datetime, until: datetime,
                        limit: int = 100) -> list[StageChange]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (self._handovers.where(filter=FieldFilter("delivered", "==", False))
                 .where(filter=FieldFilter("next_attempt_at", "<=", to_seconds(now)))
                 .order_by("next_attempt_at").limit(limit))
        return [StageChange.model_validate(doc) for doc in self._claimed(query, until)]

    def record_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        batch = self._client.batch()
        for item in items:
            batch.set(self._crm_erasures.document(item.id),
                      {**item.model_dump(mode="python"),
                       "next_attempt_at": to_seconds(item.next_attempt_at)})
        batch.commit()

    def update_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        from google.api_core.exceptions import NotFound

        for item in items:  # one by one: a batch fails whole on one that is gone
            try:
                self._crm_erasures.document(item.id).update(
                    {**item.model_dump(mode="python"),
                     "next_attempt_at": to_seconds(item.next_attempt_at)})
            except NotFound:
                pass  # forgotten meanwhile: stays forgotten

    def claim_crm_erasures(self, now: datetime, until: datetime, limit: int = 100,
                           expired: bool = False) -> list[CrmErasure]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        by, at = ("expires_at", now) if expired else ("next_attempt_at", to_seconds(now))
        query = (self._crm_erasures.where(filter=FieldFilter(by, "<=", at))
                 .order_by(by).limit(limit))
        return [CrmErasure.model_validate(doc) for doc in self._claimed(query, until)]

    def forget_crm_erasures(self, ids: Sequence[str]) -> None:
        batch = self._client.batch()
        for key in ids:
            batch.delete(self._crm_erasures.document(key))
        batch.commit()
