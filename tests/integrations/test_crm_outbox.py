"""Scores into HubSpot through the CRM outbox (service/crm_outbox.py), against the HubSpot
fake over real HTTP: only changes that matter, batches of 100, HubSpot's waits honoured,
nothing lost and nothing sent twice across failures and crashes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW, fail_on_call
from fakes.hubspot_api import HubSpotFake

from integrations.conftest import HUBSPOT_TOKEN, warm_lead_events
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState
from leadscore.integrations.hubspot import HubSpotCrm
from leadscore.service.crm_outbox import CrmRunReport, sync_crm
from leadscore.service.writes import apply_events

EMAIL = "ana@tiendassol.example"
STEP = 5.0


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def crm_for(fake: HubSpotFake, token: str = HUBSPOT_TOKEN) -> HubSpotCrm:
    crm = HubSpotCrm(token, fake.url)
    HubSpotCrm(HUBSPOT_TOKEN, fake.url).setup_properties()
    return crm


def run(store: Any, crm: HubSpotCrm, rules: Rules, sleeps: Sleeps | None = None,
        **kw: Any) -> CrmRunReport:
    now = kw.pop("now", NOW)
    kw.setdefault("clock", lambda: now)
    return sync_crm(store, crm, "hubspot", rules, now, step=STEP,
                    sleep=sleeps if sleeps is not None else Sleeps(), **kw)


def put(store: Any, n: int, score: float = 50, grade: str = "B2", stage: Any = "mql") -> str:
    lead_id = f"l_{n:04d}"
    store.put_lead(LeadState(lead_id=lead_id, email=f"buyer{n}@example.com", score=score,
                             fit_score=20, engagement_score=score - 20, grade=grade,
                             stage=stage, scored_at=NOW))
    return lead_id


def upserts(fake: HubSpotFake) -> int:
    return sum(1 for _, path in fake.requests if path.endswith("/batch/upsert"))


def test_only_changes_a_rep_would_see_are_sent(store: Any, rules: Rules,
                                               hubspot_api: HubSpotFake) -> None:
    crm = crm_for(hubspot_api)
    # GIVEN a lead HubSpot has at 50 points, grade B2
    put(store, 1, score=50)
    assert run(store, crm, rules).synced == 1
    # WHEN its score moves by less than the step THEN nothing is sent, however often we look
    put(store, 1, score=53)
    assert (run(store, crm, rules).synced, run(store, crm, rules).synced) == (0, 0)
    # WHEN only its grade changes THEN it is sent
    put(store, 1, score=53, grade="B1")
    assert run(store, crm, rules).synced == 1
    assert hubspot_api.contacts["buyer1@example.com"]["leadscore_grade"] == "B1"
    # WHEN the score drifts past the step from what HubSpot shows (53) THEN it is sent
    put(store, 1, score=57.9, grade="B1")
    assert run(store, crm, rules).synced == 0
    put(store, 1, score=58.2, grade="B1")
    assert run(store, crm, rules).synced == 1
    # WHEN the stage changes THEN it is sent
    put(store, 1, score=58.2, grade="B1", stage="sql")
    assert run(store, crm, rules).synced == 1
    assert hubspot_api.stored == {"buyer1@example.com": 4}
    assert hubspot_api.contacts["buyer1@example.com"]["leadscore_stage"] == "sql"


def test_records_hold_no_email_and_go_with_the_lead(store: Any, rules: Rules,
                                                    hubspot_api: HubSpotFake) -> None:
    lead_id = put(store, 1)
    run(store, crm_for(hubspot_api), rules)
    record = store.esp_synced("crm:hubspot", [lead_id])[lead_id]
    assert record.member["stage"] == "mql" and record.member["score"] == 50
    assert "buyer1@example.com" not in record.model_dump_json()
    assert store.esp_synced("mailchimp", [lead_id]) == {}  # the email tools' are apart
    assert store.erase(lead_id)
    assert store.esp_synced("crm:hubspot", [lead_id]) == {}


def test_250_leads_go_in_batches_of_100_and_a_failure_loses_nothing_and_repeats_nothing(
        store: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    crm = crm_for(hubspot_api)
    for n in range(250):
        put(store, n)
    # GIVEN HubSpot fails the second batch with 502s for every attempt of this run
    original, calls = hubspot_api.handle, {"n": 0}

    def second_batch_fails(request: Any) -> Any:
        if request.path.endswith("/batch/upsert"):
            calls["n"] += 1
            if calls["n"] in (2, 3, 4):
                return hubspot_api.answer(502, {"status": "error", "message": "Bad gateway"})
        return original(request)

    hubspot_api.handle = second_batch_fails  # type: ignore[method-assign]
    sleeps = Sleeps()
    first = run(store, crm, rules, sleeps)
    # THEN the first batch is stored and recorded; the rest is pending, with backoff tried
    assert (first.synced, first.pending) == (100, 150) and first.error == "hubspot upsert: 502"
    assert sleeps == [0.5, 1.0]
    # WHEN the next run comes (the decay job's sweep)
    again = run(store, crm, rules)
    # THEN exactly the pending 150 go, in batches of at most 100, each stored once
    assert (again.synced, again.pending, again.examined) == (150, 0, 250)
    assert [len(b) for b in hubspot_api.batches] == [100, 100, 50]  # the 502s stored nothing
    assert len(hubspot_api.stored) == 250 and set(hubspot_api.stored.values()) == {1}
    assert run(store, crm, rules).synced == 0


def test_a_server_error_is_retried_with_backoff_in_the_same_run(
        rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store, crm, sleeps = MemoryStore(), crm_for(hubspot_api), Sleeps()
    put(store, 1)
    hubspot_api.fail_next(503, {"status": "error", "message": "unavailable"}, times=2)
    report = run(store, crm, rules, sleeps)
    assert (report.synced, report.pending, sleeps) == (1, 0, [0.5, 1.0])
    assert hubspot_api.stored == {"buyer1@example.com": 1}


def test_a_429_waits_as_hubspot_asks(rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store, crm = MemoryStore(), crm_for(hubspot_api)
    put(store, 1)
    # GIVEN a short Retry-After: the run waits it out and sends
    hubspot_api.rate_limited(retry_after=3)
    sleeps = Sleeps()
    assert run(store, crm, rules, sleeps).synced == 1 and sleeps == [3.0]
    # GIVEN only HubSpot's rate-limit window (10 s, no Retry-After): waited the same way
    put(store, 1, stage="sql")
    hubspot_api.rate_limited()
    sleeps = Sleeps()
    assert run(store, crm, rules, sleeps).synced == 1 and sleeps == [10.0]
    # GIVEN a long Retry-After: the run is not held; everything stays pending for later
    put(store, 1, stage="customer")
    hubspot_api.rate_limited(retry_after=120)
    sleeps = Sleeps()
    held = run(store, crm, rules, sleeps)
    assert (held.synced, held.pending, held.retry_after_s, sleeps) == (0, 1, 120, [])
    assert hubspot_api.contacts["buyer1@example.com"]["leadscore_stage"] == "sql"
    assert run(store, crm, rules).synced == 1
    assert hubspot_api.stored == {"buyer1@example.com": 3}


def test_a_revoked_token_stops_the_run_with_everything_pending(
        rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store = MemoryStore()
    for n in range(250):
        put(store, n)
    report = run(store, crm_for(hubspot_api, token="revoked"), rules)
    # one refused call, not one per batch; nothing recorded, so the fixed token sends all
    assert (report.synced, report.pending) == (0, 250) and "401" in str(report.error)
    assert upserts(hubspot_api) == 1
    assert run(store, crm_for(hubspot_api), rules).synced == 250


def test_a_contact_hubspot_refuses_does_not_hold_the_others(
        rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store, crm = MemoryStore(), crm_for(hubspot_api)
    refused = [put(store, n) for n in range(3)][1]
    hubspot_api.refuse_emails = {"buyer1@example.com"}
    report = run(store, crm, rules)
    # the refusal is logged by lead id (the autouse check fails on any address in a log)
    assert (report.synced, report.rejected) == (2, 1)
    assert store.esp_synced("crm:hubspot", [refused])[refused].member == {}  # never accepted


def written_not_dispatched(store: Any, rules: Rules, fake: HubSpotFake) -> Container:
    """A warm lead in the store whose write's events never reached `dispatch` (a crash)."""
    crm_for(fake)
    app = Container(Settings(store="memory", hubspot_token=HUBSPOT_TOKEN,
                             hubspot_api_url=fake.url), store=store, rules=rules,
                    clock=lambda: NOW)
    apply_events(store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL), rules, NOW)
    return app


def test_a_crash_between_the_write_and_the_sync_is_caught_by_the_decay_sweep(
        durable_store: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.service.decay import run_decay

    # GIVEN a lead written, and the process gone before its events were dispatched
    app = written_not_dispatched(durable_store, rules, hubspot_api)
    assert hubspot_api.stored == {}
    # WHEN the decay job runs (it changes nothing for this lead) and sweeps
    summary = run_decay(durable_store, rules, NOW)
    app.dispatch(summary.events, sweep=True)
    # THEN HubSpot has the lead, once, with its reasons; a second sweep sends nothing
    app.dispatch([], sweep=True)
    assert hubspot_api.stored == {EMAIL: 1}
    contact = hubspot_api.contacts[EMAIL]
    assert contact["leadscore_stage"] == "mql"
    assert contact["leadscore_top_reasons"].startswith("Requested a demo")


def test_a_decay_shard_syncs_only_its_own_leads_and_the_tick_compares_everything(
        durable_store: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    # GIVEN a lead written, and the process gone before its events were dispatched
    app = written_not_dispatched(durable_store, rules, hubspot_api)
    # WHEN a decay shard that changed nothing for it dispatches (full sweep configured)
    app.dispatch([], sweep=True, shard=True)
    # THEN the shard compared nobody else: HubSpot has not heard of the lead
    assert hubspot_api.stored == {}
    # WHEN the day's tick dispatches
    app.dispatch([], sweep=True)
    # THEN the full comparison sent the lead, once
    assert hubspot_api.stored == {EMAIL: 1}


def test_a_crash_after_hubspot_stored_but_before_the_record_resends_the_same_values_once(
        monkeypatch: pytest.MonkeyPatch, rules: Rules, hubspot_api: HubSpotFake) -> None:
    """The one window delivery cannot close: HubSpot stored the batch, the record was not
    written. The next run sends the same values again, once; the contact is unchanged."""
    from leadscore.store.memory import MemoryStore

    store, crm = MemoryStore(), crm_for(hubspot_api)
    put(store, 1)
    fail_on_call(monkeypatch, store, "record_esp_synced", 1, OSError("crash"))
    with pytest.raises(OSError):
        run(store, crm, rules)
    stored = dict(hubspot_api.contacts["buyer1@example.com"])
    assert run(store, crm, rules).synced == 1
    assert run(store, crm, rules).synced == 0
    assert hubspot_api.stored == {"buyer1@example.com": 2}
    assert hubspot_api.contacts["buyer1@example.com"] == stored


def test_a_decay_that_crosses_a_stage_reaches_hubspot_in_the_sweep(
        durable_store: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.service.decay import run_decay

    crm_for(hubspot_api)
    app = Container(Settings(store="memory", hubspot_token=HUBSPOT_TOKEN,
                             hubspot_api_url=hubspot_api.url, hubspot_full_sweep=False),
                    store=durable_store, rules=rules, clock=lambda: NOW)
    apply_events(durable_store, lead_id_for(EMAIL), EMAIL, warm_lead_events(EMAIL), rules, NOW)
    app.sync_crm()
    later = NOW + timedelta(days=120)
    summary = run_decay(durable_store, rules, later)
    # only the leads the run changed are looked at (hubspot_full_sweep=false)
    app.dispatch(summary.events, sweep=True)
    assert hubspot_api.stored == {EMAIL: 2}
    assert hubspot_api.contacts[EMAIL]["leadscore_stage"] == "lead"


# -- driven by domain events, after the provider's request ---------------------------------
def _event_json(email: str, key: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"email": email, "source": "web", "idempotency_key": key,
            "occurred_at": NOW.isoformat(), "type": kind, **fields}


def test_a_write_queues_the_lead_and_hubspot_hears_after_the_answer(
        durable_store: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    from functional.conftest import client_for

    from leadscore.container import install

    crm_for(hubspot_api)
    app = Container(Settings(api_token="t0ken", hubspot_token=HUBSPOT_TOKEN,
                             hubspot_api_url=hubspot_api.url), store=durable_store,
                    rules=rules, clock=lambda: NOW)
    install(app)
    client = client_for("ingest")

    def post(*events: dict[str, Any]) -> None:
        answer = client.post("/", json=list(events), headers={"Authorization": "Bearer t0ken"})
        assert answer.status_code == 200, answer.get_json()

    try:
        # GIVEN a HubSpot that holds every upsert
        hubspot_api.upserts_open.clear()
        # WHEN a newsletter signup is posted THEN the request is answered while HubSpot waits
        post(_event_json("li@example.org", "n1", "form_submitted", form_kind="newsletter"))
        assert hubspot_api.stored == {}
        hubspot_api.upserts_open.set()
        app.crm_queue().wait()
        assert hubspot_api.stored == {"li@example.org": 1}
        # WHEN an open moves the score by one point THEN HubSpot is not written again
        post(_event_json("li@example.org", "o1", "email_opened"))
        app.crm_queue().wait()
        assert hubspot_api.stored == {"li@example.org": 1}
        # WHEN the company size moves the fit grade (C4 -> B4) THEN the contact is updated
        post(_event_json("li@example.org", "n2", "form_submitted", form_kind="newsletter",
                         profile={"company_size": "201-1000"}))
        app.crm_queue().wait()
        assert hubspot_api.stored == {"li@example.org": 2}
        assert hubspot_api.contacts["li@example.org"]["leadscore_grade"] == "B4"
    finally:
        install(None)


def test_after_a_long_rate_limit_the_queue_sends_nothing_before_the_wait(
        rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    crm_for(hubspot_api)
    clock = {"now": NOW}
    store = MemoryStore()
    app = Container(Settings(store="memory", hubspot_token=HUBSPOT_TOKEN,
                             hubspot_api_url=hubspot_api.url), store=store,
                    rules=rules, clock=lambda: clock["now"])
    first, second = put(store, 1), put(store, 2)
    # GIVEN HubSpot asked for two minutes of quiet
    hubspot_api.rate_limited(retry_after=120)
    app.sync_crm_soon([first])
    app.crm_queue().wait()
    calls = upserts(hubspot_api)
    # WHEN more leads are scored within the two minutes THEN HubSpot is not called
    app.sync_crm_soon([second])
    app.crm_queue().wait()
    assert upserts(hubspot_api) == calls and app.crm_queue().pending() == [first, second]
    # WHEN the wait is over THEN both go, in one batch, once
    clock["now"] = NOW + timedelta(seconds=121)
    app.sync_crm_soon([])
    app.sync_crm_soon([second])
    app.crm_queue().wait()
    assert hubspot_api.batches[-1] == ["buyer1@example.com", "buyer2@example.com"]
    assert hubspot_api.stored == {"buyer1@example.com": 1, "buyer2@example.com": 1}


@pytest.mark.parametrize("refusing", ["invalid_emails", "conflict_emails"])
def test_an_address_hubspot_finds_invalid_does_not_hold_back_its_batch(
        refusing: str, rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store, crm = MemoryStore(), crm_for(hubspot_api)
    for n in range(150):
        put(store, n)
    # GIVEN one address HubSpot refuses, which makes it refuse every batch holding it
    # (invalid: a 400; conflicting with another contact: a 409)
    setattr(hubspot_api, refusing, {"buyer42@example.com"})
    report = run(store, crm, rules)
    # THEN the other 149 are stored once and recorded; the bad one alone is refused for
    # good, by name (and logged by lead id: the autouse check fails on any address in a
    # log line)
    assert (report.synced, report.rejected, report.failed, report.pending) == (149, 1, 0, 0)
    assert len(hubspot_api.stored) == 149 and set(hubspot_api.stored.values()) == {1}
    refused = store.esp_synced("crm:hubspot", ["l_0042"])["l_0042"]
    assert refused.member == {} and refused.refused is not None  # not accepted
    assert upserts(hubspot_api) <= 2 + 2 * 7  # halving: a few calls, not one per contact
    # WHEN the next run comes THEN nothing more is sent
    assert run(store, crm, rules).changed == 0


def test_a_contact_refused_one_by_one_is_not_sent_again_until_the_lead_changes(
        store: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    crm = crm_for(hubspot_api)
    # GIVEN three leads, one of which HubSpot refuses with its per-input error (a 207)
    refused = [put(store, n) for n in range(3)][1]
    hubspot_api.refuse_emails = {"buyer1@example.com"}
    assert (run(store, crm, rules).synced, upserts(hubspot_api)) == (2, 1)
    # THEN the refusal is kept for good, with HubSpot's reason and without the address
    record = store.esp_synced("crm:hubspot", [refused])[refused]
    assert record.member == {} and record.refused is not None
    assert record.refused["stage"] == "mql" and "<email>" in str(record.refused_reason)
    assert "buyer1" not in str(record.model_dump())
    # WHEN later runs find the lead unchanged, or moved less than the step
    again = run(store, crm, rules)
    put(store, 1, score=53)
    moved_a_little = run(store, crm, rules)
    # THEN nothing is sent to HubSpot at all
    assert (again.changed, again.refused_earlier, moved_a_little.changed) == (0, 1, 0)
    assert upserts(hubspot_api) == 1
    # WHEN the lead changes as much as would be sent anyway (its stage) THEN it is tried
    # again, and once HubSpot accepts it the refusal is gone
    hubspot_api.refuse_emails = set()
    put(store, 1, score=53, stage="sql")
    assert run(store, crm, rules).synced == 1
    record = store.esp_synced("crm:hubspot", [refused])[refused]
    assert (record.member["stage"], record.refused) == ("sql", None)
    assert hubspot_api.stored["buyer1@example.com"] == 1


def test_a_rate_limit_one_worker_met_holds_every_worker_until_the_wait_is_over(
        tmp_path: Any, rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.sqlite import SqliteStore

    crm_for(hubspot_api)
    clock = {"now": NOW}
    path = tmp_path / "leads.db"
    # GIVEN two workers of `serve --workers 2`: one SQLite file, a store and queue each
    stores = [SqliteStore(path), SqliteStore(path)]
    one, two = (Container(Settings(store=f"sqlite:///{path}", hubspot_token=HUBSPOT_TOKEN,
                                   hubspot_api_url=hubspot_api.url), store=s, rules=rules,
                          clock=lambda: clock["now"]) for s in stores)
    first, second = put(stores[0], 1), put(stores[0], 2)
    # WHEN HubSpot tells the first worker to wait two minutes
    hubspot_api.rate_limited(retry_after=120)
    one.sync_crm_soon([first])
    one.crm_queue().wait()
    calls = upserts(hubspot_api)
    # THEN the second worker sends nothing within those two minutes either
    two.sync_crm_soon([second])
    two.crm_queue().wait()
    assert upserts(hubspot_api) == calls and two.crm_queue().pending() == [second]
    # WHEN the wait is over THEN each lead is sent once
    clock["now"] = NOW + timedelta(seconds=121)
    two.sync_crm_soon([second])
    two.crm_queue().wait()
    one.sync_crm_soon([first])
    one.crm_queue().wait()
    assert hubspot_api.stored == {"buyer1@example.com": 1, "buyer2@example.com": 1}
    for store in stores:
        store.close()


@pytest.mark.parametrize("status, body, halved", [
    (404, {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "not found"}, False),
    (409, {"status": "error", "category": "CONFLICT", "message": "conflict"}, True),
    (413, {"status": "error", "message": "payload too large"}, True),
    (422, {"status": "error", "message": "unprocessable"}, True),
    (207, {"status": "COMPLETE", "results": [], "numErrors": 1,
           "errors": [{"status": "error", "category": "INTERNAL", "message": "failed"}]},
     False),
])
def test_a_batch_refused_whole_or_unnamed_is_not_kept_as_a_refusal(
        status: int, body: dict[str, Any], halved: bool, rules: Rules,
        hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store, crm = MemoryStore(), crm_for(hubspot_api)
    ids = [put(store, n) for n in range(3)]
    # GIVEN HubSpot refuses one batch as a whole, once, or with an error naming no record
    hubspot_api.fail_next(status, body)
    report = run(store, crm, rules)
    # THEN no lead is refused for good: a wrong URL (404) or an unnamed error leaves all
    # three to the next run, unrecorded; any other whole refusal halves the batch, and the
    # halves are stored now
    first = 3 if halved else 0
    assert (report.synced, report.rejected, report.failed) == (first, 0, 3 - first)
    assert all(r.refused is None for r in store.esp_synced("crm:hubspot", ids).values())
    if not halved:
        assert store.esp_synced("crm:hubspot", ids) == {}
    # WHEN the next run comes THEN the rest go, and all three are stored once
    again = run(store, crm, rules)
    assert (again.synced, again.refused_earlier) == (3 - first, 0)
    assert hubspot_api.stored == {f"buyer{n}@example.com": 1 for n in range(3)}


def test_a_409_for_every_record_is_not_kept_as_a_refusal(
        rules: Rules, hubspot_api: HubSpotFake) -> None:
    from leadscore.store.memory import MemoryStore

    store, crm = MemoryStore(), crm_for(hubspot_api)
    ids = [put(store, n) for n in range(4)]
    # GIVEN HubSpot answers 409 to every upsert (the call is at fault, not a record)
    hubspot_api.conflict_emails = {f"buyer{n}@example.com" for n in range(4)}
    report = run(store, crm, rules)
    # THEN no lead is refused for good: all are sent again next run
    assert (report.synced, report.rejected, report.failed) == (0, 0, 4)
    assert store.esp_synced("crm:hubspot", ids) == {}
    hubspot_api.conflict_emails = set()
    assert run(store, crm, rules).synced == 4
