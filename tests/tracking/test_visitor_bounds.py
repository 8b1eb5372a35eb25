"""Bounded visitor records and times out of range, on every adapter (memory, SQLite,
Firestore) and through the `track` function.

A security review of the tracking path: anonymous page views piled up without bound under
one anonymous id and one identify loaded them all (60,000 events: 524 MB), and extreme
`sentAt`/`timestamp` values made 500s (a batch with one such message failed whole, so the
browser library retried it forever). Each test failed before its fix."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW

from leadscore.container import Container
from leadscore.domain.identity import lead_id_for, ledger_key
from leadscore.domain.rules import Rules
from leadscore.domain.visitors import visitor_key
from leadscore.service import visitors
from leadscore.store.port import VisitorEvent
from leadscore.tracking.mapping import Refusal

from .conftest import CLIENT_KEY, ORIGIN, SERVER_KEY, basic, client_for
from .helpers import KEEP, identify, mapped, page, send

EMAIL = "ines.torres@acme-logistics.es"
LEAD = lead_id_for(EMAIL)
CAP, PAGE = 12, 5  # the real ones are 1,000 and 200: smaller here, the same logic


class Reads:
    """The store's visitor records as they are, noting how many events each read returned."""

    def __init__(self, store: Any) -> None:
        self.store, self.sizes = store, list[int]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def visitor_events(self, key: str, *limit: int) -> list[VisitorEvent]:
        got: list[VisitorEvent] = self.store.visitor_events(key, *limit)
        self.sizes.append(len(got))
        return got


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(visitors, "MAX_VISITOR_EVENTS", CAP)
    monkeypatch.setattr(visitors, "JOIN_PAGE", PAGE)


def _ledgers(store: Any, anon: str) -> set[str]:
    return {e.ledger_key for e in store.visitor_events(visitor_key("anon", anon))}


def test_the_real_bounds_are_sane() -> None:
    assert visitors.MAX_VISITOR_EVENTS == 1000 and visitors.JOIN_PAGE == 200


@pytest.mark.usefixtures("small")
def test_a_visitor_keeps_its_newest_events_and_joins_them_a_page_at_a_time(
        store: Any, rules: Rules) -> None:
    # GIVEN 17 anonymous page views of one visitor, one request a minute
    for i in range(17):
        at = NOW - timedelta(minutes=30 - i)
        send(store, rules, [page("anon-b", "/", at, f"p{i}")], at)
    # THEN only the 12 newest are kept
    assert _ledgers(store, "anon-b") == {ledger_key("track", f"p{i}") for i in range(5, 17)}
    # WHEN the visitor identifies
    reads = Reads(store)
    joined = send(store, rules, [identify("anon-b", EMAIL, NOW, "i1")], NOW, visitors=reads)
    # THEN all 12 join the lead, and no read loaded more than a page
    assert joined.joined == 12 and reads.sizes and max(reads.sizes) <= PAGE
    assert len(store.history(LEAD)) == 13 and _ledgers(store, "anon-b") == set()


@pytest.mark.usefixtures("small")
def test_one_batch_keeps_its_newest_events_and_pooled_visitors_move_a_page_at_a_time(
        store: Any, rules: Rules) -> None:
    # GIVEN one batch of 17 views from a laptop, and 8 from a phone
    send(store, rules, [page("laptop", "/", NOW - timedelta(minutes=40 - i), f"l{i}")
                        for i in range(17)], NOW - timedelta(minutes=10))
    assert _ledgers(store, "laptop") == {ledger_key("track", f"l{i}") for i in range(5, 17)}
    send(store, rules, [page("phone", "/", NOW - timedelta(minutes=9), f"f{i}")
                        for i in range(8)], NOW - timedelta(minutes=9))
    # WHEN a logged-in view names both with one user id (server key), then it is identified
    reads = Reads(store)
    send(store, rules, [page("laptop", "/", NOW - timedelta(minutes=2), "u1", user="u-7"),
                        page("phone", "/", NOW - timedelta(minutes=1), "u2", user="u-7")],
         NOW - timedelta(minutes=1), visitors=reads)
    joined = send(store, rules, [identify(None, EMAIL, NOW, "i1", user="u-7")], NOW,
                  visitors=reads)
    # THEN the pooled visitor kept at most 12 events and every read was at most a page
    assert joined.joined == 12 and max(reads.sizes) <= PAGE
    assert store.visitor_events(visitor_key("user", "u-7")) == []


@pytest.mark.parametrize("times", [
    {"sentAt": "9999-12-31T00:00:00Z", "originalTimestamp": "0001-01-01T00:00:00Z"},
    {"sentAt": "0001-01-01T00:00:00Z", "originalTimestamp": "9999-12-31T00:00:00Z"},
    {"timestamp": "0001-01-01T00:00:00+14:00"},
    {"timestamp": "9999-12-31T23:59:59-14:00"},
])
@pytest.mark.parametrize("caller", ["server", "client"])
def test_a_time_out_of_range_is_the_messages_own_refusal(rules: Rules, caller: str,
                                                         times: dict[str, str]) -> None:
    message = {"type": "page", "anonymousId": "a-1", "messageId": "m1", **times}
    with pytest.raises(Refusal, match=r"range|too far apart"):
        mapped([message], rules, NOW, caller)


def test_a_server_time_before_1970_is_refused(rules: Rules) -> None:
    # (a client key's `timestamp` without `sentAt` is not read: its events are dated now)
    message = {"type": "page", "anonymousId": "a-1", "timestamp": "0001-01-01T00:00:00Z"}
    with pytest.raises(Refusal, match="before 1970"):
        mapped([message], rules, NOW, "server")
    assert mapped([message], rules, NOW, "client")[0].event.occurred_at == NOW  # type: ignore[union-attr]


def test_extreme_times_answer_4xx_alone_and_are_listed_in_a_batch(track_app: Container
                                                                 ) -> None:
    post = client_for("track").post
    bad = {"sentAt": "9999-12-31T00:00:00Z", "originalTimestamp": "0001-01-01T00:00:00Z"}
    # WHEN a single message has times out of range (server key, then client key)
    single = post("/v1/track", data=json.dumps({"userId": "u", "event": "Demo Requested",
                                                "context": {"traits": {"email": EMAIL}},
                                                **bad}),
                  headers=basic(SERVER_KEY), content_type="application/json")
    client = post("/v1/p", data=json.dumps({"writeKey": CLIENT_KEY, "anonymousId": "a-2",
                                            "timestamp": "0001-01-01T00:00:00+14:00"}),
                  headers={"Origin": ORIGIN}, content_type="text/plain")
    # AND a batch holds one such message beside a good one
    batch = post("/v1/batch", data=json.dumps({"sentAt": "0001-01-01T00:00:00Z", "batch": [
        {"type": "track", "userId": "u", "event": "Demo Requested", "messageId": "bad",
         "originalTimestamp": "9999-12-31T00:00:00Z"},
        {"type": "identify", "userId": "u", "messageId": "good", "traits": {"email": EMAIL}},
    ]}), headers=basic(SERVER_KEY), content_type="application/json")
    # THEN the single ones are 400 naming the time and write nothing; the batch is 200,
    # lists the bad one and writes the good one
    assert single.status_code == 400 and "sentAt" in single.get_json()["message"]
    assert client.status_code == 400 and "timestamp" in client.get_json()["message"]
    assert batch.status_code == 200
    assert [(r["index"], r["messageId"]) for r in batch.get_json()["refused"]] == [(0, "bad")]
    assert [e.event["activity"] for e in track_app.store.history(LEAD)] == ["identified"]
    assert track_app.store.visitor_events(visitor_key("anon", "a-2")) == []


def test_a_stored_event_whose_time_cannot_be_read_is_skipped_on_joining(
        store: Any, rules: Rules) -> None:
    # GIVEN an anonymous view stored before times were checked: its zone puts it before year 1
    [view] = mapped([page("v-1", "/pricing", NOW, "p1")], rules, NOW)
    assert view.event is not None
    doc = {**view.event.model_dump(mode="json", exclude={"email"}),
           "occurred_at": "0001-01-01T00:00:00+14:00"}
    key = visitor_key("anon", "v-1")
    store.save_visitor_events([VisitorEvent(key=key, ledger_key="legacy", event=doc,
                                            expires_at=NOW + KEEP)])
    send(store, rules, [page("v-1", "/", NOW, "p2")], NOW)
    # WHEN the visitor identifies
    joined = send(store, rules, [identify("v-1", EMAIL, NOW, "i1")], NOW)
    # THEN the readable view joins, the unreadable one is dropped, and nothing is left over
    assert joined.joined == 1
    assert sorted(e.event["activity"] for e in store.history(LEAD)) == ["identified",
                                                                        "website_visit"]
    assert store.visitor_events(key) == []
