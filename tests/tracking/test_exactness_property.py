"""The exactness property: any interleaving of anonymous events, identifications and
redeliveries gives the same lead as if the address had been known from the start."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from hypothesis import given
from hypothesis import strategies as st

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.domain.visitors import visitor_key
from leadscore.store.memory import MemoryStore
from leadscore.store.sqlite import SqliteStore

from .helpers import identify, page, send

EMAIL = "hugo.martin@fabrikam.fr"
PATHS = ["/", "/pricing", "/product/a", "/case-studies/b", "/blog/c"]
RULES = default_rules()


@st.composite
def histories(draw: Any) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The messages of 1-3 anonymous ids (each identified once), then a delivery order:
    a shuffled sequence of requests, some messages delivered twice."""
    visitors = draw(st.integers(1, 3))
    messages: list[dict[str, Any]] = []
    for v in range(visitors):
        for i in range(draw(st.integers(0, 6))):
            at = NOW - timedelta(hours=draw(st.integers(1, 24 * 20)))
            messages.append(page(f"anon-{v}", draw(st.sampled_from(PATHS)), at, f"p{v}-{i}"))
        at = NOW - timedelta(hours=draw(st.integers(0, 24 * 20)))
        messages.append(identify(f"anon-{v}", EMAIL, at, f"i{v}"))
    again = draw(st.lists(st.sampled_from(messages), max_size=4))
    order = draw(st.permutations(messages + again))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=4)))
    requests = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return messages, [r for r in requests if r]


def known_from_start(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "context": {"traits": {"email": EMAIL}}}


def picture(store: Any) -> tuple[tuple[Any, ...], dict[str, float]]:
    """What must be equal exactly, and the sums that may differ in their last bits (the
    same terms added in another order)."""
    lead = store.get_lead(lead_id_for(EMAIL))
    entries = [(e.entry_id, e.at, e.delta) for e in store.history(lead_id_for(EMAIL))]
    exact = (lead.stage, lead.counters, lead.cap_counts, lead.last_activity_at, entries)
    sums = {"score": lead.score, **{f"acc:{k}": v for k, v in lead.eng_acc.items()},
            **{f"cap:{k}": v for k, v in lead.cap_weights.items()}}
    return exact, sums


def new_store(kind: str, folder: str) -> Any:
    return MemoryStore() if kind == "memory" else SqliteStore(Path(folder) / "leads.db")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@given(story=histories())
def test_any_interleaving_equals_knowing_the_address_from_the_start(
        kind: str, story: tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]) -> None:
    messages, requests = story
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        # GIVEN the messages sent with the address known from the start
        reference = new_store(kind, a)
        send(reference, RULES, [known_from_start(m) for m in messages], NOW)
        # WHEN the same messages arrive anonymously, in any order, some twice
        anonymous = new_store(kind, b)
        for request in requests:
            send(anonymous, RULES, request, NOW)
        # THEN the lead is the same, and no visitor event is left waiting
        (exact, sums), (exact_ref, sums_ref) = picture(anonymous), picture(reference)
        assert exact == exact_ref
        assert sums == pytest.approx(sums_ref, rel=1e-9, abs=1e-9)
        assert all(anonymous.visitor_events(visitor_key("anon", f"anon-{v}")) == []
                   for v in range(3))
        if kind == "sqlite":
            reference.close()
            anonymous.close()
