"""Who may link a visitor key to a lead, on every adapter (memory, SQLite, Firestore).

A security review of the tracking path: a public client key re-pointed a `userId` linked
to another lead (so the site's later orders for it went to a stranger), an erased address
was stored again in a visitor link, and with a captcha required a client `identify` still
created leads with profile points. Each test failed before its fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from builders import form
from conftest import NOW

from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.domain.visitors import visitor_key
from leadscore.service.erasure import erase_address
from leadscore.service.visitors import join_visitor
from leadscore.service.writes import apply_events
from leadscore.store.port import VisitorLink
from leadscore.tracking.mapping import Refusal

from .conftest import CLIENT_KEY, ORIGIN, client_for, track_settings
from .helpers import KEEP, identify, mapped, page, send

DANA, MALLORY = "dana.kim@northwind-analytics.com", "mallory@evil-example.net"
DANA_LEAD, MALLORY_LEAD = lead_id_for(DANA), lead_id_for(MALLORY)


def _order(user: str, mid: str) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "Order Completed", "messageId": mid,
            "properties": {"order_id": "o-77", "revenue": 1250, "currency": "EUR"}}


def _with_form(store: Any, rules: Rules, email: str, at: Any, **profile: Any) -> None:
    apply_events(store, lead_id_for(email), email,
                 [form(email, f"f-{at.isoformat()}", at, kind="demo_request", **profile)],
                 rules, at)


def test_a_client_key_cannot_repoint_a_user_id_linked_to_another_lead(store: Any,
                                                                     rules: Rules) -> None:
    # GIVEN the site's backend (server key) identified user-1842 as Dana
    send(store, rules, [identify(None, DANA, NOW - timedelta(hours=2), "i1", user="user-1842")],
         NOW)
    # WHEN a stranger with the public client key identifies user-1842 with another address,
    # alone (refused: client keys name visitors by anonymousId) or with an anonymous id
    with pytest.raises(Refusal, match="anonymousId"):
        mapped([identify(None, MALLORY, NOW, "i2", user="user-1842")], rules, NOW, "client")
    send(store, rules, [identify("stranger-1", MALLORY, NOW, "i3", user="user-1842")], NOW,
         caller="client")
    # THEN user-1842 still names Dana: the backend's order for it is hers
    link = store.visitor_link(visitor_key("user", "user-1842"))
    assert link is not None and link.lead_id == DANA_LEAD
    send(store, rules, [_order("user-1842", "o1")], NOW)
    assert store.get_lead(DANA_LEAD).counters.get("purchase_made") == 1
    assert store.get_lead(MALLORY_LEAD).counters.get("purchase_made") is None


def test_a_client_key_cannot_repoint_an_anonymous_id_known_as_someone_else(
        store: Any, rules: Rules) -> None:
    # GIVEN a browser that joined Dana's lead through her form
    _with_form(store, rules, DANA, NOW - timedelta(hours=1))
    join_visitor(store, store, rules, "browser-1", DANA, NOW, KEEP)
    # WHEN a client-key identify from that anonymous id names another address, and a form
    # with it names yet another
    send(store, rules, [identify("browser-1", MALLORY, NOW, "i2")], NOW, caller="client")
    _with_form(store, rules, "eve@evil-example.net", NOW)
    join_visitor(store, store, rules, "browser-1", "eve@evil-example.net", NOW, KEEP)
    # THEN the anonymous id still names Dana, and its next page view is hers
    link = store.visitor_link(visitor_key("anon", "browser-1"))
    assert link is not None and link.lead_id == DANA_LEAD
    send(store, rules, [page("browser-1", "/pricing", NOW, "p1")], NOW, caller="client")
    assert "pricing_page_visit" in [e.event["activity"] for e in store.history(DANA_LEAD)
                                    if e.event["type"] == "activity"]


def test_legitimate_flows_still_link(store: Any, rules: Rules) -> None:
    # GIVEN an anonymous visitor's page view, sent with the client key
    send(store, rules, [page("anon-c", "/pricing", NOW, "p1")], NOW, caller="client")
    # WHEN the visitor identifies with the client key (the browser also knows its userId)
    joined = send(store, rules, [identify("anon-c", DANA, NOW, "i1", user="user-9")], NOW,
                  caller="client")
    # THEN its view joins her lead, through its anonymous id (the client's userId is not read)
    assert joined.joined == 1
    assert store.visitor_link(visitor_key("anon", "anon-c")).lead_id == DANA_LEAD
    assert store.visitor_link(visitor_key("user", "user-9")) is None
    # AND the site's backend (server key) may link and re-link its own user ids
    send(store, rules, [identify(None, DANA, NOW, "i2", user="user-9")], NOW)
    send(store, rules, [identify(None, MALLORY, NOW, "i3", user="user-9")], NOW)
    assert store.visitor_link(visitor_key("user", "user-9")).lead_id == MALLORY_LEAD


def test_an_erased_address_gets_no_visitor_link(store: Any, rules: Rules) -> None:
    # GIVEN Dana's lead, with her browser joined, erased
    _with_form(store, rules, DANA, NOW - timedelta(hours=1))
    join_visitor(store, store, rules, "browser-d", DANA, NOW - timedelta(hours=1), KEEP)
    erase_address(store, DANA, NOW)
    # WHEN later anyone identifies her address, with the client key or a server key, and
    # the client's browser views a page
    later = NOW + timedelta(minutes=10)
    send(store, rules, [identify("stranger-1", DANA, later, "i1")], later, caller="client")
    send(store, rules, [page("stranger-1", "/pricing", later, "p1")], later, caller="client")
    send(store, rules, [identify("stranger-2", DANA, later, "i2", user="u-d")], later)
    # THEN no visitor link names her and no lead is made: her address is stored nowhere
    for key in (visitor_key("anon", "stranger-1"), visitor_key("anon", "stranger-2"),
                visitor_key("user", "u-d"), visitor_key("anon", "browser-d")):
        assert store.visitor_link(key) is None
    assert store.get_lead(DANA_LEAD) is None
    stored = store.visitor_events(visitor_key("anon", "stranger-1"))
    assert len(stored) == 1 and DANA not in json.dumps(stored[0].event)
    # AND when she submits a form later (her consent), the new lead takes her browser
    again = NOW + timedelta(hours=1)
    _with_form(store, rules, DANA, again)
    join_visitor(store, store, rules, "stranger-1", DANA, again, KEEP)
    assert store.visitor_link(visitor_key("anon", "stranger-1")).lead_id == DANA_LEAD
    assert "pricing_page_visit" in [e.event.get("activity") for e in store.history(DANA_LEAD)]


def test_a_link_that_raced_an_erasure_is_not_renewed(store: Any, rules: Rules) -> None:
    # GIVEN Dana erased, and a link to her lead that a request racing the erasure wrote,
    # with less than half its time left
    _with_form(store, rules, DANA, NOW - timedelta(hours=1))
    erase_address(store, DANA, NOW)
    key, ends = visitor_key("anon", "raced"), NOW + timedelta(days=1)
    store.put_visitor_link(VisitorLink(key=key, lead_id=DANA_LEAD, email=DANA, expires_at=ends))
    # WHEN that browser views a page
    later = NOW + timedelta(minutes=10)
    send(store, rules, [page("raced", "/", later, "p1")], later, caller="client")
    # THEN the link keeps its end (it expires, with her address), and no lead is made
    link = store.visitor_link(key)
    assert link is not None and link.expires_at == ends
    assert store.get_lead(DANA_LEAD) is None


@pytest.fixture
def captcha_app(store: Any) -> Iterator[Container]:
    built = Container(track_settings(captcha_secret="turnstile-secret"), store=store,
                      clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def _client_identify(anon: str, traits: dict[str, Any]) -> Any:
    body = {"writeKey": CLIENT_KEY, "anonymousId": anon, "traits": traits}
    return client_for("track").post("/v1/identify", data=json.dumps(body),
                                    headers={"Origin": ORIGIN}, content_type="text/plain")


def test_with_a_captcha_a_client_identify_creates_no_lead_and_sets_no_profile(
        captcha_app: Container, rules: Rules) -> None:
    store = captcha_app.store
    # WHEN forms need a captcha and a client key identifies an address that has no lead
    answer = _client_identify("bot-1", {"email": MALLORY, "job_title": "CEO",
                                        "company_size": "5000"})
    # THEN it is kept as the visitor's anonymous activity: no lead, no link, no profile
    assert answer.status_code == 200
    assert store.get_lead(MALLORY_LEAD) is None
    assert store.visitor_link(visitor_key("anon", "bot-1")) is None
    stored = store.visitor_events(visitor_key("anon", "bot-1"))
    assert [e.event["profile"] for e in stored] == [{}]
    # GIVEN a lead that exists (its form passed the captcha)
    _with_form(store, rules, DANA, NOW - timedelta(hours=1), job_title="Analyst")
    # WHEN the client key identifies a browser with its address and other traits
    assert _client_identify("browser-2", {"email": DANA, "job_title": "CEO"}).status_code == 200
    # THEN the browser joins the lead, whose profile stays as the form set it
    assert store.visitor_link(visitor_key("anon", "browser-2")).lead_id == DANA_LEAD
    assert store.get_lead(DANA_LEAD).profile.get("job_title") == "Analyst"
