"""The dashboard (issue 17): one overview page view at 1,000 and at 100,000 leads, on SQLite
and on the Firestore emulator.

Render time and reads per page view must stay nearly flat: the counts on the page come from
the statistics documents the write path keeps (`domain/lead_stats.py`: one SQLite query,
33 Firestore documents), the rest from a few aggregation queries over handovers (or a
daily snapshot), and only a bounded set of documents is read (the hot leads with their
recent history, the top movers, 30 snapshots, the saved back-test).
"reads" is what Firestore bills for the same queries: one read per document returned, and
one per 1,000 index entries counted or summed (at least one per aggregation query). The
emulator bills nothing, so the bench counts at the store port what each query returned
(documents, and entries matched by each count and sum); SQLite's are the same queries.

The bench leads are seeded as the write path stores them (with `counted`; on SQLite the
triggers add them up as they are inserted, on Firestore each batch carries its shards'
increments). The emulator is seeded in batched writes, and it answers queries slowly, so
it is measured at 1,000 and 10,000 leads by default (see SIZES)."""

from __future__ import annotations

import math
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.decay_run import _seed
from bench.harness import new_store
from leadscore.dashboard import pages, queries
from leadscore.domain.identity import lead_id_for
from leadscore.domain.lead_stats import counted_under
from leadscore.domain.rules import default_rules
from leadscore.domain.state import STAGES, HistoryEntry, LeadState, Stage
from leadscore.store.firestore_codec import to_doc
from leadscore.store.firestore_stats import STATS_SHARDS
from leadscore.store.port import LeadCount

# the emulator is slow to seed (~13 s for 10,000 leads) and scans documents for ordered
# queries, so 100,000 is opt-in: LEADSCORE_BENCH_DASHBOARD_FIRESTORE=1000,100000
SIZES = {"sqlite": (1_000, 100_000), "firestore": (1_000, 10_000)}
VIEWS = 5
STATS_DOCS = STATS_SHARDS + 1  # the statistics documents a page reads (Firestore's count)
STATUSES = ["active"] * 17 + ["unsubscribed", "bounced", "complained"]


class CountingStore:
    """Passes every call on; counts queries, documents returned and entries counted."""

    def __init__(self, store: Any, having: dict[str, int]) -> None:
        self.store, self.having = store, having  # leads with each counter: entries summed
        self.queries, self.documents, self.billed = 0, 0, 0

    def _counted(self, n: int) -> int:
        self.queries += 1
        self.billed += max(1, math.ceil(n / 1000))
        return n

    def _docs(self, found: Any) -> Any:
        self.queries += 1
        n = len(found) if found is not None and not isinstance(found, LeadState) else 1
        self.documents, self.billed = self.documents + n, self.billed + max(1, n)
        return found

    def count_matching(self, query: LeadCount) -> int:
        return self._counted(self.store.count_matching(query))

    def count_handovers(self, delivered: bool, attempted: bool | None = None) -> int:
        return self._counted(self.store.count_handovers(delivered, attempted))

    def count_leads(self) -> int:
        return self._counted(self.store.count_leads())

    def lead_stats(self, complete_only: bool = True) -> dict[str, int] | None:
        """SQLite: one query of a small table; Firestore: the shards and `state` in one call."""
        self.queries += 1
        self.documents, self.billed = self.documents + STATS_DOCS, self.billed + STATS_DOCS
        return self.store.lead_stats(complete_only)  # type: ignore[no-any-return]

    def mark_stats_complete(self) -> None:
        self.queries += 1
        self.store.mark_stats_complete()

    def sum_counter(self, name: str) -> int:
        """Billed like a count, by the index entries summed: the leads with the counter."""
        self.queries += 1
        self.billed += max(1, math.ceil(self.having[name] / 1000))
        return int(self.store.sum_counter(name))

    def put_snapshot(self, day: str, counts: dict[str, int]) -> None:
        self.queries += 1
        self.store.put_snapshot(day, counts)

    def snapshots(self, limit: int = 30) -> dict[str, dict[str, int]]:
        return self._docs(self.store.snapshots(limit))  # type: ignore[no-any-return]

    def newest_in_stage(self, stage: Stage, limit: int) -> list[LeadState]:
        return self._docs(self.store.newest_in_stage(stage, limit))  # type: ignore[no-any-return]

    def top_movers(self, up: bool, limit: int) -> list[LeadState]:
        return self._docs(self.store.top_movers(up, limit))  # type: ignore[no-any-return]

    def put_calibration(self, report: dict[str, Any]) -> None:
        self.store.put_calibration(report)

    def latest_calibration(self) -> dict[str, Any] | None:
        self.queries += 1
        self.documents, self.billed = self.documents + 1, self.billed + 1  # one get
        return self.store.latest_calibration()  # type: ignore[no-any-return]

    def list_leads(self, **filters: Any) -> list[LeadState]:
        return self._docs(self.store.list_leads(**filters))  # type: ignore[no-any-return]

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        return self._docs(self.store.history(lead_id, limit=limit))  # type: ignore[no-any-return]


def _leads(count: int, now: datetime, mql: float, sql: float) -> list[LeadState]:
    rng = random.Random(count)
    out = []
    for i in range(count):
        email = f"lead{i}@bench.example"
        score = rng.gauss(35, 30)
        stage = "sql" if score >= 80 else "mql" if score >= 40 else "lead"
        if rng.random() < 0.02:
            stage = STAGES[3]
        human, machine = rng.choice([0, 0, 1, 2, 5]), rng.choice([0, 0, 0, 1, 3])
        out.append(LeadState(
            lead_id=lead_id_for(email), email=email, score=score, stage=stage,
            grade=rng.choice("ABCD") + rng.choice("1234"), email_status=rng.choice(STATUSES),
            non_opener=rng.random() < 0.1, created_at=now - timedelta(days=rng.randint(1, 90)),
            stage_since=now - timedelta(minutes=rng.randint(1, 90 * 1440)),
            movement=round(rng.gauss(0, 8), 2) if rng.random() < 0.4 else 0.0,
            counters={k: v for k, v in (("email_opened", human),
                                        ("email_opened_machine", machine)) if v},
            scored_at=now))
        out[-1].counted = counted_under(out[-1], mql, sql)  # as the write path stores it
    return out


def _seed_counted(store: Any, leads: list[LeadState]) -> None:
    """SQLite: the adapter's own inserts (its triggers count them). Firestore: batches of
    lead documents, each with the increments of its shards, as the adapter's writes do."""
    if type(store).__name__ == "SqliteStore":
        _seed(store, leads)
        return
    for start in range(0, len(leads), 400):  # 400 leads and at most 32 shards a batch
        chunk = leads[start:start + 400]
        batch = store._client.batch()
        for lead in chunk:
            batch.set(store._leads.document(lead.lead_id), to_doc(lead))
        store._stage_counts(batch, *[(x.lead_id, None, x.counted) for x in chunk])
        batch.commit()


@dataclass
class Row:
    kind: str
    size: int
    seed_s: float
    first_s: float  # the first view of the day also takes the daily snapshot
    view_s: float
    queries: int
    documents: int
    reads: int


def measure(kind: str, size: int) -> Row:
    """One page view on a store of `size` leads (and its hot leads' history: none here,
    the bench leads have no events, so `history` reads are bounded by HOT_HISTORY anyway)."""
    now = datetime.now(UTC)
    rules = default_rules()
    with tempfile.TemporaryDirectory() as folder:
        store = new_store(kind, Path(folder))
        leads = _leads(size, now, rules.stages.mql, rules.stages.sql)
        having = {name: sum(1 for x in leads if x.counters.get(name, 0) > 0)
                  for name in ("email_opened", "email_opened_machine")}
        start = time.perf_counter()
        _seed_counted(store, leads)
        seeded = time.perf_counter() - start
        start = time.perf_counter()
        pages.overview(queries.overview(store, rules, now), "csrf")  # takes today's snapshot
        first = time.perf_counter() - start
        counting = CountingStore(store, having)
        html = pages.overview(queries.overview(counting, rules, now), "csrf")  # type: ignore[arg-type]
        views = []  # the median of a few views: one view is a millisecond, a hiccup is more
        for _ in range(VIEWS):
            start = time.perf_counter()
            pages.overview(queries.overview(store, rules, now), "csrf")
            views.append(time.perf_counter() - start)
        later = statistics.median(views)
        assert f">{size}<" in html
        store.close()
    return Row(kind, size, seeded, first, later, counting.queries, counting.documents,
               counting.billed)


def _sizes(kind: str) -> tuple[int, ...]:
    chosen = os.environ.get(f"LEADSCORE_BENCH_DASHBOARD_{kind.upper()}")
    return tuple(int(x) for x in chosen.split(",")) if chosen else SIZES[kind]


def run(kinds: list[str]) -> list[Row]:
    print("\n## Dashboard: one overview page view, reads per page at 1,000 and 100,000 leads")
    print(f"{'store':<10}{'leads':>9}{'seed s':>8}{'first s':>9}{'view s':>8}{'queries':>9}"
          f"{'docs':>6}{'reads':>7}")
    rows: list[Row] = []
    for kind in kinds:
        mine = [measure(kind, size) for size in _sizes(kind)]
        for r in mine:
            print(f"{kind:<10}{r.size:>9,}{r.seed_s:>8.1f}{r.first_s:>9.3f}{r.view_s:>8.4f}"
                  f"{r.queries:>9}{r.documents:>6}{r.reads:>7}")
        low, high = mine[0], mine[-1]
        print(f"{kind:<10}{'ratio':>9} {high.size // low.size}x leads:{'':>8}"
              f"{high.view_s / low.view_s:>8.1f}{high.queries / low.queries:>9.1f}"
              f"{high.documents / max(1, low.documents):>6.1f}{high.reads / low.reads:>7.1f}")
        rows += mine
    print("queries, documents and reads stay the same at any size: the counts come from the "
          "statistics documents\n(one SQLite query, 33 Firestore documents) kept by the "
          "write path; the 3 handover counts are\naggregations over the outbox (empty here).")
    return rows
