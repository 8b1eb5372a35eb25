"""Anonymous visitors who become leads, on every adapter (memory, SQLite, Firestore)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.domain.visitors import visitor_key
from leadscore.service.visitors import join_visitor

from .helpers import KEEP, identify, page, send

EMAIL = "ines.torres@acme-logistics.es"
LEAD = lead_id_for(EMAIL)


def test_anonymous_page_views_join_the_lead_at_their_own_times(store: Any,
                                                               rules: Rules) -> None:
    # GIVEN three anonymous page views over two days
    times = [NOW - timedelta(days=2), NOW - timedelta(days=1), NOW - timedelta(hours=1)]
    views = [page("anon-1", path, t, f"p{i}")
             for i, (path, t) in enumerate(zip(["/", "/pricing", "/product/x"], times,
                                               strict=True))]
    result = send(store, rules, views, NOW)
    # THEN nothing is a lead yet; the views wait as visitor records
    assert result.anonymous == 3 and store.get_lead(LEAD) is None
    assert len(store.visitor_events(visitor_key("anon", "anon-1"))) == 3
    # WHEN the visitor identifies
    joined = send(store, rules, [identify("anon-1", EMAIL, NOW, "i1")], NOW)
    # THEN the views join the lead once, each at its own time, and the records are gone
    assert joined.joined == 3
    history = store.history(LEAD)
    assert [(e.event["activity"], e.at) for e in history if e.event["activity"] != "identified"
            ] == list(zip(["website_visit", "pricing_page_visit", "product_page_visit"], times,
                          strict=True))
    assert store.visitor_events(visitor_key("anon", "anon-1")) == []
    # AND later anonymous views of the same visitor go straight to the lead
    send(store, rules, [page("anon-1", "/pricing", NOW, "p9")], NOW)
    assert len(store.history(LEAD)) == 5


def test_several_anonymous_ids_and_a_user_id_join_one_lead(store: Any, rules: Rules) -> None:
    # GIVEN a visitor on a laptop and a phone, then logged in (userId) on the phone
    send(store, rules, [page("laptop", "/pricing", NOW - timedelta(days=3), "l1"),
                        page("phone", "/case-studies/x", NOW - timedelta(days=2), "f1"),
                        page("phone", "/", NOW - timedelta(days=1), "f2", user="u-42")], NOW)
    assert store.get_lead(LEAD) is None
    # WHEN the user id is identified server-side, and the laptop identifies later
    send(store, rules, [identify(None, EMAIL, NOW - timedelta(hours=5), "i1", user="u-42")], NOW)
    send(store, rules, [identify("laptop", EMAIL, NOW - timedelta(hours=1), "i2")], NOW)
    # THEN all three views are on the lead, once each
    activities = sorted(e.event["activity"] for e in store.history(LEAD))
    assert activities == ["case_study_visit", "identified", "identified",
                          "pricing_page_visit", "website_visit"]
    # AND a message with only the user id now reaches the lead
    send(store, rules, [{"type": "track", "userId": "u-42", "event": "Trial Started",
                         "messageId": "t1"}], NOW)
    assert store.get_lead(LEAD).counters["activity"] == 6


def test_alias_joins_an_anonymous_id_to_a_known_user(store: Any, rules: Rules) -> None:
    send(store, rules, [page("anon-7", "/pricing", NOW - timedelta(hours=3), "p1"),
                        identify(None, EMAIL, NOW - timedelta(hours=2), "i1", user="u-7")], NOW)
    assert store.get_lead(LEAD).counters["activity"] == 1
    send(store, rules, [{"type": "alias", "previousId": "anon-7", "userId": "u-7",
                         "messageId": "al1"}], NOW)
    assert store.get_lead(LEAD).counters["activity"] == 2


def test_a_form_with_the_anonymous_id_joins_the_visitor(store: Any, rules: Rules) -> None:
    send(store, rules, [page("anon-f", "/pricing", NOW - timedelta(hours=3), "p1")], NOW)
    join_visitor(store, store, rules, "anon-f", EMAIL, NOW, KEEP)
    join_visitor(store, store, rules, "anon-f", EMAIL, NOW, KEEP)  # a resubmission
    assert [e.event["activity"] for e in store.history(LEAD)] == ["pricing_page_visit"]


def test_erasing_the_lead_erases_its_visitor_records(store: Any, rules: Rules) -> None:
    send(store, rules, [page("anon-e", "/", NOW - timedelta(hours=3), "p1"),
                        identify("anon-e", EMAIL, NOW, "i1", user="u-e")], NOW)
    assert store.visitor_link(visitor_key("anon", "anon-e")) is not None
    store.erase(LEAD)
    assert store.visitor_link(visitor_key("anon", "anon-e")) is None
    assert store.visitor_link(visitor_key("user", "u-e")) is None
    # AND a later anonymous view stays anonymous: the erased person is not re-created
    send(store, rules, [page("anon-e", "/", NOW, "p2")], NOW)
    assert store.get_lead(LEAD) is None


def test_unidentified_visitors_expire(store: Any, rules: Rules) -> None:
    send(store, rules, [page("anon-x", "/", NOW - timedelta(hours=1), "p1")], NOW)
    later = NOW + KEEP + timedelta(days=1)
    # an identification after the expiry joins nothing (Firestore's TTL may lag a day)
    assert send(store, rules, [identify("anon-x", EMAIL, later, "i1")], later).joined == 0
    send(store, rules, [page("anon-y", "/", NOW, "p2")], NOW)
    assert store.purge_visitors(later) >= 1
    assert store.visitor_events(visitor_key("anon", "anon-y")) == []


def test_a_visitor_identified_by_an_address_that_moved_joins_the_lead_it_moved_to(
        store: Any, rules: Rules) -> None:
    from leadscore.service.moves import move_lead

    new_email = "ines.torres@acme-group.example"
    # GIVEN a lead whose address moved to a new one (Mailchimp's upemail)
    send(store, rules, [identify("anon-9", EMAIL, NOW - timedelta(days=2), "i0")], NOW)
    assert move_lead(store, rules, EMAIL, new_email, NOW - timedelta(days=1)) > 0
    # WHEN a new device views the pricing page and identifies with the old address
    send(store, rules, [page("anon-10", "/pricing", NOW - timedelta(hours=2), "p1")], NOW)
    joined = send(store, rules, [identify("anon-10", EMAIL, NOW - timedelta(hours=1), "i1")],
                  NOW)
    # THEN the view is not stranded as if the address were erased: it joins the lead the
    # address moved to, and nothing waits on the device any more
    assert joined.joined == 1
    activities = [e.event["activity"] for e in store.history(lead_id_for(new_email))]
    assert "pricing_page_visit" in activities
    assert store.visitor_events(visitor_key("anon", "anon-10")) == []
    assert store.get_lead(LEAD) is None
