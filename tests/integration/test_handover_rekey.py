"""A re-key (`leadscore rekey`) while a sweep is delivering the lead's stage change: the
sweep's write-back must not put the old lead id back on the change (it had: the sweeper
wrote its whole copy, read before the re-key), on memory, SQLite and the Firestore
emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW

from integration.test_rekey import NEW, OLD, _seed_legacy
from leadscore.domain.rules import Rules
from leadscore.service.rekey import rekey_leads


def test_a_sweep_that_outlasts_a_rekey_keeps_the_new_lead_id(store: Any, rules: Rules) -> None:
    # GIVEN a lead under its old id with a pending stage change, claimed by a sweeper
    _seed_legacy(store, rules)
    lease = NOW + timedelta(minutes=5)
    claimed = store.claim_handovers(NOW, lease)
    assert claimed and all(c.lead_id == OLD for c in claimed)
    # WHEN the lead is re-keyed meanwhile, and the sweeper then records its delivery
    rekey_leads(store, rules, NOW)
    for change in claimed:
        done = change.model_copy(update={"attempts": change.attempts + 1,
                                         "delivered_to": ["webhook:x"]})
        store.record_handover(done, lease)
    # THEN the changes carry the new id (an erasure or a lead page finds them under it)
    # and the delivery state the sweeper recorded
    later = store.claim_handovers(NOW + timedelta(days=9), NOW + timedelta(days=10))
    mine = [c for c in later if c.id in {c.id for c in claimed}]
    assert mine and all(c.lead_id == NEW for c in mine), [c.lead_id for c in mine]
    assert all(c.delivered_to == ["webhook:x"] for c in mine)
