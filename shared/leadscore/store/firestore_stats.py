"""Dashboard aggregations for the Firestore adapter (see `DashboardStats` in port.py).

Each count is one `count()` aggregation query with equality/range filters: Firestore bills
one read per 1,000 index entries matched (at least one), and returns no documents. The
snapshots live in `{collection}_snapshots`, one document per day.

The statistics documents (`{collection}_stats`): STATS_SHARDS shard documents `shard-NN`,
each a map `n` of key -> sum of the `counted` of the leads whose id hashes to that shard
(one lead's keys always live on one shard, so no shard goes negative), and `state`, which
says the shards are complete. Every write of a lead through the adapter adds what changed
in its `counted` as `Increment` transforms on its shard, in the same transaction or batch
as the lead (no read of the shard: writers on different leads never contend beyond the
commit). A page view reads the STATS_SHARDS + 1 documents (33) and sums them.
`state` is written by `leadscore dashboard recount` when it has counted every lead stored
without `counted`, or by the dashboard when the shards' `total` equals the leads' count
(every lead is counted: a store this release wrote from the start)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from leadscore.domain import lead_stats as counting
from leadscore.domain.identity import shard_of
from leadscore.domain.state import LeadState, Stage
from leadscore.store.firestore_codec import from_doc
from leadscore.store.port import LeadCount

if TYPE_CHECKING:
    from google.cloud.firestore import Client, CollectionReference


PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Writers of different leads meet on a shard only at commit; Firestore sustains about one
# write a second per document, so the shards bound the sustained rate of lead writes that
# change a count (~32/s; bursts queue). Raise it for more (the page reads one document per
# shard); never lower it: the shards above would no longer be read.
STATS_SHARDS = 32


def _count(query: Any) -> int:
    result = query.count().get()
    return int(result[0][0].value)


class FirestoreStats:
    _client: Client
    _leads: CollectionReference
    _handovers: CollectionReference

    def _snapshot_days(self) -> Any:
        return self._client.collection(f"{self._leads.id}_snapshots")

    def _stats(self) -> Any:
        return self._client.collection(f"{self._leads.id}_stats")

    def _stats_shard(self, lead_id: str) -> Any:
        return self._stats().document(f"shard-{shard_of(lead_id) % STATS_SHARDS:02d}")

    def _stage_counts(self, writer: Any,
                      *changes: tuple[str, list[str] | None, list[str] | None]) -> None:
        """Stage, on `writer` (a transaction or batch), each (lead id, `counted` before,
        after) change: one merge-write of `Increment`s per shard touched."""
        from google.cloud import firestore

        by_shard: dict[str, dict[str, int]] = {}
        for lead_id, before, after in changes:
            counting.add(by_shard.setdefault(self._stats_shard(lead_id).id, {}),
                         counting.change(before, after))
        for shard, delta in by_shard.items():
            if delta:
                writer.set(self._stats().document(shard),
                           {"n": {k: firestore.Increment(v) for k, v in delta.items()}},
                           merge=True)

    def lead_stats(self, complete_only: bool = True) -> dict[str, int] | None:
        state, *shards = self._client.get_all(
            [self._stats().document("state"),
             *(self._stats().document(f"shard-{i:02d}") for i in range(STATS_SHARDS))])
        found = {s.id: s for s in [state, *shards]}  # get_all answers in any order
        if complete_only and not found["state"].exists:
            return None
        totals: dict[str, int] = {}
        for snap in found.values():
            if snap.id != "state" and snap.exists:
                counting.add(totals, {k: int(v) for k, v in
                                      ((snap.to_dict() or {}).get("n") or {}).items()})
        return totals

    def mark_stats_complete(self) -> None:
        from google.cloud import firestore

        self._stats().document("state").set({"complete": True,
                                             "at": firestore.SERVER_TIMESTAMP})

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

    def count_handovers(self, delivered: bool, attempted: bool | None = None,
                        given_up: bool | None = None) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = self._handovers.where(filter=FieldFilter("delivered", "==", delivered))
        if given_up is not None:  # equality only: Firestore merges single-field indexes
            found = found.where(filter=FieldFilter("given_up", "==", given_up))
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
