"""Messages without ids, batch context, relayed times and bad side traits (an audit with
Segment's and RudderStack's SDKs, session 9), through the functions-framework test client on
every durable store. Shapes from Segment's HTTP Tracking API and spec pages
(segment.com/docs/connections/sources/catalog/libraries/server/http-api/#batch,
segment.com/docs/connections/spec/common/#timestamps)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import NOW

from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for

from .conftest import CLIENT_KEY, ORIGIN, SERVER_KEY, basic, client_for, track_settings

EMAIL = "sam.ortiz@fabrikam-labs.com"
LEAD = lead_id_for(EMAIL)
EVENTS = Path(__file__).resolve().parents[1] / "events" / "tracking"


def post(path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client_for("track").post(path, data=json.dumps(body).encode(),
                                    headers=headers or basic(SERVER_KEY),
                                    content_type="application/json")


def _history(app: Container) -> list[tuple[str, datetime]]:
    return sorted((e.event.get("activity", e.kind), e.at) for e in app.store.history(LEAD))


def _identified(user: str) -> None:
    post("/v1/identify", {"userId": user, "messageId": f"id-{user}", "traits": {"email": EMAIL},
                          "timestamp": (NOW - timedelta(days=1)).isoformat()})


def test_an_id_less_message_counts_once_singly_and_in_a_batch(track_app: Container) -> None:
    # GIVEN a known user, and a page call without messageId (a sender that sets none)
    _identified("u-nm")
    view = {"userId": "u-nm", "properties": {"path": "/pricing"},
            "timestamp": (NOW - timedelta(hours=1)).isoformat()}
    # WHEN it is sent singly, then (a retry) inside a batch
    post("/v1/page", view)
    post("/v1/batch", {"batch": [{**view, "type": "page"}]})
    # THEN it counts once
    assert [a for a, _ in _history(track_app)].count("pricing_page_visit") == 1


def test_two_distinct_id_less_views_count_twice(durable_store: Any) -> None:
    # GIVEN a known user, and a clock that moves a second per request
    moments = (NOW + timedelta(seconds=n) for n in itertools.count())
    track_app = Container(track_settings(), store=durable_store, clock=lambda: next(moments))
    install(track_app)
    try:
        _identified("u-nm2")
        # WHEN two page views without messageId and without any time arrive (two requests)
        view = {"userId": "u-nm2", "properties": {"path": "/pricing"}}
        post("/v1/page", view)
        post("/v1/page", view)
        # AND two that differ only in their timestamp
        for minutes in (5, 6):
            post("/v1/page", {**view,
                                "timestamp": (NOW - timedelta(minutes=minutes)).isoformat()})
        # THEN all four are views (without an id or a time a view cannot be told from its
        # retry: each request's copy counts, as documented in mapping.message_id)
        assert [a for a, _ in _history(track_app)].count("pricing_page_visit") == 4
    finally:
        install(None)


def test_a_batch_s_context_applies_to_each_of_its_calls(track_app: Container) -> None:
    # GIVEN a batch whose context names the person and the page, and whose second call has
    # a context of its own (its keys win)
    batch = {"context": {"traits": {"email": EMAIL}, "page": {"path": "/pricing"}},
             "batch": [{"type": "page", "anonymousId": "bc-anon", "messageId": "bc-1"},
                       {"type": "page", "anonymousId": "bc-anon", "messageId": "bc-2",
                        "context": {"page": {"path": "/case-studies/acme"}}}]}
    # WHEN it is sent
    answer = post("/v1/batch", batch)
    # THEN both calls are the person's, each on its own page
    assert answer.get_json()["accepted"] == 2
    assert [a for a, _ in _history(track_app)] == ["case_study_visit", "pricing_page_visit"]


def test_a_relayed_message_is_dated_by_segment_s_timestamp(track_app: Container) -> None:
    # GIVEN a track call as Segment's Webhooks destination relays it: received by Segment
    # three days ago (receivedAt) with its corrected timestamp, sentAt of that time
    relayed = {k: v for k, v in json.loads((EVENTS / "segment_webhook_track.json").read_text())
               .items() if not k.startswith("_")}
    # WHEN it reaches us now with a server key
    assert post("/v1/track", relayed).status_code == 200
    # THEN it is dated by its timestamp, not by our receipt
    assert _history(track_app) == [
        ("demo_requested", datetime.fromisoformat(relayed["timestamp"]))]


def test_a_client_key_cannot_backdate_with_received_at(track_app: Container) -> None:
    # GIVEN the browser library's page call claiming Segment received it two days ago
    at = NOW - timedelta(days=2)
    page = {"anonymousId": "ra-anon", "messageId": "ra-1", "timestamp": at.isoformat(),
            "receivedAt": at.isoformat(), "sentAt": NOW.isoformat(),
            "context": {"traits": {"email": EMAIL}}, "properties": {"path": "/pricing"}}
    # WHEN it comes with the public client key
    answer = post("/v1/page", page, {**basic(CLIENT_KEY), "Origin": ORIGIN})
    # THEN its time is corrected against our receipt, as before (a day at most back)
    assert answer.status_code == 400
    assert "older than a day" in answer.get_json()["message"]


def test_a_bad_context_email_leaves_the_event_its_visitor_s(track_app: Container) -> None:
    # GIVEN an anonymous visitor known as the person
    post("/v1/identify", {"anonymousId": "ce-anon", "messageId": "ce-i",
                          "traits": {"email": EMAIL}})
    # WHEN a track call carries a context trait email of "n/a" (a form's placeholder)
    answer = post("/v1/track", {"anonymousId": "ce-anon", "event": "Demo Requested",
                                "messageId": "ce-t", "context": {"traits": {"email": "n/a"}}})
    # THEN the event is accepted and is the visitor's
    assert answer.status_code == 200, answer.get_json()
    assert [a for a, _ in _history(track_app)] == ["demo_requested", "identified"]
    # AND an identify whose own traits name a bad address is still refused
    bad = post("/v1/identify", {"anonymousId": "ce-anon", "messageId": "ce-i2",
                                "traits": {"email": "n/a"}})
    assert bad.status_code == 400


def test_a_long_page_name_is_cut_not_refused(track_app: Container) -> None:
    _identified("u-ln")
    # WHEN a page's name is over 200 characters
    answer = post("/v1/page", {"userId": "u-ln", "messageId": "ln-1", "name": "x" * 450,
                               "properties": {"path": "/product/a"}})
    # THEN the view counts (its name, only a label, is cut)
    assert answer.status_code == 200, answer.get_json()
    assert sorted(a for a, _ in _history(track_app)) == ["identified", "product_page_visit"]


def test_a_screen_name_matches_page_paths_in_any_case(track_app: Container) -> None:
    _identified("u-sc")
    # WHEN a mobile app's screen is named "Pricing"
    answer = post("/v1/screen", {"userId": "u-sc", "messageId": "sc-1", "name": "Pricing"})
    # THEN it matches the /pricing* page rule (screen names are lower-cased as paths)
    assert answer.status_code == 200
    assert sorted(a for a, _ in _history(track_app)) == ["identified", "pricing_page_visit"]


def _order_event(event: str, mid: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u-shop", "event": event, "messageId": mid,
            "context": {"traits": {"email": EMAIL}},
            "timestamp": (NOW - timedelta(hours=1)).isoformat(), "properties": props}


def test_an_order_refunded_with_only_its_id_refunds_the_whole_order(
        track_app: Container) -> None:
    # GIVEN an order of 120.00 EUR in total (100.00 before shipping and tax)
    post("/v1/track", _order_event("Order Completed", "oc-1", order_id="o-9",
                                   revenue="100.00", total="120.00", currency="EUR"))
    order = track_app.store.orders_of(LEAD)["track:o-9"]
    # THEN its amount is its total, the basis refunds use too
    assert (order.amount_minor, order.currency) == (12000, "EUR")
    # WHEN Segment's full refund arrives: Order Refunded naming only the order (twice: a
    # retry)
    answers = [post("/v1/track", _order_event("Order Refunded", "or-1", order_id="o-9"))
               for _ in range(2)]
    # THEN it is accepted and refunds the whole order, once
    assert [a.status_code for a in answers] == [200, 200], answers[0].get_json()
    order = track_app.store.orders_of(LEAD)["track:o-9"]
    assert order.refunded_minor == 12000 and order.net_minor == 0
    assert "EUR" not in track_app.store.get_lead(LEAD).purchase_totals
    # AND a full refund of an order nobody recorded is refused, saying why
    unknown = post("/v1/track", _order_event("Order Refunded", "or-2", order_id="o-404"))
    assert unknown.status_code == 400
    assert "no paid order" in unknown.get_json()["message"]


def test_a_partial_refund_of_the_total_basis_leaves_the_rest(track_app: Container) -> None:
    # GIVEN an order of 120.00 EUR in total, and a refund of 20.00 of its total
    post("/v1/track", _order_event("Order Completed", "pc-1", order_id="o-10",
                                   revenue="100.00", total="120.00", currency="EUR"))
    post("/v1/track", _order_event("Order Refunded", "pr-1", order_id="o-10",
                                   total="20.00", currency="EUR"))
    # THEN 100.00 of it still counts
    assert track_app.store.get_lead(LEAD).purchase_totals["EUR"].net_minor == 10000
