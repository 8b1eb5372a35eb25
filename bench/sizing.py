"""Sizing on paper: 10 million leads and 100 million events a month, against the limits.

`python -m bench.sizing` (and `make bench`) prints the README section "Sizing for 10
million leads" exactly as the README holds it (a test keeps the two equal). Numbers follow
from three kinds of input, kept apart so each can be checked:

- LIMITS: documented service limits (Firestore, Cloud Run functions, Pub/Sub);
- PRICES: public list prices, each dated; they change, check them before you quote them;
- WORKLOAD and PER_REQUEST: assumptions about the traffic and about what one request costs.
  No production measurements exist yet: these are labelled parameters, informed by the
  code's write paths (DESIGN.md section 3) and the ratios of `make bench`. Change them here.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from infra.config import Sizes
from leadscore.domain.identity import SHARDS
from leadscore.service.scheduled import SHARD_MESSAGES

DAY_S = 86_400
MONTH_DAYS = 30

# -- documented limits (checked 2026-11-22) -------------------------------------------------
SUSTAINED_WRITES_PER_DOCUMENT = 1  # Firestore: about one sustained write/s per document
DATABASE_WRITES_SOFT = 10_000  # writes/s per database before asking Google (guidance)
SEQUENTIAL_INDEX_WRITES = 500  # writes/s to a collection with a sequential indexed field
RAMP_START_OPS = 500  # "500/50/5": start at 500 ops/s, then +50% every 5 minutes
DOCUMENT_MAX_BYTES = 1024 * 1024
BATCH_MAX_WRITES = 500
INDEX_ENTRIES_PER_DOCUMENT_MAX = 40_000
EVENT_FUNCTION_TIMEOUT_S = 540  # Cloud Run functions: event-driven, at most 9 minutes
CONCURRENCY_MAX = 1000
INSTANCES_PER_FUNCTION_MAX = 1000  # with quota; the default quota is lower, ask early
CLOUD_RUN_TARGET_UTILISATION = 0.6  # autoscaling keeps instances about 60% busy

# -- list prices, USD (assumed 2026-11-22 for a tier-1 region such as us-central1 or
# europe-west1; multi-regions cost about twice the Firestore figures). CHECK BEFORE QUOTING.
FIRESTORE_READ_PER_100K = 0.03
FIRESTORE_WRITE_PER_100K = 0.09
FIRESTORE_DELETE_PER_100K = 0.01
FIRESTORE_STORAGE_GIB_MONTH = 0.15
FIRESTORE_PITR_GIB_MONTH = 0.15  # PITR keeps 7 days of versions, billed like storage
FIRESTORE_BACKUP_GIB_MONTH = 0.03
RUN_VCPU_SECOND = 0.000024
RUN_GIB_SECOND = 0.0000025
RUN_PER_MILLION_REQUESTS = 0.40
PUBSUB_PER_TIB = 40.0  # at least 1 KB is billed per message
LOGGING_PER_GIB = 0.50  # beyond the free 50 GiB a month

# -- the workload (parameters) ---------------------------------------------------------------
LEADS = 10_000_000
EVENTS_PER_MONTH = 100_000_000
PEAK_DAY_FACTOR = 10  # the peak day has ten times the mean day's events
PEAK_HOUR_FACTOR = 2.5  # and its busiest hour 2.5 times that day's mean hour
DUE_FOR_DECAY_PER_DAY = 0.05  # share of leads whose review time falls on a day
LEAD_DOCUMENT_BYTES = 4_000
HISTORY_ENTRY_BYTES = 1_000  # README "Limits": about 1 KB per entry
INDEX_OVERHEAD = 1.0  # single-field index entries roughly double what documents store
STAGE_CHANGE_SHARE = 0.01  # lead groups that change stage (an outbox record, a message)
LOG_BYTES_PER_REQUEST = 1_500


@dataclass(frozen=True)
class Source:
    """One entry point's share of the events and what one request costs (parameters)."""

    function: str
    share: float  # of all events
    events_per_request: float
    events_per_lead_group: float  # events of one lead in one request (one commit)
    blind: float  # share of lead groups written blind (no read, no lock)
    cpu_s_per_request: float
    latency_s: float  # wall time of one request (store round trips)
    size: str  # which entry of infra.config.Sizes it runs as


SOURCES = (
    Source("email_webhook", 0.80, 50, 1.2, 0.97, 0.060, 0.80, "webhook"),
    Source("ingest", 0.15, 10, 1.5, 0.70, 0.020, 0.25, "webhook"),
    Source("form_submission", 0.03, 1, 1.0, 0.0, 0.008, 0.12, "webhook"),
    Source("purchase_webhook", 0.02, 1, 1.0, 0.0, 0.010, 0.15, "webhook"),
)
DECAY_LEADS_PER_SECOND_PER_SHARD = 250  # batched query pages and 500-write batches
DECAY_USABLE_S = 480  # LEADSCORE_DECAY_DEADLINE_S: leaves the rest of the 540 s for margin
LEAD_WRITES_INDEXED_FIELDS = 8  # lead fields a scoring write changes
LEADS_COMPOSITE_INDEXES = 9  # infra/firestore.indexes.json on `leads`


@dataclass(frozen=True)
class Load:
    function: str
    requests_s: float
    writes_s: float
    reads_s: float
    instances: int
    concurrency: int


@dataclass(frozen=True)
class Sizing:
    mean_events_s: float
    peak_events_s: float
    loads: tuple[Load, ...]
    decay_due: int
    decay_shards_needed: int
    decay_writes_s: float
    storage_gib_after_year: float
    monthly_cost: dict[str, float]

    @property
    def peak_writes_s(self) -> float:
        return sum(x.writes_s for x in self.loads)

    @property
    def peak_reads_s(self) -> float:
        return sum(x.reads_s for x in self.loads)

    @property
    def lead_writes_s(self) -> float:
        """Writes to `leads` documents at peak: those whose index holds timestamps."""
        return sum(self._lead_writes(x) for x in self.loads)

    def _lead_writes(self, load: Load) -> float:
        source = next(s for s in SOURCES if s.function == load.function)
        groups = load.requests_s * source.events_per_request / source.events_per_lead_group
        return groups * (2 * source.blind + (1 - source.blind))


def _load(source: Source, peak_events_s: float) -> Load:
    events = peak_events_s * source.share
    requests = events / source.events_per_request
    groups = events / source.events_per_lead_group
    # blind: ledger creates + one transform merge + one view refresh, then one re-read;
    # transactional: ledger creates + one lead write, after reading the lead and the ledger.
    writes = events + groups * (2 * source.blind + (1 - source.blind) + STAGE_CHANGE_SHARE)
    reads = groups * (source.blind + (1 - source.blind) * (1 + source.events_per_lead_group))
    size = getattr(Sizes(), source.size)
    busy = max(requests * source.latency_s / size.concurrency,  # concurrency-bound
               requests * source.cpu_s_per_request / float(size.cpu))  # CPU-bound
    instances = max(1, math.ceil(busy / CLOUD_RUN_TARGET_UTILISATION))
    return Load(source.function, requests, writes, reads, instances, size.concurrency)


def _cost(mean_events_s: float, loads: tuple[Load, ...],
          decay_due: int, storage_gib: float) -> dict[str, float]:
    scale = mean_events_s / (mean_events_s * PEAK_DAY_FACTOR * PEAK_HOUR_FACTOR)
    month_s = MONTH_DAYS * DAY_S
    writes = sum(x.writes_s for x in loads) * scale * month_s + decay_due * MONTH_DAYS
    reads = sum(x.reads_s for x in loads) * scale * month_s + decay_due * MONTH_DAYS
    requests = sum(x.requests_s for x in loads) * scale * month_s
    # request-based billing: an instance bills CPU and memory while it serves a request
    # (overlapping requests share it), 1 vCPU and 512 MiB by default
    instance_s = sum(x.requests_s * s.latency_s / x.concurrency
                     for x, s in zip(loads, SOURCES, strict=True)) * scale * month_s
    instance_s += decay_due * MONTH_DAYS / DECAY_LEADS_PER_SECOND_PER_SHARD
    messages = decay_due * MONTH_DAYS * STAGE_CHANGE_SHARE + requests * STAGE_CHANGE_SHARE
    return {
        "Firestore writes": writes / 100_000 * FIRESTORE_WRITE_PER_100K,
        "Firestore reads": reads / 100_000 * FIRESTORE_READ_PER_100K,
        "Firestore storage, PITR, backups (month 12)": storage_gib * (
            FIRESTORE_STORAGE_GIB_MONTH + FIRESTORE_BACKUP_GIB_MONTH)
        + storage_gib / 12 / 4 * FIRESTORE_PITR_GIB_MONTH,
        "Cloud Run functions (CPU, memory, requests)": instance_s * (
            RUN_VCPU_SECOND + 0.5 * RUN_GIB_SECOND) + requests / 1e6 * RUN_PER_MILLION_REQUESTS,
        "Pub/Sub": messages * 1024 / 2**40 * PUBSUB_PER_TIB,
        "Cloud Logging (request logs)": max(
            0.0, requests * LOG_BYTES_PER_REQUEST / 2**30 - 50) * LOGGING_PER_GIB,
    }


def model() -> Sizing:
    mean = EVENTS_PER_MONTH / (MONTH_DAYS * DAY_S)
    peak = mean * PEAK_DAY_FACTOR * PEAK_HOUR_FACTOR
    loads = tuple(_load(s, peak) for s in SOURCES)
    due = int(LEADS * DUE_FOR_DECAY_PER_DAY)
    per_shard = DECAY_LEADS_PER_SECOND_PER_SHARD * DECAY_USABLE_S
    shards = min(SHARDS, max(1, math.ceil(due / per_shard)))
    shards = 2 ** math.ceil(math.log2(shards))  # buckets split evenly
    monthly_growth = EVENTS_PER_MONTH * HISTORY_ENTRY_BYTES * (1 + INDEX_OVERHEAD) / 2**30
    leads_gib = LEADS * LEAD_DOCUMENT_BYTES * (1 + INDEX_OVERHEAD) / 2**30
    storage = leads_gib + 12 * monthly_growth
    cost = _cost(mean, loads, due, storage)
    return Sizing(mean, peak, loads, due, shards, shards * DECAY_LEADS_PER_SECOND_PER_SHARD,
                  storage, cost)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def markdown(s: Sizing | None = None) -> str:
    s = s or model()
    rows = "\n".join(
        f"| `{x.function}` | {_n(x.requests_s)} | {_n(x.writes_s)} | {_n(x.reads_s)} | "
        f"{x.instances} (concurrency {x.concurrency}) |" for x in s.loads)
    fan_out = 2 * LEAD_WRITES_INDEXED_FIELDS + LEADS_COMPOSITE_INDEXES
    cost_rows = "\n".join(f"| {k} | {v:,.0f} |" for k, v in s.monthly_cost.items())
    total = sum(s.monthly_cost.values())
    largest = max(s.monthly_cost, key=lambda k: s.monthly_cost[k])
    sizes = Sizes()
    enough = all(x.instances <= getattr(sizes, src.size).max_instances
                 for x, src in zip(s.loads, SOURCES, strict=True))
    held = ("hold the peak" if enough else "do NOT hold the peak: raise `max_instances`")
    decay_vs_index = ("above" if s.decay_writes_s > SEQUENTIAL_INDEX_WRITES else "within")
    return f"""## Sizing for 10 million leads

Generated by `python -m bench.sizing` (also run by `make bench`) from the limits,
dated list prices and labelled workload parameters in `bench/sizing.py`; a test keeps this
section equal to the model. No production measurements exist yet: per-request costs are
parameters, so treat every figure as an order of magnitude and change the parameters when
you have numbers.

**Workload**: {LEADS:,} leads, {EVENTS_PER_MONTH:,} events a month ({s.mean_events_s:.0f}
events/s on average); the peak day has {PEAK_DAY_FACTOR}x the mean and its busiest hour
{PEAK_HOUR_FACTOR}x that day's mean: **{_n(s.peak_events_s)} events/s at peak**. Mix: 80%
email events (batches of 50), 15% `/ingest` (batches of 10), 3% forms, 2% purchases.

| function at peak | requests/s | writes/s | reads/s | instances |
|---|---|---|---|---|
{rows}
| **database** | | **{_n(s.peak_writes_s)}** | **{_n(s.peak_reads_s)}** | |

Against Firestore's documented limits:

- **Per database**: {_n(s.peak_writes_s)} writes/s at peak is
  {s.peak_writes_s / DATABASE_WRITES_SOFT:.0%} of the {DATABASE_WRITES_SOFT:,}/s guidance.
  A new database must ramp up ("500/50/5": {RAMP_START_OPS} ops/s, +50% every 5 minutes),
  so warm it up before a campaign instead of meeting the peak cold.
- **Sequential index values**: a collection whose documents have an indexed timestamp
  accepts about {SEQUENTIAL_INDEX_WRITES} writes/s. `leads` has timestamp fields
  (`next_review_at`, `scored_at`, ...) indexed by default, and takes
  {_n(s.lead_writes_s)} lead writes/s at peak:
  **this breaks first** (hot-spotting, latency and `RESOURCE_EXHAUSTED` retries).
  Exempt the timestamps that no query filters on from single-field indexing (field
  overrides in `infra/firestore.indexes.json`) and keep `next_review_at` only in the
  `(shard, next_review_at)` composite index, whose leading shard spreads the writes.
- **Per document**: blind writes take no lock, but one lead still sustains about
  {SUSTAINED_WRITES_PER_DOCUMENT} write/s: a link scanner clicking every link of a mail
  for one address is absorbed (one commit per lead per request), a lead receiving events
  steadily faster than that is not and should be rate-limited upstream.
- **Index fan-out**: a scoring write changes about {LEAD_WRITES_INDEXED_FIELDS} indexed
  fields: about {fan_out} index entries ({LEADS_COMPOSITE_INDEXES} composite), far from
  {INDEX_ENTRIES_PER_DOCUMENT_MAX:,} per document, but each adds latency and storage.
- **Documents and batches**: lead documents stay near {LEAD_DOCUMENT_BYTES // 1000} KB of
  the {DOCUMENT_MAX_BYTES // 2**20} MiB limit (history lives in its own documents); the
  decay job writes in batches of at most {BATCH_MAX_WRITES}.

**Cloud Run functions**: instances are computed at {CLOUD_RUN_TARGET_UTILISATION:.0%}
utilisation from each request's wall time and CPU; the default sizes (`infra/config.py`:
webhooks concurrency 20 and 20 instances) {held}; raise `max_instances` for the
email webhook first, and keep concurrency at 20-80 (the limit is {CONCURRENCY_MAX}), since a
request mostly waits on Firestore. Ask for instance quota above 100 early.

**Decay**: {s.decay_due:,} leads due a day ({DUE_FOR_DECAY_PER_DAY:.0%}); at
{DECAY_LEADS_PER_SECOND_PER_SHARD} leads/s per shard within {DECAY_USABLE_S} s of the
{EVENT_FUNCTION_TIMEOUT_S} s limit that needs **{s.decay_shards_needed} shards** (the code
publishes {SHARD_MESSAGES} over {SHARDS} buckets; decay `max_instances` must be at least the
shard count), writing {_n(s.decay_writes_s)} leads/s while it runs, {decay_vs_index} the
sequential-index rate (it rewrites `next_review_at`): the index change above serves both;
until then schedule it off-peak.
Past 64 shards, raise `SHARDS` in `leadscore.domain.identity` (a re-bucketing).

**Pub/Sub**: stage changes and non-openers are a few messages a second; far below any
Pub/Sub limit. Decay shard messages are {SHARD_MESSAGES} a day.

**Monthly cost** (list prices assumed 2026-11-22, regional Firestore; check them):

| item | USD/month |
|---|---|
{cost_rows}
| **total** | **{total:,.0f}** |

Storage grows by the history: about {HISTORY_ENTRY_BYTES // 1000} KB per event, twice that
with its index entries, so {s.storage_gib_after_year:,.0f} GiB after a year; the largest item is
"{largest}". **What to change, in order**: index exemptions for timestamps (above);
single-field index exemptions for history fields no query uses; a retention rule for
history older than what rescoring needs; `max_instances` of the email webhook; then more
decay shards.
"""


def run(_: list[str] | None = None) -> None:
    print("\n" + markdown())


if __name__ == "__main__":
    print(markdown(), end="")
    sys.exit(0)
