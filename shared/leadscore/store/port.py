"""The one persistence port: primitives only. Every adapter passes
tests/integration/test_store_contract.py.

An adapter reads, commits what it is told, and answers queries; it never decides what a
write contains (no scoring, no de-duplication, no stage logic: `leadscore.service.writes`
does all of that, once, for every adapter). The primitives:

- `read(lead_id, ledger_keys, with_history)`: a lead, which of the given ledger keys exist,
  and (for rebuilds) its whole history; outside any transaction, with a `version` token.
- `transact(lead_id, ledger_keys, plan, with_history, order_keys)`: the unit of work. Inside one
  atomic transaction the adapter reads the same snapshot, calls the service's `plan`, and
  commits the `LeadWrite` it returns: new history entries (create if absent), the lead's
  document or view fields, outbox records (create if absent) and order index entries, all
  or nothing. The records of the orders named in `order_keys` are read in the same
  transaction (`LeadSnapshot.orders`) and `LeadWrite.order_records` written with the lead:
  orders live beside the lead, never in its document (it must stay bounded), and the
  lead's purchase aggregates stay exact because both are read and written together.
  On contention the adapter re-reads and calls `plan` again (Firestore: the
  transaction retries; SQLite: `BEGIN IMMEDIATE` makes it never stale; memory: a lock), so
  `plan` must be a pure function of the snapshot. If it still cannot commit it raises
  `TransientError` (HTTP 503: the sender retries).
- `BlindAppends`, optional (Firestore): the blind write path. `append_blind` commits
  ledger creates plus commutative field transforms in one batch with no read, raising
  `LedgerConflict` if any ledger entry exists (nothing is written; the service drops the
  known keys and tries again); `commit_view` then stores a view computed from a `read`,
  only if the lead has not changed since (`version`). SQLite and memory serialise writers
  anyway, so they offer only `transact` and the service uses it for every write.
- queries and housekeeping: get_lead, history, list_leads, iter_leads, due_for_review,
  pending_handovers, record_handover, claim_token, order_owner, orders_of, put_lead, erase,
  tombstone, move_away (or its steps: `record_move`, then `erase`; `forget_move`), close,
  and the decay tick's purges of what Firestore expires by TTL
  (`purge_expired_erasures`, `purge_used_tokens`). Every snapshot `transact` reads carries
  the lead id's `Tombstone` (an erasure, or a move's record: `moved_to`).
- the order alias index: `order_alias` and `record_aliases`. A platform may name one payment
  by several ids (Stripe: invoice, payment intent, charge); an alias maps one of them
  (`stripe:pi_...`) to the order key the payment is counted under (`stripe:in_...`), or to
  the next id of a chain (charge -> payment intent -> invoice). Aliases that come with a
  purchase are written in the lead's commit (`LeadWrite.aliases`, remembered with the lead
  so erasure removes them); payloads that only link two ids use `record_aliases`.

History order, the same on every adapter: (at, entry_id) ascending; with `limit`, the
newest `limit` entries in that order.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from leadscore.domain.outbox import StageChange
from leadscore.domain.state import HistoryEntry, LeadState, Order, Stage

R = TypeVar("R")


class LedgerConflict(Exception):
    """A blind append met a ledger entry that exists already: nothing was written."""


# Tombstones, and the markers of the orders an erasure forgot, outlive every provider's retry
# window and the backups; they hold keyed hashes and a time, no address.
TOMBSTONE_KEPT = timedelta(days=400)


class Tombstone(BaseModel):
    """An erasure, kept under the lead id (a keyed hash: no personal data) forever.

    Events dated at or before `erased_at` never write again; `settled` is False while the
    erasure is still deleting (Firestore), when nothing may start a new lead.

    With `moved_to` it is no erasure but a move (Mailchimp's `upemail`, `service/moves.py`):
    the lead went to that lead id at `erased_at`, and every write for this id goes there
    (`service/writes.py`), so a provider's retry of an old-address event is de-duplicated
    on the new lead instead of starting a lead again here. It expires like a tombstone.
    It never replaces an erasure's tombstone (`record_move`), an erasure replaces it."""

    erased_at: datetime
    settled: bool = True
    moved_to: str | None = None

    def restarted(self, lead: LeadState) -> bool:
        """Whether `lead` was started again with consent after this erasure (its mark,
        `restarted_after`); a lead under a tombstone without it is a leftover. A lead an
        earlier release started again has no mark: created after the erasure with a form
        (no leftover has one: an erasure's is created before it, a blind batch has none)."""
        if lead.restarted_after is not None:
            return lead.restarted_after >= self.erased_at
        return (lead.created_at is not None and lead.created_at > self.erased_at
                and lead.counters.get("form_submitted", 0) > 0)


# The port's own values (a snapshot, a write, transforms, a count query, a scan page) are
# plain dataclasses, not pydantic models: only the adapters and the service build them, from
# values already validated (stored documents are read into `LeadState`, `HistoryEntry`...),
# so nothing is left to validate, and a dataclass costs a fraction of a model's class
# building at every cold start (issue 20; ARCHITECTURE.md "Where pydantic is used").
@dataclass(kw_only=True)
class LeadSnapshot:
    """What a plan is computed from."""

    lead_id: str
    lead: LeadState | None
    tombstone: Tombstone | None = None  # read in the same transaction as the lead
    known: set[str] = field(default_factory=set)  # the asked ledger keys that exist
    history: list[HistoryEntry] = field(default_factory=list)  # only when asked for
    version: Any = None  # opaque: the adapter's token for "unchanged since this read"
    orders: dict[str, Order] = field(default_factory=dict)  # the asked order records that exist


@dataclass(kw_only=True)
class LeadWrite:
    """One planned change to one lead, committed atomically by `transact`.

    `fields` says how the lead is written: "merge" the whole document over the stored one,
    "replace" it (a rescore drops the old rules' keys), or only its "view" fields (a
    refresh). History entries and outbox records are created if absent; `orders` are the
    order keys this lead now owns."""

    lead: LeadState
    fields: Literal["merge", "replace", "view"] = "merge"
    history: list[HistoryEntry] = field(default_factory=list)
    outbox: list[StageChange] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> order key, with the lead
    order_records: dict[str, Order] = field(default_factory=dict)  # order key -> its record


@dataclass(kw_only=True)
class FieldTransforms:
    """Commutative changes to a lead's fields, written blind (no read), from any writer.

    `increment` adds to keys of map fields (`eng_acc`, `counters`...), `maximum` and
    `minimum` keep the later or earlier of a top-level time, `set` writes plain values."""

    set: dict[str, Any] = field(default_factory=dict)
    increment: dict[str, dict[str, float]] = field(default_factory=dict)
    maximum: dict[str, datetime] = field(default_factory=dict)
    minimum: dict[str, datetime] = field(default_factory=dict)


Plan = Callable[[LeadSnapshot], tuple[LeadWrite | None, R]]


class LeadStore(Protocol):
    # -- the unit of work's primitives ----------------------------------------------------
    def read(self, lead_id: str, ledger_keys: Sequence[str] = (),
             with_history: bool = False) -> LeadSnapshot: ...

    def transact(self, lead_id: str, ledger_keys: Sequence[str], plan: Plan[R],
                 with_history: bool = False, order_keys: Sequence[str] = ()) -> R:
        """Read a snapshot, call `plan`, commit its write (if any) atomically; `plan` may run
        more than once. Returns what the last `plan` call returned beside its write."""
        ...

    # -- queries --------------------------------------------------------------------------
    def get_lead(self, lead_id: str) -> LeadState | None: ...

    def history(self, lead_id: str, limit: int | None = None) -> list[HistoryEntry]:
        """The lead's history in (at, entry_id) order; with `limit`, its newest entries."""
        ...

    def list_leads(self, stage: Stage | None = None, min_score: float | None = None,
                   limit: int = 100, non_opener: bool | None = None, grade: str | None = None,
                   after: tuple[float, str] | None = None) -> list[LeadState]:
        """Leads by stored score, highest first (ties by lead id, descending); `after` is the
        (score, lead_id) of the last lead of the previous page."""
        ...

    def pending_handovers(self, now: datetime, limit: int = 100) -> list[StageChange]:
        """Stage changes not yet delivered whose next attempt is due."""
        ...

    def record_handover(self, change: StageChange, lease: datetime | None = None) -> bool:
        """Store a handover's delivery state (attempts, next attempt, delivered), only if
        it still exists (an erasure while it was being delivered deleted it); whether it was
        written. With `lease` (a sweeper's claim's end), only while the stored change is
        still that claim: not closed and its `next_attempt_at` equal to `lease`, checked
        atomically with the write, so a sweeper that outlasted its lease never overwrites
        what the next claimer did. The stored `lead_id` is kept (a re-key may have moved the
        change since the sweeper read it)."""
        ...

    def count_leads(self) -> int:
        """How many leads there are, by an aggregation (Firestore `count()`, SQL `COUNT`),
        never by reading them: progress bars and dashboards use it."""
        ...

    def iter_leads(self, after_id: str | None = None, limit: int = 500) -> list[LeadState]:
        """Every lead, a page at a time in lead id order (rescoring, reports, exports)."""
        ...

    def due_for_review(self, now: datetime, limit: int = 500,
                       buckets: Sequence[int] | None = None) -> list[LeadState]:
        """Leads whose view is stale at `now`, oldest first, by an indexed query (never a
        scan); `buckets` limits them to those shards (`identity.shard_of`)."""
        ...

    def put_lead(self, lead: LeadState) -> None:
        """Overwrite one lead document (seeding, benchmarks' raw write rate)."""
        ...

    def claim_token(self, token: str, owner: str, expires_at: datetime | None = None) -> bool:
        """Remember a one-use signing token; True if it is new or was claimed by `owner`
        before (a retry of the same delivery), False if another request used it (a replay).
        `expires_at`: when no signature carrying it can be accepted any more, set by its
        first claim (`providers/base.py` `TOKEN_KEPT`); None keeps it for good."""
        ...

    def purge_used_tokens(self, now: datetime) -> int:
        """Delete the claimed tokens whose `expires_at` is at or before `now`; how many.
        Firestore's TTL policy on `expires_at` does this in production (infra/data_care.py):
        its method deletes at most a page, what the TTL has not reached yet."""
        ...

    def order_owner(self, order_key: str) -> str | None:
        """The lead id that paid `platform:order_id`, for refunds that name no buyer."""
        ...

    def orders_of(self, lead_id: str) -> dict[str, Order]:
        """Every order record of the lead, by order key (the leads API, tests, exports)."""
        ...

    def order_record(self, lead_id: str, order_key: str) -> Order | None:
        """One order record of the lead (a refund checks its order's currency first)."""
        ...

    def order_alias(self, alias: str) -> str | None:
        """The key `platform:id` stands for (an order key or the next alias), if recorded."""
        ...

    def record_aliases(self, aliases: Mapping[str, str],
                       expires_at: datetime | None = None) -> None:
        """Remember ids that stand for another (facts that never change); an alias already
        written with a lead keeps its lead. `expires_at`: erased orders' markers, which no
        lead owns, go when the erasure's tombstone does (Firestore: a TTL policy; SQLite and
        memory: `purge_expired_erasures`, from the decay tick)."""
        ...

    def erase(self, lead_id: str, erased_at: datetime | None = None) -> bool:
        """Delete the lead, its history, its orders, its order index entries (and the aliases
        written with it) and its handovers; True if there was anything to delete. With
        `erased_at` (an erasure, not a move) also keep a `Tombstone`, atomically with respect
        to `transact` (SQLite and memory: one transaction; Firestore: the tombstone is
        written first and every transaction reads it, see the adapter)."""
        ...

    def tombstone(self, lead_id: str) -> Tombstone | None:
        """The lead id's erasure (or move), if there was one."""
        ...

    def purge_expired_erasures(self, now: datetime) -> int:
        """Delete the tombstones (and moved records) erased `TOMBSTONE_KEPT` or longer before
        `now`, and the erased orders' markers whose `expires_at` is at or before `now`; how
        many went. Firestore's TTL policies do this in production (infra/data_care.py): its
        method deletes at most a page of each, what the TTL has not reached yet."""
        ...

    def move_away(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        """Delete the lead like `erase` and keep a moved record under its id (a `Tombstone`
        with `moved_to`), atomically with respect to `transact` like an erasure's
        tombstone; moved records that pointed at `lead_id` now point at `moved_to` (one hop,
        always). Doing it again changes nothing more. An erasure (`erase` with `erased_at`)
        of `moved_to` deletes the moved records pointing at it; of `lead_id`, replaces its
        moved record with a plain tombstone. True if there was anything to delete.
        `record_move`'s refusals hold here too (then nothing is recorded, nothing deleted)."""
        ...

    def record_move(self, lead_id: str, moved_to: str, moved_at: datetime) -> bool:
        """`move_away`'s moved record alone, the lead left in place (`service/moves.py`
        writes it first, so writes racing the move follow it, then replays and deletes),
        atomically with respect to `transact` and `erase`. Refused (False, nothing written)
        when `lead_id` holds an erasure's tombstone (an erasure is never replaced by a
        moved record: the erased person stays erased), or when `moved_to` holds one and no
        lead started again with consent (a record there would send writes nowhere)."""
        ...

    def forget_move(self, lead_id: str, moved_to: str) -> bool:
        """Delete `lead_id`'s moved record if it still points at `moved_to` (a move that
        found nothing at its target); True if it did."""
        ...


    def erase_leftover(self, lead_id: str) -> bool:
        """Delete the lead like `erase` (no new tombstone), only if it is a leftover of an
        erasure: under a tombstone and not `Tombstone.restarted`. The check and the lead
        document's deletion are one transaction, so a lead started again with consent is
        never deleted. True if a leftover was deleted."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class UnitOfWork(Protocol):
    """Optional (SQLite): the writes of one request in one transaction. Every `transact`
    inside `unit_of_work()` stays atomic on its own, and the block commits once at its end
    or, if it raises, leaves nothing written at all (SQLite's cost is the commit, so a
    batch of 100 leads pays one instead of 100)."""

    def unit_of_work(self) -> AbstractContextManager[None]: ...


@runtime_checkable
class BlindAppends(Protocol):
    """The optional blind write path (Firestore, DESIGN.md §3)."""

    def append_blind(self, lead_id: str, entries: Sequence[HistoryEntry],
                     transforms: FieldTransforms) -> None:
        """Create every ledger entry and apply the transforms in one atomic batch; raise
        `LedgerConflict` (nothing written) if an entry exists already."""
        ...

    def commit_view(self, snapshot: LeadSnapshot, lead: LeadState,
                    outbox: Sequence[StageChange]) -> bool:
        """Store `lead`'s view fields and the outbox records, only if the lead is unchanged
        since `snapshot` was read; False (nothing written) if another writer came first."""
        ...


# -- website visitors (the `track` function) -------------------------------------------------
class VisitorEvent(BaseModel):
    """One anonymous event waiting for its visitor to be identified: its own record, so a
    visitor's history never grows one document (a tracked message is at most 32 KB)."""

    key: str  # the visitor key (`tracking.identity.visitor_key`), never a raw id
    ledger_key: str  # the ledger key the event will have on the lead
    event: dict[str, Any]  # the canonical event's fields as JSON, without an address
    expires_at: datetime


class VisitorLink(BaseModel):
    """What a visitor key is known to be: a lead (and its address), or another visitor key
    its events were pooled under (an alias) until that one is identified."""

    key: str
    lead_id: str | None = None
    email: str | None = None
    alias_of: str | None = None
    expires_at: datetime


@runtime_checkable
class VisitorStore(Protocol):
    """Visitor records, apart from the leads (Firestore: `{collection}_visitors`, with a TTL
    policy on `expires_at`). Orchestration lives in `service/visitors.py`."""

    def save_visitor_events(self, events: Sequence[VisitorEvent]) -> None:
        """Store each event under (key, ledger_key); storing one again changes nothing."""
        ...

    def visitor_events(self, key: str, limit: int | None = None) -> list[VisitorEvent]:
        """The stored events of one visitor key, oldest stored first (`expires_at`, then
        `ledger_key`), at most `limit` (expired ones may still be listed)."""
        ...

    def trim_visitor_events(self, keys: Sequence[str], keep: int) -> int:
        """Delete all but the `keep` most recently stored events of each visitor key (the
        last in `visitor_events`' order); the number deleted."""
        ...

    def drop_visitor_events(self, key: str, ledger_keys: Sequence[str]) -> None: ...

    def visitor_link(self, key: str) -> VisitorLink | None: ...

    def put_visitor_link(self, link: VisitorLink) -> None: ...

    def erase_visitors(self, lead_id: str) -> int:
        """Delete every visitor link to the lead; the number deleted."""
        ...

    def purge_visitors(self, now: datetime) -> int:
        """Delete expired visitor records (Firestore's TTL policy does this in production)."""
        ...


class EspSynced(BaseModel):
    """What one email tool accepted last for one lead: the ESP sync record (issue 22).
    `member` holds the values sent, never the email (the lead has it)."""

    tool: str
    lead_id: str
    member: dict[str, Any]  # empty: the tool never accepted this lead
    synced_at: datetime
    # the member the tool refused for good (an invalid or forbidden address): not sent
    # again until the lead's member changes; the reason is the tool's code, never the email
    refused: dict[str, Any] | None = None
    refused_reason: str | None = None


@runtime_checkable
class EspSyncRecords(Protocol):
    """The ESP sync records (`{collection}_esp_sync`): what each tool last accepted."""

    def esp_synced(self, tool: str, lead_ids: Sequence[str]) -> dict[str, EspSynced]:
        """The records of these leads for `tool` (absent: never synced)."""
        ...

    def record_esp_synced(self, records: Sequence[EspSynced]) -> None:
        """Store these records, replacing the ones of the same tool and lead."""
        ...


# The same records serve every outbound sync: the email tools (issue 22) and the CRMs
# (issue 18, tools named "crm:<name>", e.g. "crm:hubspot"). Tool names are unique across both.
SyncRecord = EspSynced
SyncRecords = EspSyncRecords


class CrmErasure(BaseModel):
    """A CRM contact still to be deleted because its lead was erased (issue 18's HubSpot
    sync). It holds the address, the only key the CRM knows, until the CRM confirms the
    deletion; then it is forgotten. Never erased with the lead: it is what finishes the
    erasure there."""

    id: str  # "<tool>:<lead id>:<random>": a later record never replaces one being sent
    tool: str  # "crm:hubspot"
    lead_id: str
    email: str
    attempts: int = 0
    next_attempt_at: datetime
    expires_at: datetime  # given up (and logged) after this: the address is not kept forever
    deleted: bool = False  # the CRM confirmed one delete; a second after SETTLE, then forgotten


@runtime_checkable
class HandoverPurge(Protocol):
    """Closed hand-overs past their `expires_at` are deleted when asked (each sweep asks):
    on SQLite and memory only so; on Firestore the TTL policy does it too, and this
    catches changes closed by an older release, which have no `expires_at`."""

    def purge_handovers(self, now: datetime) -> int:
        """Delete the closed stage changes whose `expires_at` is at or before `now`;
        how many went."""
        ...


@runtime_checkable
class OutboxClaims(Protocol):
    """Work several processes sweep at once (`serve --workers N`, the decay job, a CLI run):
    each item is taken by one claimer at a time. A claim moves the item's next attempt to
    `until` atomically (a lease): a claimer that dies leaves it due again then, so delivery
    stays at least once; no second claimer takes it while the lease lasts."""

    def claim_handovers(self, now: datetime, until: datetime,
                        limit: int = 100) -> list[StageChange]:
        """Take the stage changes not yet delivered whose next attempt is due at `now`,
        returning them with `next_attempt_at` moved to `until`."""
        ...

    def record_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        """Store these, replacing one of the same id."""
        ...

    def update_crm_erasures(self, items: Sequence[CrmErasure]) -> None:
        """Replace these where they still exist: a claimer's write-back after its send,
        so one forgotten meanwhile (by a claimer that took it after the lease ran out)
        is not brought back."""
        ...

    def claim_crm_erasures(self, now: datetime, until: datetime, limit: int = 100,
                           expired: bool = False) -> list[CrmErasure]:
        """Take the CRM erasures due at `now`, as `claim_handovers` does; `expired`: those
        whose `expires_at` is at or before `now` instead, earliest first, due or not (what a
        sweep with no CRM configured forgets)."""
        ...

    def forget_crm_erasures(self, ids: Sequence[str]) -> None:
        """Delete these (the CRM confirmed them, or can never do them)."""
        ...


@dataclass(kw_only=True)
class LeadCount:
    """One aggregation query over the leads: every given field must match; the score range is
    `min_score <= score < below_score`. Counted by the store (Firestore `count()`, SQL
    `COUNT`), never by reading the leads."""

    stage: Stage | None = None
    grade: str | None = None
    email_status: str | None = None
    non_opener: bool | None = None
    min_score: float | None = None
    below_score: float | None = None


@runtime_checkable
class DashboardStats(Protocol):
    """Aggregations and the daily snapshots behind the dashboard (issue 17):
    Firestore `{collection}_snapshots`, one small document per day."""

    def count_matching(self, query: LeadCount) -> int:
        """How many leads match, by one aggregation query."""
        ...

    def lead_stats(self, complete_only: bool = True) -> dict[str, int] | None:
        """The statistics documents summed: for each key of `domain/lead_stats.py`, the sum
        of the stored leads' `counted` amounts (zeros left out), kept by the adapter in the
        same transaction as every write and deletion of a lead. None while some stored lead
        may be missing from them (stored by an older release: `leadscore dashboard
        recount`), unless `complete_only` is False; the dashboard then counts by
        aggregation queries."""
        ...

    def mark_stats_complete(self) -> None:
        """Record that every stored lead is counted (the recount's last step, or an empty
        store); adapters that know it exactly (SQLite, memory) need no mark."""
        ...

    def count_handovers(self, delivered: bool, attempted: bool | None = None,
                        given_up: bool | None = None) -> int:
        """Outbox records delivered (closed) or not; `attempted` splits the undelivered into
        failed at least once (True) and never tried yet (False); `given_up=True` counts the
        closed ones delivery gave up on."""
        ...

    def put_snapshot(self, day: str, counts: dict[str, int]) -> None:
        """Store (replace) the counts of one day (`YYYY-MM-DD`)."""
        ...

    def snapshots(self, limit: int = 30) -> dict[str, dict[str, int]]:
        """The newest `limit` days' counts, by day, oldest first."""
        ...

    def newest_in_stage(self, stage: Stage, limit: int) -> list[LeadState]:
        """The leads in `stage` that entered it last (`stage_since`, newest first), by one
        indexed query: the dashboard's hot leads. Ties by lead id, descending."""
        ...

    def top_movers(self, up: bool, limit: int) -> list[LeadState]:
        """The leads whose score moved most in the last 7 days (the stored `movement`, kept
        exact by the write path and the decay job): up (movement > 0, largest first) or
        down (movement < 0, largest fall first), by one indexed query."""
        ...

    def sum_counter(self, name: str) -> int:
        """The sum of `counters.<name>` over the leads that have it, by one aggregation query
        (Firestore `sum()`, SQL `SUM`); `name` is a plain identifier. The dashboard uses it
        only while its statistics documents are incomplete."""
        ...

    def put_calibration(self, report: dict[str, Any]) -> None:
        """Keep the latest back-test (`leadscore calibrate`'s JSON report), one small
        document: a back-test reads every history, so the dashboard shows the saved one."""
        ...

    def latest_calibration(self) -> dict[str, Any] | None:
        """The back-test saved last, if any."""
        ...


@dataclass(kw_only=True)
class StoredEvents:
    """One lead's stored canonical events, as the JSON its history keeps, unvalidated."""

    lead_id: str
    email: str
    events: list[str]  # in history order (at, entry_id)


@runtime_checkable
class EventScan(Protocol):
    """Every lead's stored events, a page of leads at a time, read in two queries and left
    as JSON (issue 16). Back-tests read every lead's whole history; reading it one lead and
    one validated `HistoryEntry` at a time was a large part of their cost. Stores without
    it are read through `iter_leads` and `history`."""

    def scan_events(self, after_id: str | None = None, limit: int = 500) -> list[StoredEvents]:
        """The leads after `after_id` in lead id order, each with its stored events."""
        ...


# -- re-keying (`leadscore rekey`) ------------------------------------------------------------
# (old lead, lead already under the new id or None, the whole history under the new id after
# the move, every order record under the new id) -> (the lead document under the new id, the
# order records to store under it). The service's pure merge; the adapter only calls it.
class Merged(NamedTuple):
    """What a re-key merge writes in its transaction: the lead, its order records, and
    (when it merged into a lead already under the new id) a history entry saying so and the
    hand-over of the stage change the merge made, if any."""

    lead: LeadState
    records: dict[str, Order]
    history: Sequence[HistoryEntry] = ()
    outbox: Sequence[StageChange] = ()


Merge = Callable[[LeadState, LeadState | None, list[HistoryEntry], dict[str, Order]], Merged]


@runtime_checkable
class Rekeyable(Protocol):
    """Moving a lead stored under an old id (the unkeyed SHA-256 of earlier releases) to its
    keyed id. Orchestration and the merge live in `service/rekey.py`."""

    def rekey_lead(self, old_id: str, new_id: str, merge: Merge) -> bool:
        """Move the lead `old_id` and everything stored with it (history, order records,
        order index entries and aliases, handovers, email-tool sync records, visitor links)
        to `new_id`, writing what `merge` returns (the lead document, its history entry and
        hand-over, in the same transaction), and delete it under
        `old_id`; atomic per lead with respect to every writer (SQLite and memory: one
        transaction; Firestore: the records are copied first and the switch is one
        transaction that fails if the old lead changed since, see the adapter). Running it
        again after a crash part-way finishes the move. False if no lead `old_id` exists.
        If `new_id` has a tombstone (its address was erased), the old lead is erased instead,
        with that erasure time, read in the same transaction: False too."""
        ...
