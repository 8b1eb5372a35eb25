"""Dashboard aggregations for the Firestore adapter (see `DashboardStats` in port.py).

Each count is one `count()` aggregation query with equality/range filters: Firestore bills
one read per 1,000 index entries matched (at least one), and returns no documents. The
snapshots live in `{collection}_snapshots`, one document per day."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from leadscore.domain.state import LeadState, Stage
from leadscore.store.firestore_codec import from_doc
from leadscore.store.port import LeadCount

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference


PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


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

    def newest_in_stage(self, stage: Stage, limit: int) -> list[LeadState]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (self._leads.where(filter=FieldFilter("stage", "==", stage))
                 .order_by("stage_since", direction=firestore.Query.DESCENDING)
                 .order_by("__name__", direction=firestore.Query.DESCENDING).limit(limit))
        return [from_doc(d.to_dict() or {}) for d in query.stream()]

    def top_movers(self, up: bool, limit: int) -> list[LeadState]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        moved = FieldFilter("movement", ">" if up else "<", 0)
        direction = firestore.Query.DESCENDING if up else firestore.Query.ASCENDING
        query = self._leads.where(filter=moved).order_by("movement", direction=direction)
        return [from_doc(d.to_dict() or {}) for d in query.limit(limit).stream()]

    def sum_counter(self, name: str) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        if not PLAIN_NAME.fullmatch(name):
            raise ValueError(f"not a counter name: {name!r}")
        path = f"counters.{name}"
        having: Any = self._leads.where(filter=FieldFilter(path, ">", 0))
        result = having.sum(path).get()  # billed like a count: 1 read per 1,000 entries
        return int(result[0][0].value or 0)

    def _dashboard_doc(self, name: str) -> Any:
        return self._client.collection(f"{self._leads.id}_dashboard").document(name)

    def put_calibration(self, report: dict[str, Any]) -> None:
        # as JSON text: the report's nested lists and None values stay exactly as given
        self._dashboard_doc("calibration").set({"report": json.dumps(report)})

    def latest_calibration(self) -> dict[str, Any] | None:
        snap = self._dashboard_doc("calibration").get()
        if not snap.exists:
            return None
        found: dict[str, Any] = json.loads((snap.to_dict() or {})["report"])
        return found
