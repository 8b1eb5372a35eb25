"""Erasure records expire on every adapter as Firestore's TTL policies expire them there:
tombstones (and moved records) once `TOMBSTONE_KEPT` has passed since the erasure, erased
orders' markers at their `expires_at`, purged by the decay tick (memory, SQLite and the
Firestore emulator, which runs no TTL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.domain.rules import Rules
from leadscore.service.scheduled import handle
from leadscore.store.port import TOMBSTONE_KEPT

SECOND = timedelta(seconds=1)


def test_tombstones_go_once_kept_long_enough_and_not_before(store: Any) -> None:
    # GIVEN erasures just younger and just older than TOMBSTONE_KEPT, and an old move
    store.erase("young", erased_at=NOW - TOMBSTONE_KEPT + SECOND)
    store.erase("old", erased_at=NOW - TOMBSTONE_KEPT - SECOND)
    store.move_away("moved", "elsewhere", NOW - TOMBSTONE_KEPT - SECOND)
    # WHEN the expired ones are purged
    assert store.purge_expired_erasures(NOW) == 2
    # THEN only the young tombstone is left, and purging again finds nothing
    assert store.tombstone("young") is not None
    assert store.tombstone("old") is None and store.tombstone("moved") is None
    assert store.purge_expired_erasures(NOW) == 0


def test_erased_orders_markers_go_at_their_expiry_and_other_aliases_stay(store: Any) -> None:
    # GIVEN two erased orders' markers either side of now, and an alias with no expiry
    store.record_aliases({"erased:due": "erased"}, expires_at=NOW - SECOND)
    store.record_aliases({"erased:later": "erased"}, expires_at=NOW + SECOND)
    store.record_aliases({"stripe:pi_1": "stripe:in_1"})
    # WHEN the expired records are purged
    assert store.purge_expired_erasures(NOW) == 1
    # THEN the due marker is gone, the others stay
    assert store.order_alias("erased:due") is None
    assert store.order_alias("erased:later") == "erased"
    assert store.order_alias("stripe:pi_1") == "stripe:in_1"


def test_the_decay_tick_purges_expired_tombstones(store: Any, rules: Rules) -> None:
    # GIVEN an erasure older than TOMBSTONE_KEPT and a recent one
    store.erase("old", erased_at=NOW - TOMBSTONE_KEPT - SECOND)
    store.erase("recent", erased_at=NOW - timedelta(days=1))
    # WHEN the daily tick runs
    handle(store, rules, NOW, None, inline_limit=10, deadline_s=30.0, shard_topic=None,
           publish=None, on_flagged=None)
    # THEN the old tombstone is gone, the recent one kept
    assert store.tombstone("old") is None and store.tombstone("recent") is not None
