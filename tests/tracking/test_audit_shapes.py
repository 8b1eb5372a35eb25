"""Message shapes real SDKs send (an audit with Segment's and RudderStack's libraries, session
9), through the functions-framework test client on every durable store.

Sources: Segment's spec (segment.com/docs/connections/spec/group/: a group's traits are the
company's), rudder-sdk-js 1.x (`userId: ""` for an anonymous visitor, the `AnonymousId`
header), rudder-sdk-python 2.1.9 (identify puts its traits in `context.traits` only)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.container import Container
from leadscore.domain.identity import lead_id_for

from .conftest import CLIENT_KEY, ORIGIN, SERVER_KEY, basic, client_for

EMAIL = "dana.kim@northwind-analytics.com"
LEAD = lead_id_for(EMAIL)


def post(path: str, body: Any, headers: dict[str, str] | None = None,
         content_type: str = "application/json") -> Any:
    return client_for("track").post(path, data=json.dumps(body).encode(),
                                    headers=headers or {}, content_type=content_type)


def _activities(app: Container, lead: str = LEAD) -> list[str]:
    return [e.event.get("activity", e.kind) for e in app.store.history(lead)]


def test_a_group_s_email_trait_is_the_company_s_not_the_user_s(track_app: Container) -> None:
    # GIVEN a user known only by userId, who viewed the pricing page
    auth = basic(SERVER_KEY)
    post("/v1/identify", {"userId": "u-g1", "messageId": "g1", "traits": {"name": "Dana"}},
         auth)
    post("/v1/page", {"userId": "u-g1", "messageId": "g2", "properties": {"path": "/pricing"}},
         auth)
    # WHEN the user is put in a group whose traits carry the company's billing address
    answer = post("/v1/group", {"userId": "u-g1", "groupId": "acme-inc", "messageId": "g3",
                                "traits": {"name": "Acme", "email": "billing@acme.example"}},
                  auth)
    post("/v1/page", {"userId": "u-g1", "messageId": "g4", "properties": {"path": "/pricing"}},
         auth)
    # THEN the group is accepted, and the billing address is nobody's lead
    assert answer.status_code == 200
    assert track_app.store.get_lead(lead_id_for("billing@acme.example")) is None
    # AND a group's context.traits (the user's, as on any call) still name the user
    post("/v1/group", {"userId": "u-g1", "groupId": "acme-inc", "messageId": "g5",
                       "traits": {"email": "billing@acme.example"},
                       "context": {"traits": {"email": EMAIL}}}, auth)
    assert sorted(_activities(track_app)) == ["identified", "pricing_page_visit",
                                              "pricing_page_visit"]


def test_rudderstack_js_empty_user_id_means_an_anonymous_visitor(
        track_app: Container) -> None:
    # GIVEN rudder-sdk-js 1.x's page of an anonymous visitor: "userId": ""
    message = {"channel": "web", "type": "page", "messageId": "rjs-1",
               "anonymousId": "rjs-anon", "userId": "", "integrations": {"All": True},
               "originalTimestamp": (NOW - timedelta(seconds=1)).isoformat(),
               "sentAt": NOW.isoformat(),
               "context": {"traits": {}, "page": {"path": "/pricing"}},
               "properties": {"path": "/pricing"}}
    browser = {**basic(CLIENT_KEY), "Origin": ORIGIN}
    # WHEN it is sent singly with the client key, and in a batch with a server key (and
    # with a blank userId)
    single = post("/v1/page", message, browser, "text/plain;charset=UTF-8")
    batch = post("/v1/batch", {"batch": [{**message, "messageId": "rjs-2", "userId": "  "}]},
                 basic(SERVER_KEY))
    # THEN both are accepted as anonymous page views of that visitor
    assert single.status_code == 200, single.get_json()
    assert batch.get_json()["refused"] == [] and batch.get_json()["accepted"] == 1
    # AND they join the visitor's lead when it identifies
    post("/v1/identify", {"anonymousId": "rjs-anon", "userId": "", "messageId": "rjs-3",
                          "traits": {"email": EMAIL}}, basic(SERVER_KEY))
    assert sorted(_activities(track_app)) == ["identified", "pricing_page_visit",
                                              "pricing_page_visit"]


def test_the_preflight_allows_rudderstack_s_anonymous_id_header(track_app: Container) -> None:
    # WHEN a browser asks whether rudder-sdk-js may send its AnonymousId header
    answer = client_for("track").options("/v1/page", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization,anonymousid"})
    # THEN the preflight allows it
    assert answer.status_code == 204
    allowed = {h.strip().lower()
               for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization", "anonymousid"} <= allowed


def test_rudderstack_identify_traits_in_context_set_the_profile(track_app: Container) -> None:
    # GIVEN RudderStack's identify: the traits in context.traits only
    auth = basic(SERVER_KEY)
    answer = post("/v1/identify", {"userId": "u-rs", "messageId": "rs-i1", "context": {
        "traits": {"email": EMAIL, "title": "CTO", "company": "Northwind"}}}, auth)
    # THEN they set the profile as top-level traits would
    assert answer.status_code == 200
    lead = track_app.store.get_lead(LEAD)
    assert lead is not None and lead.profile["job_title"] == "CTO"
    assert lead.profile["company"] == "Northwind"
    # AND when both carry a trait, the top-level one wins
    other = "li.wei@contoso-retail.com"
    post("/v1/identify", {"userId": "u-rs2", "messageId": "rs-i2", "traits": {"title": "CEO"},
                          "context": {"traits": {"email": other, "title": "Intern"}}}, auth)
    assert track_app.store.get_lead(lead_id_for(other)).profile["job_title"] == "CEO"


def test_track_error_bodies_carry_a_code(track_app: Container) -> None:
    # WHEN a wrong key is sent, and a bad message
    wrong = post("/v1/track", {"userId": "u", "event": "x"}, basic("wrong-key"))
    bad = post("/v1/track", {"userId": "u"}, basic(SERVER_KEY))
    # THEN each error body names its error as code too (RudderStack's SDK reads it)
    for answer, status in ((wrong, 401), (bad, 400)):
        body = answer.get_json()
        assert answer.status_code == status
        assert body["code"] == body["error"] and body["message"]
