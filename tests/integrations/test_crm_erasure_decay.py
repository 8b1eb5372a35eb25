"""With no CRM configured, a decay run forgets expired CRM erasures once (its tick), not in
every shard: 64 shards each reading `crm_erasures` would be 64 queries for nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW

from integrations.test_crm_outbox import EMAIL
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules


def test_with_no_crm_a_decay_run_reads_crm_erasures_at_its_tick_only(
        durable_store: Any, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.service.crm_erasure import KEEP, erasure_for

    # GIVEN a deployment without a CRM, holding an erasure recorded past its KEEP (HubSpot
    # was configured then), and every read of the erasures counted
    long_ago = NOW - KEEP - timedelta(days=1)
    durable_store.record_crm_erasures([erasure_for("crm:hubspot", lead_id_for(EMAIL), EMAIL,
                                                   long_ago, long_ago)])
    app = Container(Settings(), store=durable_store, rules=rules, clock=lambda: NOW)
    claims: list[int] = []
    claim = durable_store.claim_crm_erasures

    def counted(*args: Any, **kwargs: Any) -> Any:
        claims.append(1)
        return claim(*args, **kwargs)

    monkeypatch.setattr(durable_store, "claim_crm_erasures", counted)
    # WHEN the decay run's shards deliver their events
    for _ in range(4):
        app.dispatch([], sweep=True, shard=True)
    # THEN no shard reads the erasures
    assert claims == []
    # WHEN the run's tick delivers its own
    app.dispatch([], sweep=True)
    # THEN it sweeps them once (records are claimed one at a time: the expired one, then
    # a claim that finds none left) and the expired address is gone: the 90-day purge holds
    assert len(claims) == 2
    monkeypatch.undo()
    assert durable_store.claim_crm_erasures(NOW + KEEP, NOW + 2 * KEEP) == []
