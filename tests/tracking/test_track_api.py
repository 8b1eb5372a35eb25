"""The `track` function through the functions-framework's test client, on SQLite and the
Firestore emulator: Segment's HTTP Tracking API semantics, write keys, CORS and refusals.

Message shapes follow Segment's HTTP Tracking API documentation (segment.com/docs/
connections/sources/catalog/libraries/server/http-api/)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW

from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.tracking import snippet

from .conftest import CLIENT_KEY, ORIGIN, SERVER_KEY, basic, client_for

EMAIL = "dana.kim@northwind-analytics.com"
LEAD = lead_id_for(EMAIL)


def post(path: str, body: Any, headers: dict[str, str] | None = None,
         content_type: str = "application/json") -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client_for("track").post(path, data=data, headers=headers or {},
                                    content_type=content_type)


def iso(moment: Any) -> str:
    return str(moment.isoformat())


def test_identify_then_track_and_page_reach_the_lead(track_app: Container) -> None:
    # GIVEN a server write key
    auth = basic(SERVER_KEY)
    # WHEN a backend identifies a user with an address, then tracks and pages by userId only
    r1 = post("/v1/identify", {"userId": "u-1842", "messageId": "m-1",
                               "traits": {"email": EMAIL, "title": "CTO",
                                          "company": "Northwind"},
                               "timestamp": iso(NOW - timedelta(hours=2))}, auth)
    r2 = post("/v1/track", {"userId": "u-1842", "event": "Demo Requested", "messageId": "m-2",
                            "timestamp": iso(NOW - timedelta(hours=1))}, auth)
    r3 = post("/v1/page", {"userId": "u-1842", "name": "Pricing", "messageId": "m-3",
                           "properties": {"path": "/pricing/teams"}}, auth)
    # THEN all are accepted and the lead shows the demo request and the pricing visit
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200]
    assert r1.get_json() == {"success": True, "accepted": 1, "refused": []}
    lead = track_app.store.get_lead(LEAD)
    assert lead is not None and lead.profile["job_title"] == "CTO"
    kinds = [e.event["activity"] for e in track_app.store.history(LEAD)]
    assert kinds == ["identified", "demo_requested", "pricing_page_visit"]
    assert lead.score == pytest.approx(45 + 10 + 10, abs=0.1)  # demo, pricing, CTO title


@pytest.mark.parametrize("url", ["http://[x", "https://[::1/pricing"])
def test_a_page_url_python_cannot_split_is_a_page_view_of_the_site_root(
        track_app: Container, url: str) -> None:
    # GIVEN a known user, and a page call whose only location is a URL Python's urlsplit
    # refuses (an unclosed IPv6 host)
    auth = basic(SERVER_KEY)
    post("/v1/identify", {"userId": "u-7", "messageId": "m-i", "traits": {"email": EMAIL}}, auth)
    # WHEN it is tracked
    answer = post("/v1/page", {"userId": "u-7", "messageId": "m-p",
                               "properties": {"url": url}}, auth)
    # THEN it is accepted (never a 5xx the library would retry) and counts as a visit of
    # the site's root (no path of a page rule can be read from it)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["accepted"] == 1
    visits = {e.event["idempotency_key"]: e.event["activity"]
              for e in track_app.store.history(LEAD)}
    assert visits["m-p"] == "website_visit"


def test_short_paths_and_text_plain_bodies_work_like_the_browser_library(
        track_app: Container) -> None:
    # GIVEN the browser library's short path and text/plain body with writeKey inside
    body = {"writeKey": CLIENT_KEY, "anonymousId": "a-77", "messageId": "m-t1",
            "properties": {"path": "/product/api"}}
    # WHEN it posts from an allowed origin
    r = post("/v1/p", body, {"Origin": ORIGIN}, content_type="text/plain")
    # THEN it is accepted, and the answer allows that origin
    assert r.status_code == 200, r.get_json()
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_message_id_deduplicates_redeliveries(track_app: Container) -> None:
    msg = {"userId": "u-9", "messageId": "dup-1", "event": "Trial Started",
           "context": {"traits": {"email": EMAIL}}}
    for _ in range(3):  # a library retrying after a timeout
        assert post("/v1/track", msg, basic(SERVER_KEY)).status_code == 200
    entries = track_app.store.history(LEAD)
    assert [e.event["activity"] for e in entries] == ["trial_started"]


def test_clock_skew_is_corrected_with_sent_at(track_app: Container) -> None:
    # GIVEN a device whose clock is 3 hours fast: it stamped the event and the sending alike
    fast = NOW + timedelta(hours=3)
    msg = {"userId": "u-5", "messageId": "skew-1", "event": "Webinar Attended",
           "context": {"traits": {"email": EMAIL}},
           "originalTimestamp": iso(fast - timedelta(minutes=10)), "sentAt": iso(fast)}
    # WHEN it arrives now
    assert post("/v1/track", msg, basic(SERVER_KEY)).status_code == 200
    # THEN the event is dated receivedAt - (sentAt - originalTimestamp)
    (entry,) = track_app.store.history(LEAD)
    assert entry.at == NOW - timedelta(minutes=10)


def test_historical_timestamps_from_server_keys_are_kept(track_app: Container) -> None:
    when = NOW - timedelta(days=30)
    msg = {"userId": "u-5", "messageId": "old-1", "event": "Webinar Attended",
           "context": {"traits": {"email": EMAIL}}, "timestamp": iso(when)}
    assert post("/v1/track", msg, basic(SERVER_KEY)).status_code == 200
    assert track_app.store.history(LEAD)[0].at == when


def test_a_batch_with_bad_messages_answers_200_and_lists_them(track_app: Container) -> None:
    # GIVEN a batch of five: two good, one without any id, one future, one not an object
    batch = [
        {"type": "track", "userId": "u-1", "event": "Trial Started", "messageId": "b-1",
         "context": {"traits": {"email": EMAIL}}},
        {"type": "track", "event": "Trial Started", "messageId": "b-2"},
        {"type": "page", "userId": "u-1", "messageId": "b-3",
         "timestamp": iso(NOW + timedelta(days=2))},
        "not a message",
        {"type": "page", "userId": "u-1", "messageId": "b-5", "properties": {"path": "/"}},
    ]
    # WHEN it is posted with the batch short path
    r = post("/v1/b", {"batch": batch, "sentAt": iso(NOW)}, basic(SERVER_KEY))
    # THEN 200, with the refused ones named by index, and the good ones written
    assert r.status_code == 200
    body = r.get_json()
    assert body["accepted"] == 2 and [x["index"] for x in body["refused"]] == [1, 2, 3]
    assert "userId or anonymousId" in body["refused"][0]["problem"]
    assert "future" in body["refused"][1]["problem"]
    assert len(track_app.store.history(LEAD)) == 2


def test_a_null_in_a_batch_is_refused_alone_and_the_rest_count(track_app: Container) -> None:
    # GIVEN a batch of a good message and a null (an audit found the whole batch refused
    # with 422, so the browser library dropped the good message too)
    batch = [{"type": "track", "userId": "u-1", "event": "Trial Started", "messageId": "n-1",
              "context": {"traits": {"email": EMAIL}}}, None]
    # WHEN it is posted
    r = post("/v1/batch", {"batch": batch, "sentAt": iso(NOW)}, basic(SERVER_KEY))
    # THEN 200: the good one is written and the null listed by its index
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["accepted"] == 1 and [x["index"] for x in r.get_json()["refused"]] == [1]
    assert len(track_app.store.history(LEAD)) == 1


@pytest.mark.parametrize(("text", "accepted"), [("\u00e9" * 6000, True), ("\u65e5" * 6000, True),
                                                ("\u00e9" * 16500, False)])
def test_the_32_kb_message_limit_counts_utf8_bytes(track_app: Container, text: str,
                                                   accepted: bool) -> None:
    # GIVEN a message whose property holds 12 KB or 18 KB of accented or Japanese letters
    # (valid: Segment's limit is 32 KB), or 33 KB of them (over it)
    message = {"userId": "u-1", "event": "Trial Started", "messageId": f"u-{len(text)}",
               "properties": {"note": text}, "context": {"traits": {"email": EMAIL}}}
    # WHEN it is posted as a browser's JSON.stringify sends it (UTF-8, no \u escapes)
    # THEN only the one over 32 KB in UTF-8 is refused
    r = post("/v1/track", json.dumps(message, ensure_ascii=False).encode(), basic(SERVER_KEY))
    assert (r.status_code == 200) is accepted, r.get_json()
    if not accepted:  # by the body's limit (one message's body is capped at 32 KB too)
        assert r.status_code == 413 and "32768 bytes" in r.get_json()["message"]


def test_a_single_bad_message_is_400(track_app: Container) -> None:
    r = post("/v1/track", {"event": "Trial Started"}, basic(SERVER_KEY))
    assert r.status_code == 400 and "userId or anonymousId" in r.get_json()["message"]


@pytest.mark.parametrize("headers", [{}, basic("wrong-key"), {"X-Write-Key": "nope"}])
def test_missing_or_wrong_write_key_is_401(track_app: Container,
                                           headers: dict[str, str]) -> None:
    r = post("/v1/track", {"userId": "u", "event": "Trial Started"}, headers)
    assert r.status_code == 401


def test_rotated_server_key_and_header_key_work(track_app: Container) -> None:
    msg = {"userId": "u", "event": "Trial Started"}
    assert post("/v1/track", msg, basic("srv_old_1")).status_code == 200
    assert post("/v1/track", msg, {"X-Write-Key": SERVER_KEY}).status_code == 200


@pytest.mark.parametrize("call", ["group", "alias", "screen", "g", "a"])
def test_client_key_on_a_server_only_call_is_403(track_app: Container, call: str) -> None:
    body = {"writeKey": CLIENT_KEY, "userId": "u", "previousId": "a", "groupId": "g"}
    r = post(f"/v1/{call}", body, {"Origin": ORIGIN})
    assert r.status_code == 403


def test_client_key_from_a_disallowed_origin_gets_no_cors_and_no_write(
        track_app: Container) -> None:
    body = {"writeKey": CLIENT_KEY, "anonymousId": "a-1", "event": "Trial Started",
            "context": {"traits": {"email": EMAIL}}}
    r = post("/v1/t", body, {"Origin": "https://evil.example.net"}, content_type="text/plain")
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers
    assert track_app.store.get_lead(LEAD) is None


def test_preflight_allows_listed_origins_only(track_app: Container) -> None:
    client = client_for("track")
    ok = client.options("/v1/t", headers={"Origin": ORIGIN,
                                          "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    bad = client.options("/v1/t", headers={"Origin": "https://evil.example.net"})
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers


def test_client_keys_only_send_listed_events_and_no_purchases(track_app: Container) -> None:
    # GIVEN a client key: its event names come from the rules' website events
    def send(event: str, **props: Any) -> Any:
        return post("/v1/b", {"writeKey": CLIENT_KEY, "batch": [
            {"type": "track", "anonymousId": "a-2", "event": event, "properties": props}]},
            {"Origin": ORIGIN}, content_type="text/plain")

    # THEN a listed name is accepted, others and semantic e-commerce events are refused
    assert send("Demo Requested").get_json()["refused"] == []
    assert "not allowed" in send("Anything Else").get_json()["refused"][0]["problem"]
    refused = send("Order Completed", order_id="o-1", revenue=99).get_json()["refused"]
    assert "not allowed" in refused[0]["problem"]


def test_client_identify_carries_only_form_profile_fields(track_app: Container) -> None:
    body = {"writeKey": CLIENT_KEY, "anonymousId": "a-3",
            "traits": {"email": EMAIL, "company": "Northwind", "lifetime_value": 99999,
                       "stage": "customer"}}
    assert post("/v1/i", body, {"Origin": ORIGIN}, "text/plain").status_code == 200
    lead = track_app.store.get_lead(LEAD)
    assert lead is not None and lead.profile == {"company": "Northwind"}
    assert lead.stage == "lead"


def test_server_keys_send_semantic_email_and_order_events(track_app: Container) -> None:
    ctx = {"traits": {"email": EMAIL}}
    batch = [
        {"type": "track", "userId": "u", "event": "Email Opened", "messageId": "e-1",
         "context": ctx, "properties": {"email_id": "nl-2026-11"}},
        {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "o-1",
         "context": ctx, "properties": {"order_id": "50314b8e", "revenue": "249.90",
                                        "currency": "EUR"}},
    ]
    r = post("/v1/batch", {"batch": batch}, basic(SERVER_KEY))
    assert r.get_json()["refused"] == []
    lead = track_app.store.get_lead(LEAD)
    assert lead is not None and lead.stage == "customer" and lead.last_open_at is not None


def test_invalid_json_is_400_and_oversized_is_413(track_app: Container) -> None:
    assert post("/v1/track", b"{not json", basic(SERVER_KEY)).status_code == 400
    big = {"userId": "u", "event": "Trial Started", "properties": {"x": "y" * 40_000}}
    assert post("/v1/track", big, basic(SERVER_KEY)).status_code == 413
    huge = {"batch": [{"type": "track", "userId": "u", "event": "E", "properties":
                       {"x": "y" * 1000}}] * 600}
    assert post("/v1/batch", huge, basic(SERVER_KEY)).status_code == 413


def test_a_batch_over_2500_events_is_refused(track_app: Container) -> None:
    batch = [{"type": "page", "anonymousId": "a"}] * 2501
    assert post("/v1/batch", {"batch": batch}, basic(SERVER_KEY)).status_code == 422


def test_unknown_call_is_404(track_app: Container) -> None:
    assert post("/v1/nope", {}, basic(SERVER_KEY)).status_code == 404


def test_the_snippet_is_served_small_cacheable_and_versioned(track_app: Container) -> None:
    client = client_for("track")
    r = client.get("/leadscore.js")
    assert r.status_code == 200 and r.mimetype == "application/javascript"
    assert "max-age" in r.headers["Cache-Control"]
    assert len(gzip.compress(r.data, 9)) <= 2048
    pinned = client.get(f"/leadscore-{snippet.version()}.js")
    assert "immutable" in pinned.headers["Cache-Control"]
    again = client.get("/leadscore.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/leadscore-0000.js").status_code == 404


def test_gzip_bodies_are_inflated_within_the_limit(track_app: Container) -> None:
    msg = {"userId": "u", "event": "Trial Started", "messageId": "gz-1",
           "context": {"traits": {"email": EMAIL}}}
    headers = {**basic(SERVER_KEY), "Content-Encoding": "gzip"}
    ok = post("/v1/track", gzip.compress(json.dumps(msg).encode()), headers)
    assert ok.status_code == 200 and track_app.store.get_lead(LEAD) is not None
    bomb = gzip.compress(json.dumps({**msg, "properties": {"x": "y" * 200_000}}).encode())
    assert len(bomb) < 32 * 1024
    assert post("/v1/track", bomb, headers).status_code == 413


def test_the_body_guard_lets_a_full_size_batch_through() -> None:
    # the track function's WSGI body limit is Segment's batch limit, not the small default
    from leadscore.tracking.wire import MAX_BATCH_BYTES
    from leadscore.wsgi_guard import limit_for

    assert limit_for("track") == MAX_BATCH_BYTES


def test_refusals_tell_the_caller_what_was_sent_but_never_log_it(
        track_app: Container, capsys: pytest.CaptureFixture[str]) -> None:
    name = "ZzqAlice ZzqSmith"
    # GIVEN a path, an event's name and a made-up batch field carrying a person's name
    capsys.readouterr()
    answers = [
        post(f"/v1/{name.replace(' ', '')}", {"anonymousId": "a-1", "type": "page"},
             basic(SERVER_KEY)),
        post("/v1/track", {"anonymousId": "a-1", "event": f"{name} clicked",
                           "messageId": "m-1"},
             {**basic(CLIENT_KEY), "Origin": ORIGIN}),
        post("/v1/batch", {"batch": [], name: 1}, basic(SERVER_KEY)),
        client_for("track").get(f"/v1/{name.replace(' ', '')}.js"),
    ]
    # WHEN they are refused THEN each is a 4xx, the event's refusal names it to the caller,
    # and no log line holds the name
    assert all(400 <= a.status_code < 500 for a in answers), [a.status_code for a in answers]
    assert name in answers[1].get_json()["message"]
    out = capsys.readouterr()
    assert "ZzqAlice" not in out.out + out.err and "ZzqSmith" not in out.out + out.err
