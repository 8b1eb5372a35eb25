"""Anonymous visitors expire: the daily decay tick purges them where no TTL policy does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import form
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules
from leadscore.service import scheduled
from leadscore.service.writes import apply_events
from leadscore.store.port import VisitorEvent


def test_the_daily_tick_purges_expired_visitors_and_keeps_the_rest(store: Any) -> None:
    # GIVEN one visitor whose events expired yesterday and one whose expire tomorrow
    store.save_visitor_events([
        VisitorEvent(key="v-old", ledger_key="k1", event={"type": "activity"},
                     expires_at=NOW - timedelta(days=1)),
        VisitorEvent(key="v-new", ledger_key="k2", event={"type": "activity"},
                     expires_at=NOW + timedelta(days=1))])
    # WHEN the scheduled job's daily tick runs
    scheduled.handle(store, default_rules(), NOW, None, inline_limit=100, deadline_s=60,
                     shard_topic=None, publish=None, on_flagged=None)
    # THEN only the expired visitor is gone
    assert store.visitor_events("v-old") == []
    assert [e.ledger_key for e in store.visitor_events("v-new")] == ["k2"]


def test_the_daily_tick_takes_the_dashboard_snapshot(store: Any) -> None:
    # GIVEN one newsletter lead and no snapshot yet
    email = "snap@example.com"
    apply_events(store, lead_id_for(email), email, [form(email, "f1", NOW, kind="newsletter")],
                 default_rules(), NOW)
    assert store.snapshots(limit=30) == {}
    # WHEN the daily tick runs
    scheduled.handle(store, default_rules(), NOW, None, inline_limit=100, deadline_s=60,
                     shard_topic=None, publish=None, on_flagged=None)
    # THEN today's counts are stored, and they count that lead
    days = store.snapshots(limit=30)
    assert len(days) == 1
    counts = next(iter(days.values()))
    assert counts["stage:lead"] == 1 and sum(v for k, v in counts.items()
                                               if k.startswith("grade:")) == 1
