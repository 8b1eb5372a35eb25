"""The LeadStore contract: every adapter (memory, SQLite, Firestore emulator) passes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import activity, event, form, opened
from conftest import NOW, load_events

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState
from leadscore.service.writes import apply_events

ANA = "ana@example.com"
ANA_ID = lead_id_for(ANA)


def apply(store: Any, rules: Rules, events: list[Any], now: Any = NOW) -> Any:
    return apply_events(store, lead_id_for(events[0].email), events[0].email, events, rules, now)


def facts(lead: LeadState) -> dict[str, Any]:
    """Everything but bookkeeping times, with floats rounded (sum order moves the last bit)."""
    data = lead.model_dump(exclude={"updated_at", "scored_at", "created_at", "next_review_at"})
    for name in ("eng_acc", "cap_weights", "purchase_acc"):
        data[name] = {k: round(v, 6) for k, v in data[name].items()}
    for name in ("score", "fit_score", "engagement_score"):
        data[name] = round(data[name], 3)
    return data


def test_applied_events_are_stored_with_explained_history(store: Any, rules: Rules) -> None:
    # GIVEN a demo request, a delivery, human and machine opens, a click and a visit
    events = load_events("ingest_demo_request_and_opens.json")
    # WHEN they are applied as one group
    outcome = apply(store, rules, events)
    # THEN every event counted once and the lead holds the facts and the view
    assert (outcome.applied, outcome.duplicates, outcome.created) == (6, 0, True)
    lead = store.get_lead(lead_id_for("maria.lopez@acme-analytics.io"))
    assert lead is not None and lead.email == "maria.lopez@acme-analytics.io"
    assert lead.profile["company"] == "Acme Analytics"
    assert lead.counters["email_opened"] == 1 and lead.counters["email_opened_machine"] == 1
    assert lead.last_open_at == events[4].occurred_at  # the click implies an open
    assert lead.stage == "sql" and lead.score > rules.stages.sql
    history = store.history(lead.lead_id)
    assert [h.kind for h in history] == [  # in the order things happened
        "form_submitted", "email_delivered", "email_opened", "email_opened", "email_clicked",
        "activity"]
    demo = history[0]
    # the demo request's points, plus every fit rule its profile started to match
    assert demo.delta == rules.engagement["form.demo_request"].points + lead.fit_score
    assert {i.rule for i in demo.items} >= {"form.demo_request", "fit.industry-core",
                                            "fit.seniority-decision-maker"}
    assert demo.rules_version == rules.version and "form.demo_request" in demo.reason
    assert demo.event_id == "form-7f3c2a91"
    by_id = {h.event_id: h for h in history}
    assert by_id["sg-open-mpp-Zx81ks"].delta == 0  # the machine open adds nothing
    assert by_id["sg-open-Zx81kr"].delta == rules.engagement["email.opened"].points


@pytest.mark.parametrize("fixture", ["ingest_demo_request_and_opens.json",
                                     "ingest_single_activity.json"])
def test_the_same_events_applied_twice_change_nothing(store: Any, rules: Rules,
                                                      fixture: str) -> None:
    # GIVEN events already applied
    events = load_events(fixture)
    apply(store, rules, events)
    before = store.get_lead(lead_id_for(events[0].email))
    # WHEN the sender retries them, later
    again = apply(store, rules, events, now=NOW + timedelta(hours=3))
    # THEN nothing is applied and the lead and its history are unchanged
    assert (again.applied, again.duplicates) == (0, len(events))
    assert store.get_lead(before.lead_id) == before
    assert len(store.history(before.lead_id)) == len(events)


def test_the_outcome_says_whether_the_lead_was_new(store: Any, rules: Rules) -> None:
    # opens alone take Firestore's blind path, a form its transactional one
    first = apply(store, rules, [opened(ANA, "o1", NOW - timedelta(hours=2))])
    second = apply(store, rules, [opened(ANA, "o2", NOW - timedelta(hours=1))])
    third = apply(store, rules, [form("new@b.com", "f1", NOW)])
    assert (first.created, second.created, third.created) == (True, False, True)
    assert (first.stage_before, first.stage_after) == (None, "lead")


def test_duplicates_inside_one_group_count_once(store: Any, rules: Rules) -> None:
    # GIVEN a batch where the provider repeated an event
    first = opened(ANA, "open-1", NOW - timedelta(hours=1))
    batch = [first, first, activity(ANA, "visit-1", NOW - timedelta(minutes=5)), first]
    # WHEN it is applied
    outcome = apply(store, rules, batch)
    # THEN the repeated event counts once
    assert (outcome.applied, outcome.duplicates) == (2, 2)
    assert store.get_lead(ANA_ID).counters["email_opened"] == 1


def test_a_group_mixing_new_and_known_events_applies_only_the_new(store: Any,
                                                                  rules: Rules) -> None:
    # GIVEN one open already applied
    apply(store, rules, [opened(ANA, "open-1", NOW - timedelta(days=1))])
    # WHEN a batch repeats it alongside two new events
    outcome = apply(store, rules, [opened(ANA, "open-1", NOW - timedelta(days=1)),
                                   opened(ANA, "open-2", NOW - timedelta(hours=2)),
                                   form(ANA, "form-1", NOW - timedelta(hours=1), job_title="CTO")])
    # THEN only the two new ones count, on the lead that existed
    assert (outcome.applied, outcome.duplicates, outcome.created) == (2, 1, False)
    lead = store.get_lead(ANA_ID)
    assert lead.counters == {"email_opened": 2, "form_submitted": 1}
    assert len(store.history(ANA_ID)) == 3


def break_lead_write(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the lead's write fail after the ledger entries were staged in the same commit."""
    kind = type(store).__name__
    if kind == "FirestoreStore":
        def staged(target: Any, lead_id: str, fields: Any) -> None:
            # a write the server rejects (update of a missing document) inside the commit
            target.update(store._leads.document("missing-" + lead_id), {"x": 1})
        monkeypatch.setattr(store, "_stage_lead_write", staged)
    else:
        def fail(*_: Any) -> None:
            raise RuntimeError("disk full")
        monkeypatch.setattr(store, "_stage_lead_write", fail)


@pytest.mark.parametrize("blind", [True, False], ids=["opens", "form"])
def test_a_failure_part_way_leaves_nothing(store: Any, rules: Rules,
                                           monkeypatch: pytest.MonkeyPatch, blind: bool) -> None:
    # GIVEN a store whose lead write fails after the ledger entries are staged
    events = ([opened(ANA, "o1", NOW), opened(ANA, "o2", NOW)] if blind
              else [form(ANA, "f1", NOW, kind="demo_request", company="Acme")])
    break_lead_write(store, monkeypatch)
    # WHEN the events are applied
    with pytest.raises(Exception):  # noqa: B017 - each adapter fails in its own words
        apply(store, rules, events)
    # THEN neither the lead nor any ledger entry exists
    assert store.get_lead(ANA_ID) is None
    assert store.history(ANA_ID) == []
    # AND the sender's retry, once the store works again, applies them exactly once
    monkeypatch.undo()
    assert apply(store, rules, events).applied == len(events)
    assert len(store.history(ANA_ID)) == len(events)


def test_list_by_stage_and_score(store: Any, rules: Rules) -> None:
    # GIVEN a hot lead, a warm lead and a cold lead
    apply(store, rules, [form("hot@a.com", "h", NOW, kind="demo_request", job_title="CTO",
                              industry="SaaS", seniority="director")])
    apply(store, rules, [form("warm@b.com", "w", NOW, kind="demo_request")])
    apply(store, rules, [form("cold@c.com", "c", NOW)])
    # WHEN listing
    everyone = store.list_leads()
    mqls = store.list_leads(stage="mql")
    above = store.list_leads(min_score=10)
    # THEN leads come highest score first and filters apply
    assert [x.email for x in everyone] == ["hot@a.com", "warm@b.com", "cold@c.com"]
    assert [x.email for x in mqls] == ["warm@b.com"]
    assert [x.email for x in above] == ["hot@a.com", "warm@b.com"]
    assert [x.email for x in store.list_leads(limit=1)] == ["hot@a.com"]
    # AND pages continue after the last lead of the previous page
    first = store.list_leads(limit=2)
    rest = store.list_leads(limit=2, after=(first[-1].score, first[-1].lead_id))
    assert [x.email for x in first + rest] == [x.email for x in everyone]
    hot = store.list_leads()[0]
    assert [x.email for x in store.list_leads(grade=hot.grade)] == ["hot@a.com"]


def test_pages_are_exact_when_scores_tie(store: Any, rules: Rules) -> None:
    # GIVEN seven leads with the same score
    for i in range(7):
        apply(store, rules, [form(f"tie{i}@t.com", f"t{i}", NOW)])
    # WHEN reading them three at a time
    pages, after = [], None
    while True:
        page = store.list_leads(limit=3, after=after)
        if not page:
            break
        pages += page
        after = (page[-1].score, page[-1].lead_id)
    # THEN each lead comes exactly once, in one stable order
    assert sorted(x.lead_id for x in pages) == sorted(lead_id_for(f"tie{i}@t.com")
                                                      for i in range(7))
    assert len(pages) == 7


def test_iter_leads_visits_every_lead_once(store: Any, rules: Rules) -> None:
    for i in range(5):
        apply(store, rules, [form(f"it{i}@t.com", f"i{i}", NOW)])
    seen, after = [], None
    while page := store.iter_leads(after_id=after, limit=2):
        seen += [x.lead_id for x in page]
        after = page[-1].lead_id
    assert seen == sorted(lead_id_for(f"it{i}@t.com") for i in range(5))


def test_count_leads_counts_without_reading_every_lead(store: Any, rules: Rules) -> None:
    # GIVEN an empty store, then three leads (one of them written twice)
    assert store.count_leads() == 0
    for i in range(3):
        apply(store, rules, [form(f"count{i}@t.com", f"c{i}", NOW)])
    apply(store, rules, [form("count0@t.com", "c0-again", NOW)])
    # THEN the count is the number of leads, not of writes
    assert store.count_leads() == 3


def test_due_for_review_returns_only_due_leads(store: Any, rules: Rules) -> None:
    # GIVEN a lead with engagement points (reviewed daily) and one sent mail (review at 6 months)
    apply(store, rules, [opened(ANA, "o1", NOW)])
    apply(store, rules, [event("email_delivered", "bo@b.com", "d1", NOW, source="esp")])
    # WHEN asking which are due now, tomorrow and in seven months
    # THEN only those whose review time has come are returned
    assert store.due_for_review(NOW) == []
    assert [x.email for x in store.due_for_review(NOW + timedelta(days=1))] == [ANA]
    later = store.due_for_review(NOW + timedelta(days=200))
    assert sorted(x.email for x in later) == [ANA, "bo@b.com"]


def test_erase_removes_the_lead_and_its_history(store: Any, rules: Rules) -> None:
    # GIVEN a lead with history
    apply(store, rules, load_events("ingest_demo_request_and_opens.json"))
    lead_id = lead_id_for("maria.lopez@acme-analytics.io")
    # WHEN it is erased
    assert store.erase(lead_id) is True
    # THEN nothing of it remains, and a later event starts a new lead
    assert store.get_lead(lead_id) is None and store.history(lead_id) == []
    assert store.erase(lead_id) is False
    again = load_events("ingest_demo_request_and_opens.json")[:1]
    assert apply(store, rules, again).applied == 1
    assert store.get_lead(lead_id).counters == {"form_submitted": 1}


def test_history_can_be_read_newest_first_in_pages(store: Any, rules: Rules) -> None:
    events = [opened(ANA, f"o{i}", NOW - timedelta(hours=10 - i)) for i in range(10)]
    apply(store, rules, events)
    newest = store.history(ANA_ID, limit=3)
    assert [h.event_id for h in newest] == ["o7", "o8", "o9"]  # in time order
    assert len(store.history(ANA_ID)) == 10


def test_orders_are_indexed_to_their_lead_until_erased(store: Any, rules: Rules) -> None:
    # GIVEN a paid order
    apply(store, rules, [event("purchase_made", ANA, "p", NOW, source="shop", order_id="A-9",
                               amount_minor=500, currency="EUR")])
    # THEN the order finds its lead, and nothing else does
    assert store.order_owner("shop:A-9") == ANA_ID
    assert store.order_owner("shop:A-10") is None and store.order_owner("other:A-9") is None
    # AND erasing the lead forgets the order too
    store.erase(ANA_ID)
    assert store.order_owner("shop:A-9") is None


def test_order_aliases_are_kept_with_the_lead_or_alone(store: Any, rules: Rules) -> None:
    # GIVEN a paid order that names another id of its payment, and a link recorded alone
    apply(store, rules, [event("purchase_made", ANA, "p", NOW, source="shop", order_id="in_1",
                               amount_minor=500, currency="EUR", aliases={"pi_1": "in_1"})])
    store.record_aliases({"shop:ch_1": "shop:pi_1", "shop:pi_2": "shop:in_2"})
    # THEN each alias says which key it stands for, and nothing else is an alias
    assert store.order_alias("shop:pi_1") == "shop:in_1"
    assert store.order_alias("shop:ch_1") == "shop:pi_1"
    assert store.order_alias("shop:in_1") is None and store.order_alias("other:pi_1") is None
    # AND recording an alias again alone keeps it with its lead: erasing the lead forgets
    # the aliases written with it, not the links that named no lead
    store.record_aliases({"shop:pi_1": "shop:in_1"})
    store.erase(ANA_ID)
    assert store.order_alias("shop:pi_1") is None
    assert store.order_alias("shop:pi_2") == "shop:in_2"


def test_a_signing_token_is_claimed_once(store: Any) -> None:
    # GIVEN a token used by one delivery
    assert store.claim_token("tok-1", "event-a") is True
    # THEN the same delivery may come again, another request with that token may not
    assert store.claim_token("tok-1", "event-a") is True
    assert store.claim_token("tok-1", "event-b") is False
    assert store.claim_token("tok-2", "event-b") is True


def test_facts_do_not_depend_on_delivery_order(store: Any, rules: Rules) -> None:
    # GIVEN two profile reports and two status changes, delivered newest first
    old = form(ANA, "f-old", NOW - timedelta(days=3), company="Old Co", job_title="CTO")
    new = form(ANA, "f-new", NOW - timedelta(days=1), company="New Co", job_title="")
    unsub = event("email_unsubscribed", ANA, "u", NOW - timedelta(days=2), source="esp")
    resub = event("email_resubscribed", ANA, "r", NOW - timedelta(hours=5), source="esp")
    for e in (new, resub, old, unsub):
        apply(store, rules, [e])
    # THEN newer values win, empty values never erase, and the latest status holds
    lead = store.get_lead(ANA_ID)
    assert lead.profile["company"] == "New Co" and lead.profile["job_title"] == "CTO"
    assert lead.email_status == "active"
