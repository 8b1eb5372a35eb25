"""The dashboard's statistics documents (issue 17), kept by the write path, on memory,
SQLite and the Firestore emulator (its blind path included): after random writes, decay
runs, a rules change with its rescore, erasures, an address move and a re-key merge, they
equal a full recount by aggregation queries exactly; the recount counts what an older
release stored, once; and the page reads the same numbers either way."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import activity, event, form, opened
from click.testing import CliRunner
from conftest import NOW

from leadscore.cli import main
from leadscore.container import install
from leadscore.dashboard import queries
from leadscore.domain import lead_stats as counting
from leadscore.domain.identity import legacy_lead_id
from leadscore.domain.rules import Rules
from leadscore.domain.state import STAGES, LeadState
from leadscore.service.decay import run_decay
from leadscore.service.erasure import erase_address
from leadscore.service.ingest import ingest
from leadscore.service.moves import move_lead
from leadscore.service.rekey import rekey_leads
from leadscore.service.rescore import rescore
from leadscore.service.stats_recount import recount
from leadscore.service.writes import apply_events
from leadscore.store.port import BlindAppends, LeadCount
from leadscore.store.sqlite import SqliteStore

EARLIER = NOW - timedelta(days=4)  # the random events span 3 days from their start
GRADES = [f + e for f in "ABCD" for e in "1234"]


def recounted(store: Any, rules: Rules) -> dict[str, int]:
    """Every statistics key counted again by aggregation queries (the dashboard's fallback)."""
    found = {"total": store.count_leads(),
             "non_opener": store.count_matching(LeadCount(non_opener=True)),
             "opens:human": store.sum_counter("email_opened"),
             "opens:machine": store.sum_counter("email_opened_machine")}
    found |= {f"stage:{s}": store.count_matching(LeadCount(stage=s)) for s in STAGES}
    found |= {f"grade:{g}": store.count_matching(LeadCount(grade=g)) for g in GRADES}
    found |= {f"email:{s}": store.count_matching(LeadCount(email_status=s))
              for s in queries.EMAIL_STATUSES}
    for low, high in counting.bucket_bounds(counting.bucket_edges(rules.stages.mql,
                                                                  rules.stages.sql)):
        found[counting.bucket_key(low, high)] = store.count_matching(
            LeadCount(min_score=low, below_score=high))
    return {k: v for k, v in found.items() if v}


def _every_lead_counted_as_stored(store: Any, rules: Rules) -> None:
    leads = store.iter_leads(limit=10_000)
    assert leads
    for lead in leads:
        assert lead.counted == counting.counted_under(lead, rules.stages.mql, rules.stages.sql)


def _random_events(rng: random.Random, emails: list[str], start: Any, tag: str) -> list[Any]:
    out: list[Any] = []
    for n in range(60):
        email, at = rng.choice(emails), start + timedelta(hours=rng.randint(0, 72))
        kind = rng.random()
        key = f"{tag}-{n}"
        if kind < 0.25:
            out.append(form(email, key, at, kind=rng.choice(["newsletter", "demo_request"]),
                            job_title=rng.choice(["CTO", "Student", "Analyst"]),
                            industry=rng.choice(["software", "farming"])))
        elif kind < 0.6:
            out.append(opened(email, key, at, machine=rng.random() < 0.3))
        elif kind < 0.75:
            out.append(event("email_clicked", email, key, at, source="esp"))
        elif kind < 0.85:
            out.append(activity(email, key, at, name="pricing_page_visit"))
        elif kind < 0.9:
            out.append(event("email_unsubscribed", email, key, at, source="esp"))
        elif kind < 0.95:
            out.append(event("email_bounced", email, key, at, source="esp", hard=True))
        else:
            out.append(event("purchase_made", email, key, at, source="shop", order_id=key,
                             amount_minor=rng.choice([990, 25000]), currency="EUR"))
    return out


def _blind_rounds(store: Any, rules: Rules, rng: random.Random, emails: list[str],
                  start: Any, tag: str) -> None:
    """Opens alone per request: on Firestore these take the blind path (no transaction)."""
    for n in range(8):
        email = rng.choice(emails)
        ingest(store, rules, [opened(email, f"{tag}-{n}-{i}", start + timedelta(minutes=n * 9 + i),
                                     machine=i == 1) for i in range(2)],
               start + timedelta(hours=1))


def _other_rules(rules: Rules) -> Rules:
    data = rules.model_dump()
    data["version"] = f"{rules.version}-lower-bars"
    data["stages"] = {"mql": rules.stages.mql - 15, "sql": rules.stages.sql - 25}
    return Rules.model_validate(data)


def _blind_views_counted(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The blind path's view commits (Firestore), recorded as they pass through."""
    committed: list[bool] = []
    if isinstance(store, BlindAppends):
        real = store.commit_view

        def recording(*args: Any) -> bool:
            committed.append(real(*args))
            return committed[-1]

        monkeypatch.setattr(store, "commit_view", recording)
    return committed


def test_kept_statistics_equal_a_full_recount_after_every_kind_of_write(
        store: Any, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    blind = _blind_views_counted(store, monkeypatch)
    rng = random.Random(17)
    emails = [f"p{i}@kept.example" for i in range(24)]
    # GIVEN an empty store (complete from the start) and writes of every kind
    assert queries.statistics(store, store) == {}
    for day in range(3):
        start = NOW - timedelta(days=30 - day * 5)
        ingest(store, rules, _random_events(rng, emails, start, f"r{day}"), start + timedelta(
            days=3))
        _blind_rounds(store, rules, rng, emails, start + timedelta(days=3), f"b{day}")
    assert store.lead_stats() == recounted(store, rules)
    run_decay(store, rules, NOW - timedelta(days=5))  # the scheduled job: scores fade
    run_decay(store, rules, NOW)
    assert store.lead_stats() == recounted(store, rules)
    # WHEN leads are erased, one moves to a new address, and a legacy lead is re-keyed
    # into a lead that started under its keyed id
    erase_address(store, emails[0], NOW)
    erase_address(store, emails[1], NOW)
    move_lead(store, rules, emails[2], "moved@kept.example", NOW)
    legacy = emails[3]
    apply_events(store, legacy_lead_id(legacy), legacy,
                 [form(legacy, "old-form", NOW - timedelta(days=40), kind="demo_request",
                       job_title="CTO")], rules, NOW - timedelta(days=40))
    report = rekey_leads(store, rules, NOW)
    assert report.merged == 1
    assert store.lead_stats() == recounted(store, rules)
    # WHEN the rules change: first writes under them (each rebuilds its lead, blind or
    # not), then the rescore of every lead, then more writes and a decay run
    lower = _other_rules(rules)
    _blind_rounds(store, lower, rng, emails[4:8], NOW + timedelta(hours=1), "after")
    ingest(store, lower, [form(emails[9], "after-form", NOW, kind="contact")], NOW)
    rescore(store, lower, NOW + timedelta(hours=2), dry_run=False)
    ingest(store, lower, _random_events(rng, emails, NOW, "late"), NOW + timedelta(days=4))
    run_decay(store, lower, NOW + timedelta(days=40))
    # THEN the statistics documents equal a recount by aggregation queries, exactly
    kept = store.lead_stats()
    assert kept == recounted(store, lower)
    assert kept["total"] == len(store.iter_leads(limit=10_000)) >= 20
    assert {"stage:lead", "email:unsubscribed", "opens:human", "opens:machine"} <= set(kept)
    _every_lead_counted_as_stored(store, lower)
    if isinstance(store, BlindAppends):  # the blind path stored (and counted) views too
        assert sum(blind) >= 10


def _store_as_an_older_release_left_it(store: Any, rules: Rules) -> None:
    """Leads written before `counted` existed: the same documents without it."""
    ingest(store, rules, _random_events(random.Random(5), [f"o{i}@old.example"
                                                           for i in range(15)], EARLIER, "o"), NOW)
    for lead in store.iter_leads(limit=1000):
        store.put_lead(lead.model_copy(update={"counted": None}))
    if type(store).__name__ == "FirestoreStore":  # no mark yet: what an upgrade finds
        for shard in store._stats().list_documents():
            shard.delete()


def test_the_recount_counts_an_older_release_s_leads_once(store: Any, rules: Rules) -> None:
    # GIVEN leads an older release stored, without statistics keys
    _store_as_an_older_release_left_it(store, rules)
    assert store.lead_stats() is None  # incomplete: the dashboard counts by queries
    page = queries.overview(store, rules, NOW)
    assert page.notes and "recount" in page.notes[0]
    # WHEN the recount runs (in small pages), and runs again
    stored = store.count_leads()
    first = recount(store, rules, page=4)
    second = recount(store, rules, page=4)
    # THEN every lead is counted once, the statistics are complete and exact
    assert stored > 10
    assert (first.scanned, first.counted, first.complete) == (stored, stored, True)
    assert (second.counted, second.complete) == (0, True)
    assert store.lead_stats() == recounted(store, rules)
    _every_lead_counted_as_stored(store, rules)
    assert queries.overview(store, rules, NOW).notes == []


def test_a_write_beside_the_recount_is_counted_once(store: Any, rules: Rules) -> None:
    # GIVEN uncounted leads, one of which a live write counts before the recount reaches it
    _store_as_an_older_release_left_it(store, rules)
    target = store.iter_leads(limit=1000)[-1]
    ingest(store, rules, [form(target.email, "live", NOW, kind="contact")], NOW)
    assert store.get_lead(target.lead_id).counted is not None
    # WHEN the recount runs THEN it leaves that lead alone and the sums stay exact
    report = recount(store, rules)
    assert report.counted == store.count_leads() - 1
    assert store.lead_stats() == recounted(store, rules)


def test_the_page_shows_the_same_numbers_from_statistics_or_from_queries(
        store: Any, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(store, rules, _random_events(random.Random(9), [f"q{i}@page.example"
                                                           for i in range(20)], EARLIER, "q"), NOW)
    kept = queries.overview(store, rules, NOW)
    # the same store, as if its statistics were not complete yet: its own method replaced,
    # not a proxy (since Python 3.12 isinstance against a protocol ignores __getattr__)
    monkeypatch.setattr(store, "lead_stats", lambda complete_only=True: None)
    counted = queries.overview(store, rules, NOW)
    assert kept.notes == [] and counted.notes
    for name in ("total", "buckets", "stages", "grades", "email", "non_openers", "opens"):
        assert getattr(kept, name) == getattr(counted, name), name
    assert kept.total == store.count_leads() > 10


def test_a_histogram_of_older_thresholds_is_counted_by_queries(store: Any,
                                                                rules: Rules) -> None:
    # GIVEN leads counted under the rules in force, WHEN the thresholds change (no rescore)
    ingest(store, rules, _random_events(random.Random(3), [f"t{i}@t.example"
                                                           for i in range(12)], EARLIER, "t"), NOW)
    lower = _other_rules(rules)
    page = queries.overview(store, lower, NOW)
    # THEN the buckets are counted by queries under the new edges, and still add up
    edges = counting.bucket_edges(lower.stages.mql, lower.stages.sql)
    assert [b.low for b in page.buckets[1:]] == edges
    assert sum(b.count for b in page.buckets) == page.total == store.count_leads() > 5
    for b in page.buckets:
        assert b.count == store.count_matching(LeadCount(min_score=b.low, below_score=b.high))


def test_an_older_sqlite_database_is_filled_when_opened(tmp_path: Path, rules: Rules) -> None:
    # GIVEN a database an older release wrote: no statistics table, no `counted` column
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    ingest(store, rules, _random_events(random.Random(4), [f"s{i}@s.example"
                                                           for i in range(10)], EARLIER, "s"), NOW)
    store.close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE lead_stats; DROP TRIGGER lead_stats_on_write; "
                       "DROP TRIGGER lead_stats_on_delete; ALTER TABLE leads DROP COLUMN counted;")
    for lead_id, doc in conn.execute("SELECT lead_id, doc FROM leads").fetchall():
        lead = LeadState.model_validate_json(doc).model_copy(update={"counted": None})
        conn.execute("UPDATE leads SET doc = ? WHERE lead_id = ?",
                     (lead.model_dump_json(), lead_id))
    conn.commit()
    conn.close()
    # WHEN this release opens it THEN it counts those leads as uncounted, until the recount
    store = SqliteStore(path)
    try:
        assert store.lead_stats() is None
        stored = store.count_leads()
        assert dict(store._conn().execute("SELECT key, n FROM lead_stats")) == {
            counting.UNCOUNTED: stored}
        assert stored > 5 and recount(store, rules).counted == stored
        assert store.lead_stats() == recounted(store, rules)
    finally:
        store.close()


def test_the_cli_recounts_and_resumes(tmp_path: Path, rules: Rules) -> None:
    # GIVEN a SQLite store whose leads an older release wrote
    path = tmp_path / "leads.db"
    store = SqliteStore(path)
    _store_as_an_older_release_left_it(store, rules)
    stored = store.count_leads()
    last = store.iter_leads(limit=1000)[-1].lead_id
    store.close()
    url = f"sqlite:///{path}"
    try:  # WHEN the operator resumes after the last lead, then runs it whole
        resumed = CliRunner().invoke(main, ["--store", url, "dashboard", "recount", "--json",
                                            "--after", last])
        install(None)
        done = CliRunner().invoke(main, ["--store", url, "dashboard", "recount"])
    finally:
        install(None)
    # THEN the resumed run found nothing after it, and the whole run counted every lead
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["scanned"] == 0
    assert done.exit_code == 0 and f"{stored} counted now" in done.output, done.output
    reopened = SqliteStore(path)
    try:
        assert reopened.lead_stats() == recounted(reopened, rules)
    finally:
        reopened.close()


def test_concurrent_writers_on_the_same_leads_keep_the_sums_exact(
        durable_store: Any, rules: Rules) -> None:
    import threading

    store = durable_store
    emails = [f"c{i}@busy.example" for i in range(3)]
    ingest(store, rules, [form(e, f"c-form-{e}", EARLIER, kind="demo_request", job_title="CTO")
                          for e in emails], NOW)
    errors: list[BaseException] = []

    def writer(n: int) -> None:  # opens alone (Firestore: blind) and forms (transactions)
        try:
            for round_ in range(4):
                at = EARLIER + timedelta(hours=n * 4 + round_)
                ingest(store, rules, [opened(e, f"c-{n}-{round_}-{e}", at) for e in emails], NOW)
                ingest(store, rules, [form(emails[n % 3], f"c-f-{n}-{round_}", at,
                                           kind="contact")], NOW)
        except BaseException as exc:  # noqa: BLE001  (reported below, in the test's thread)
            errors.append(exc)

    # GIVEN four writers on the same three leads at once
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN every open counted once, and the sums equal a recount
    assert not errors, errors
    assert store.sum_counter("email_opened") == 4 * 4 * 3
    assert store.lead_stats(complete_only=False) == recounted(store, rules)
