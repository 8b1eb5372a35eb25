"""Two people on one browser (a shared device): Segment's meaning of ids, on every store.

An `anonymousId` is a device and a `userId` a person (segment.com/docs/connections/spec/
identify/): a userId linked to a person stays that person's, a device identified by a second
user sends its later anonymous events to the second user, and no person's events or pooled
history move to another person, whatever order the calls come in."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules

from .helpers import identify, page, send

ALICE, BOB = "alice@shared.example", "bob@shared.example"


def _track(user: str, name: str, mid: str) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": name, "messageId": mid,
            "timestamp": (NOW - timedelta(minutes=5)).isoformat()}


def _activities(store: Any, email: str) -> list[str]:
    return sorted(e.event.get("activity", e.kind) for e in store.history(lead_id_for(email)))


def _calls(tag: str) -> list[dict[str, Any]]:
    """Alice (u1) and Bob (u2) on one browser (one anonymousId, never reset)."""
    device, u1, u2 = f"dev-{tag}", f"u1-{tag}", f"u2-{tag}"
    at = NOW - timedelta(hours=1)
    return [page(device, "/pricing", at, f"p1-{tag}", user=u1),
            identify(None, f"{tag}.{ALICE}", at, f"i1-{tag}", user=u1),
            page(device, "/", at, f"p2-{tag}", user=u2),
            identify(device, f"{tag}.{BOB}", at, f"i2-{tag}", user=u2),
            _track(u1, "Demo Requested", f"t1-{tag}"),
            _track(u2, "Trial Started", f"t2-{tag}")]


def test_the_audit_s_order_keeps_alice_s_demo_on_alice(store: Any, rules: Rules) -> None:
    # GIVEN Alice's page view on the shared browser, then Alice identified by her userId
    device = "sh-anon"
    send(store, rules, [page(device, "/blog", NOW - timedelta(hours=2), "a1", user="sh-u1"),
                        identify(None, ALICE, NOW - timedelta(hours=2), "a2", user="sh-u1")],
         NOW)
    # AND Bob identified on the same browser
    send(store, rules, [identify(device, BOB, NOW - timedelta(hours=1), "b1", user="sh-u2")],
         NOW)
    # WHEN Alice's backend tracks her demo request by her userId
    send(store, rules, [_track("sh-u1", "Demo Requested", "a3")], NOW)
    # THEN the demo is Alice's, and Bob has only his own identification
    assert "demo_requested" in _activities(store, ALICE)
    assert _activities(store, BOB) == ["identified"]
    # AND the browser's later anonymous views are Bob's (the device's latest user)
    send(store, rules, [page(device, "/pricing", NOW, "b2")], NOW)
    assert _activities(store, BOB) == ["identified", "pricing_page_visit"]
    assert "pricing_page_visit" not in _activities(store, ALICE)


def test_two_people_on_one_device_in_any_order_keep_their_own_events(
        store: Any, rules: Rules) -> None:
    # GIVEN the six calls of two people on one browser, in many orders (each order with its
    # own ids: every fifth of the 720 permutations, 144 histories, on memory and SQLite;
    # every thirtieth, 24, on the Firestore emulator, where each request costs ~40 ms)
    step = 30 if "firestore" in type(store).__module__ else 5
    for number, order in enumerate(itertools.permutations(range(6))):
        if number % step:
            continue
        tag = f"o{number}"
        calls = _calls(tag)
        # WHEN the calls arrive in this order, one request each
        for index in order:
            send(store, rules, [calls[index]], NOW)
        # THEN each person's lead has exactly their own calls' events
        assert _activities(store, f"{tag}.{ALICE}") == [
            "demo_requested", "identified", "pricing_page_visit"], order
        assert _activities(store, f"{tag}.{BOB}") == [
            "identified", "trial_started", "website_visit"], order


def test_a_browser_identify_on_a_shared_device_takes_no_one_else_s_history(
        store: Any, rules: Rules) -> None:
    # GIVEN Alice's server-side page views by her userId on a browser, not identified yet
    device = "sh-anon-b"
    send(store, rules, [page(device, "/pricing", NOW - timedelta(hours=2), "c1",
                             user="sh-u1b")], NOW)
    # WHEN Bob types his address in a form on that browser (the client key's identify)
    send(store, rules, [identify(device, BOB, NOW - timedelta(hours=1), "c2")], NOW,
         caller="client")
    # THEN Bob's lead has his identification only; Alice's view waits for her
    assert _activities(store, BOB) == ["identified"]
    send(store, rules, [identify(None, ALICE, NOW, "c3", user="sh-u1b")], NOW)
    assert _activities(store, ALICE) == ["identified", "pricing_page_visit"]
    # AND the browser's later anonymous views are Bob's
    send(store, rules, [page(device, "/", NOW, "c4")], NOW, caller="client")
    assert _activities(store, BOB) == ["identified", "website_visit"]
