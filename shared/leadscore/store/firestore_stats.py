"""Dashboard aggregations for the Firestore adapter (see `DashboardStats` in port.py).

Each count is one `count()` aggregation query with equality/range filters: Firestore bills
one read per 1,000 index entries matched (at least one), and returns no documents. The
snapshots live in `{collection}_snapshots`, one document per day."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadscore.store.port import LeadCount

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference


def _count(query: Any) -> int:
    result = query.count().get()
    return int(result[0][0].value)


class FirestoreStats:
    _client: Client
    _leads: CollectionReference
    _handovers: CollectionReference

    def _snapshot_days(self) -> Any:
        return self._client.collection(f"{self._leads.id}_snapshots")

    def count_matching(self, query: LeadCount) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found: Any = self._leads
        for name in ("stage", "grade", "email_status", "non_opener"):
            value = getattr(query, name)
            if value is not None:
                found = found.where(filter=FieldFilter(name, "==", value))
        if query.min_score is not None:
            found = found.where(filter=FieldFilter("score", ">=", query.min_score))
        if query.below_score is not None:
            found = found.where(filter=FieldFilter("score", "<", query.below_score))
        return _count(found)

    def count_handovers(self, delivered: bool, attempted: bool | None = None) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = self._handovers.where(filter=FieldFilter("delivered", "==", delivered))
        if attempted is True:
            found = found.where(filter=FieldFilter("attempts", ">", 0))
        elif attempted is False:
            found = found.where(filter=FieldFilter("attempts", "==", 0))
        return _count(found)

    def put_snapshot(self, day: str, counts: dict[str, int]) -> None:
        self._snapshot_days().document(day).set({"day": day, "counts": dict(counts)})

    def snapshots(self, limit: int = 30) -> dict[str, dict[str, int]]:
        from google.cloud import firestore

        docs = (self._snapshot_days().order_by("day", direction=firestore.Query.DESCENDING)
                .limit(limit).stream())
        rows = [d.to_dict() or {} for d in docs]
        return {r["day"]: {k: int(v) for k, v in r["counts"].items()} for r in reversed(rows)}
