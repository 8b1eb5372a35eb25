"""Every query the Firestore adapter issues is covered by infra/firestore.indexes.json.

The emulator never enforces composite indexes and production does, so this test records
the queries the adapter really sends (while exercising every query method on the emulator)
and checks each against the index file with Firestore's rules.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import form
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.service.writes import apply_events

INDEXES = Path(__file__).resolve().parents[2] / "infra" / "firestore.indexes.json"
EQUALITY = {"EQUAL", "IN", "ARRAY_CONTAINS"}


def _describe(query: Any) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    filters = []
    for f in query._field_filters:
        op = type(f).Operator(f.op).name if hasattr(f, "op") else "EQUAL"
        filters.append((f.field.field_path, op))
    orders = [(o.field.field_path, "DESCENDING" if o.direction == 2 else "ASCENDING")
              for o in query._orders]
    return query._parent.id, filters, orders


def needs_composite(filters: list[tuple[str, str]], orders: list[tuple[str, str]]) -> bool:
    """Single-field indexes serve equality-only queries and one range/order field alone,
    including that field's order followed by `__name__` in the same direction (Firestore's
    implicit tie-breaker); `__name__` the other way round needs a composite index."""
    ranged = {f for f, op in filters if op not in EQUALITY} | {f for f, _ in orders
                                                               if f != "__name__"}
    equal = {f for f, op in filters if op in EQUALITY}
    fields = [d for f, d in orders if f != "__name__"]
    names = [d for f, d in orders if f == "__name__"]
    reversed_name = bool(fields and names) and names[-1] != fields[-1]
    return bool(ranged) and (bool(equal) or len(ranged) > 1 or reversed_name)


def unnecessary(index: dict[str, Any]) -> bool:
    """Firestore refuses a composite index that a single-field index already gives: fewer
    than two fields besides `__name__`, with `__name__` (if any) in the last field's
    direction (HTTP 400 "this index is not necessary, configure using single field index
    controls"; Firestore's index reference: a composite index has two or more fields)."""
    fields = [(x["fieldPath"], x.get("order")) for x in index["fields"]]
    named = [f for f in fields if f[0] != "__name__"]
    names = [d for f, d in fields if f == "__name__"]
    return len(named) < 2 and all(d == named[-1][1] for d in names) if named else True


def covered(collection: str, filters: list[tuple[str, str]], orders: list[tuple[str, str]],
            indexes: list[dict[str, Any]]) -> bool:
    equal = {f for f, op in filters if op in EQUALITY}
    ranged = [(f, d) for f, d in orders]
    for f, op in filters:
        if op not in EQUALITY and f not in {o for o, _ in orders}:
            ranged.insert(0, (f, "ASCENDING"))
    for index in indexes:
        if index["collectionGroup"] != collection:
            continue
        fields = [(x["fieldPath"], x["order"]) for x in index["fields"]]
        head, tail = fields[:len(equal)], fields[len(equal):]
        if {f for f, _ in head} == equal and tail[:len(ranged)] == ranged:
            return True
    return False


def test_every_adapter_query_has_an_index(firestore_client: Any, rules: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud.firestore_v1.aggregation import AggregationQuery
    from google.cloud.firestore_v1.query import Query

    from leadscore.store.firestore import FirestoreStore

    seen: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = []
    real_stream = Query.stream

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(_describe(self))
        return real_stream(self, *args, **kwargs)

    monkeypatch.setattr(Query, "stream", recording)
    real_aggregate = AggregationQuery.get

    def recording_aggregate(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(_describe(self._nested_query))  # count() and sum() need indexes too
        return real_aggregate(self, *args, **kwargs)

    monkeypatch.setattr(AggregationQuery, "get", recording_aggregate)
    collection = f"leads_{uuid.uuid4().hex[:8]}"
    store = FirestoreStore(firestore_client, collection=collection)
    email = "q@acme.com"
    apply_events(store, lead_id_for(email), email, [form(email, "f", NOW, kind="demo_request")],
                       rules, NOW)
    # every query method, with every filter the API and CLI can pass
    for stage in (None, "mql"):
        for grade in (None, "D2"):
            for non_opener in (None, True):
                for min_score in (None, 10.0):
                    store.list_leads(stage=stage, grade=grade, non_opener=non_opener,
                                     min_score=min_score, after=(50.0, "l_x"))
    store.iter_leads(after_id="l_0")
    store.due_for_review(NOW + timedelta(days=2))
    store.due_for_review(NOW + timedelta(days=2), buckets=list(range(40)))
    store.pending_handovers(NOW + timedelta(days=1))
    store.claim_handovers(NOW + timedelta(days=1), NOW + timedelta(days=2))
    store.purge_handovers(NOW + timedelta(days=1))
    store.claim_crm_erasures(NOW + timedelta(days=1), NOW + timedelta(days=2))
    store.claim_crm_erasures(NOW + timedelta(days=1), NOW + timedelta(days=2), expired=True)
    store.purge_expired_erasures(NOW)  # the decay tick's purges, and a move's repointing
    store.purge_used_tokens(NOW)
    store.move_away(lead_id_for("moved@acme.com"), lead_id_for(email), NOW)
    _every_dashboard_query(store)
    store.visitor_events("v-x", 5)  # the visitors' pages and trims (service/visitors.py)
    store.trim_visitor_events(["v-x"], 0)
    store.erase(lead_id_for(email))
    indexes = json.loads(INDEXES.read_text())["indexes"]
    generic = [(c.replace(collection, "leads"), f, o) for c, f, o in seen]
    missing = [q for q in generic if needs_composite(q[1], q[2]) and not covered(*q, indexes)]
    assert len(seen) > 20 and missing == []
    aggregations = [q for q in generic if q[0] in {"leads", "leads_handovers"} and (
        ("attempts", "GREATER_THAN") in q[1] or ("counters.email_opened", "GREATER_THAN") in q[1])]
    assert len(aggregations) == 2  # the recording saw the aggregation queries


def _every_dashboard_query(store: Any) -> None:
    """Every query of the dashboard (`DashboardStats`), with every filter it passes."""
    from leadscore.store.port import LeadCount

    store.count_leads()
    for count in (LeadCount(stage="mql"), LeadCount(grade="A1"),
                  LeadCount(email_status="bounced"), LeadCount(non_opener=True),
                  LeadCount(min_score=10.0, below_score=20.0), LeadCount(below_score=0.0),
                  LeadCount(min_score=100.0)):
        store.count_matching(count)
    for delivered, attempted in ((True, None), (False, True), (False, False)):
        store.count_handovers(delivered, attempted)
    store.count_handovers(True, given_up=True)
    store.snapshots(30)
    for stage in ("mql", "sql"):
        store.newest_in_stage(stage, 8)
    for up in (True, False):
        store.top_movers(up, 8)
    for name in ("email_opened", "email_opened_machine"):
        store.sum_counter(name)


def test_no_declared_index_is_one_firestore_refuses_as_unnecessary() -> None:
    # GIVEN the index file the deploy creates, one `gcloud firestore indexes composite
    # create` per entry (infra/plan.py), where a refusal stops the deploy
    indexes = json.loads(INDEXES.read_text())["indexes"]
    # WHEN each is checked against Firestore's rule for composite indexes
    refused = [index["fields"] for index in indexes if unnecessary(index)]
    # THEN none is one a single-field index already gives (found by a deploy review: the
    # `score DESC, __name__ DESC` entry stopped the first deploy at this step)
    assert len(indexes) > 5 and refused == []


@pytest.mark.parametrize(("orders", "needed"), [
    ([("score", "DESCENDING"), ("__name__", "DESCENDING")], False),
    ([("score", "DESCENDING"), ("__name__", "ASCENDING")], True),
    ([("score", "DESCENDING")], False),
    ([("stage_since", "DESCENDING"), ("score", "DESCENDING")], True)])
def test_a_single_field_order_with_its_tie_breaker_needs_no_composite_index(
        orders: list[tuple[str, str]], needed: bool) -> None:
    # GIVEN an unfiltered query ordered this way WHEN checked THEN only two ordered fields,
    # or `__name__` against the field's direction, need a composite index
    assert needs_composite([], orders) is needed

