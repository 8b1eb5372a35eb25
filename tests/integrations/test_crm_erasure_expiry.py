"""With no CRM configured, a sweep forgets the CRM erasures past their `expires_at` (their
addresses must not be kept), claimed by that time: claimed by due time, the first 100 due
could all be unexpired ones, and the expired would wait behind them for days. On memory,
SQLite and the Firestore emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.service.crm_erasure import KEEP, erase_in_crm, erasure_for

WAITING, EXPIRED = 150, 5


def test_with_no_crm_expired_erasures_go_even_behind_more_than_a_sweep_of_due_ones(
        store: Any) -> None:
    # GIVEN more unexpired erasures than a sweep claims, all due before a few expired ones
    waiting = [erasure_for("crm:hubspot", f"l{i}", f"p{i}@example.com", NOW - timedelta(days=2),
                           NOW - timedelta(days=2, seconds=-i)) for i in range(WAITING)]
    expired = [erasure_for("crm:hubspot", f"x{i}", f"x{i}@example.com",
                           NOW - KEEP - timedelta(days=1), NOW - timedelta(hours=1))
               for i in range(EXPIRED)]
    store.record_crm_erasures(waiting + expired)
    # WHEN a sweep runs with no CRM configured
    report = erase_in_crm(store, {}, NOW)
    # THEN every expired record is forgotten, and the unexpired ones are left, still due
    assert report.given_up == EXPIRED
    assert store.claim_crm_erasures(NOW, NOW, limit=500, expired=True) == []
    left = store.claim_crm_erasures(NOW, NOW + timedelta(minutes=1), limit=500)
    assert sorted(i.id for i in left) == sorted(i.id for i in waiting)
