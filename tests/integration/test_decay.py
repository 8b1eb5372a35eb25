"""The decay job on every store, with a controlled clock (issue 6)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import event, form, opened
from conftest import NOW, another_store_like, fail_on_call

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service import writes as uow
from leadscore.service.decay import run_decay
from leadscore.service.writes import apply_events

HOT = "hot@acme.com"
DAY = timedelta(days=1)


def hot_lead(store: Any, rules: Rules, at: Any = NOW) -> Any:
    """An sql lead: a CTO at a SaaS company who asked for a demo and attended a webinar."""
    events = [form(HOT, "demo", at, kind="demo_request", job_title="CTO", industry="SaaS"),
              event("activity", HOT, "webinar", at, source="tracker",
                    activity="webinar_attended")]
    apply_events(store, lead_id_for(HOT), HOT, events, rules, at)
    return store.get_lead(lead_id_for(HOT))


def views(store: Any) -> list[tuple[Any, ...]]:
    return sorted((x.lead_id, round(x.score, 6), round(x.fit_score, 6), x.stage, x.grade,
                   x.non_opener, x.non_opener_since) for x in store.list_leads(limit=1000))


def test_a_lead_active_today_keeps_its_points(store: Any, rules: Rules) -> None:
    before = hot_lead(store, rules)
    summary = run_decay(store, rules, NOW)
    assert summary.decayed == 0
    assert store.get_lead(before.lead_id).score == before.score


def test_ninety_silent_days_fade_engagement_and_demote_sql_to_mql(store: Any,
                                                                  rules: Rules) -> None:
    # GIVEN an sql lead
    before = hot_lead(store, rules)
    assert before.stage == "sql"
    # WHEN the job runs 90 days later (two half-lives)
    summary = run_decay(store, rules, NOW + 90 * DAY)
    after = store.get_lead(before.lead_id)
    # THEN engagement is a quarter, fit unchanged, the stage goes down, and history says why
    assert after.engagement_score == pytest.approx(before.engagement_score / 4, abs=1e-3)
    assert after.fit_score == before.fit_score
    assert (after.stage, summary.stages_down, summary.decayed) == ("mql", 1, 1)
    last = store.history(before.lead_id)[-1]
    assert last.kind == "decay" and last.delta == pytest.approx(after.score - before.score)
    assert "stage sql -> mql" in last.reason


def test_two_runs_at_the_same_moment_equal_one(store: Any, rules: Rules) -> None:
    hot_lead(store, rules)
    run_decay(store, rules, NOW + 30 * DAY)
    once, history = views(store), len(store.history(lead_id_for(HOT)))
    second = run_decay(store, rules, NOW + 30 * DAY)
    assert second.decayed == 0
    assert views(store) == once and len(store.history(lead_id_for(HOT))) == history


def test_a_missed_week_catches_up_exactly(store: Any, rules: Rules, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    # GIVEN the same leads in two stores
    other = another_store_like(store, tmp_path, request)
    for target in (store, other):
        hot_lead(target, rules)
        apply_events(target, lead_id_for("b@b.com"), "b@b.com",
                            [opened("b@b.com", "o", NOW - 3 * DAY)], rules, NOW)
    # WHEN one runs daily for a week and the other only on the last day
    for day in range(1, 8):
        run_decay(store, rules, NOW + day * DAY)
    run_decay(other, rules, NOW + 7 * DAY)
    # THEN both hold the same leads
    assert views(store) == views(other)


def test_a_crash_part_way_then_a_rerun_equals_a_clean_run(
        store: Any, rules: Rules, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    clean = another_store_like(store, tmp_path, request)
    for target in (store, clean):
        for i in range(6):
            email = f"lead{i}@acme.com"
            apply_events(target, lead_id_for(email), email,
                                [form(email, f"f{i}", NOW, kind="webinar")], rules, NOW)
    run_decay(clean, rules, NOW + 40 * DAY)
    # GIVEN a store that fails on the fourth lead
    fail_on_call(monkeypatch, uow, "refresh_view", 4, OSError("connection reset"))
    with pytest.raises(OSError):
        run_decay(store, rules, NOW + 40 * DAY)
    monkeypatch.undo()
    # WHEN the job runs again
    rerun = run_decay(store, rules, NOW + 40 * DAY)
    # THEN it finishes the rest and the leads equal a clean run's
    assert rerun.decayed == 3
    assert views(store) == views(clean)


def test_a_dry_run_writes_nothing(store: Any, rules: Rules) -> None:
    hot_lead(store, rules)
    before, history = views(store), len(store.history(lead_id_for(HOT)))
    summary = run_decay(store, rules, NOW + 90 * DAY, dry_run=True)
    assert (summary.decayed, summary.stages_down) == (1, 1)
    assert views(store) == before and len(store.history(lead_id_for(HOT))) == history


def _sent(store: Any, rules: Rules, email: str, days_ago: int) -> None:
    apply_events(store, lead_id_for(email), email, [event(
        "email_delivered", email, f"d-{email}", NOW - days_ago * DAY, source="esp")], rules,
        NOW - days_ago * DAY)


def test_non_openers(store: Any, rules: Rules) -> None:
    _sent(store, rules, "silent@a.com", 210)  # sent 7 months ago, never opened
    _sent(store, rules, "robot@a.com", 210)  # only machine opens
    apply_events(store, lead_id_for("robot@a.com"), "robot@a.com",
                       [opened("robot@a.com", "m", NOW - 100 * DAY, machine=True)], rules,
                       NOW - 100 * DAY)
    _sent(store, rules, "clicker@a.com", 210)  # a click 5 months ago
    apply_events(store, lead_id_for("clicker@a.com"), "clicker@a.com", [event(
        "email_clicked", "clicker@a.com", "c", NOW - 150 * DAY, source="esp")], rules,
        NOW - 150 * DAY)
    apply_events(store, lead_id_for("quiet@a.com"), "quiet@a.com",  # never sent anything
                       [form("quiet@a.com", "f", NOW - 300 * DAY)], rules, NOW - 300 * DAY)
    summary = run_decay(store, rules, NOW)
    flagged = {x.email for x in store.list_leads(non_opener=True)}
    assert flagged == {"silent@a.com", "robot@a.com"} and summary.flagged_non_openers == 2
    silent = store.get_lead(lead_id_for("silent@a.com"))
    assert silent.non_opener_since == NOW - 210 * DAY + timedelta(
        days=rules.non_opener_after_days)
    # WHEN a flagged lead opens an email, the flag clears at once
    apply_events(store, silent.lead_id, silent.email, [opened(silent.email, "o", NOW)], rules,
                       NOW)
    assert store.get_lead(silent.lead_id).non_opener is False
    assert {x.email for x in store.list_leads(non_opener=True)} == {"robot@a.com"}
