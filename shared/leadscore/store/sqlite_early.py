"""Plans computed before the write lock (issue 20, the mixed load's queue).

Every write of the embedded store queues on one lock (group commit, sqlite_commits.py), and
under the mixed load of `bench/load.py` that lock was busy most of the time: a request held
it while SQLite read the lead, while the pure domain scored the events and while the rows
were staged. A plan is a pure function of its snapshot (the port's contract: Firestore
re-runs plans on contention), so it can be computed first from committed data, without the
lock; under the lock, the same rows are read again as raw text and compared. Equal rows
mean equal snapshots, so the early plan is exactly the plan the lock would have made; any
difference (another writer got there first, even one whose transaction is not committed
yet) and the plan is made again under the lock, as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from leadscore.domain.state import LeadState, Order
from leadscore.store.port import LeadSnapshot, LeadWrite, Plan, R, Tombstone

# (lead document, existing ledger keys, erasure time, (order key, record document) pairs)
Raw = tuple[str | None, frozenset[str], str | None, tuple[tuple[str, str], ...]]


def raw_state(conn: sqlite3.Connection, lead_id: str, ledger_keys: Sequence[str],
              order_keys: Sequence[str]) -> Raw:
    """The rows a plan reads, as stored (the queries of `SqliteStore._snapshot`)."""
    row = conn.execute("SELECT doc FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
    known: frozenset[str] = frozenset()
    if ledger_keys:
        marks = ",".join("?" * len(ledger_keys))
        known = frozenset(r[0] for r in conn.execute(
            f"SELECT entry_id FROM history WHERE lead_id = ? AND entry_id IN ({marks})",  # noqa: S608
            (lead_id, *ledger_keys)))
    stone = conn.execute("SELECT erased_at FROM tombstones WHERE lead_id = ?",
                         (lead_id,)).fetchone()
    orders: tuple[tuple[str, str], ...] = ()
    if order_keys:
        marks = ",".join("?" * len(order_keys))
        orders = tuple(sorted((r[0], r[1]) for r in conn.execute(
            f"SELECT order_key, doc FROM order_records WHERE lead_id = ? "  # noqa: S608
            f"AND order_key IN ({marks})", (lead_id, *order_keys))))
    return (row[0] if row else None), known, (stone[0] if stone else None), orders


def snapshot_of(lead_id: str, raw: Raw) -> LeadSnapshot:
    doc, known, erased_at, orders = raw
    return LeadSnapshot(
        lead_id=lead_id, lead=LeadState.model_validate_json(doc) if doc else None,
        known=set(known), orders={k: Order.model_validate_json(d) for k, d in orders},
        tombstone=Tombstone(erased_at=datetime.fromisoformat(erased_at)) if erased_at else None)


def early_plan(conn: sqlite3.Connection, lead_id: str, ledger_keys: Sequence[str],
               order_keys: Sequence[str],
               plan: Plan[R]) -> tuple[Raw, tuple[LeadWrite | None, R]] | None:
    """(the rows read, the plan's answer) from committed data; None if the plan raised
    (an erasure in progress, say): the lock's own read then decides."""
    raw = raw_state(conn, lead_id, ledger_keys, order_keys)
    try:
        return raw, plan(snapshot_of(lead_id, raw))
    except Exception:  # noqa: BLE001 - planned again under the lock, which raises for real
        return None
