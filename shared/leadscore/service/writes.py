"""The unit of work: how every change to a lead is written, once, for every store.

Ingest, rescore, the decay refresh and moves all come here; the store adapters only read
and commit what this module plans (see `store/port.py` for the primitives). One write:

1. de-duplicate the group by ledger key (`unique_by_key`);
2. choose the path. If the store offers blind appends (Firestore) and every event's delta
   is blind (sums, maxima, minima: opens, clicks, deliveries, plain activities), take the
   *blind* path: ledger creates plus field transforms in one batch, no read and no lock,
   so any number of writers on one lead all count (DESIGN.md §3). A `LedgerConflict` means
   some events were applied before: drop them (one read of their keys) and try again.
   Then read the lead, materialise its view at `now` and store it only if nobody changed
   the lead since (if somebody did, their refresh saw our events; and the safety
   `next_review_at` makes the scheduled job refresh anything a crashed writer left).
3. otherwise the *transactional* path: `store.transact` reads the lead and which ledger
   keys exist, `plan` applies the pure domain to the new events only, and the adapter
   commits the history entries, the lead, the outbox record of a stage change and the
   order index together, re-planning on contention.

Rescore and refresh are transactional plans too (the whole history, or the view at `now`).
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, cast

from leadscore.domain.effects import LeadDelta, effect_of
from leadscore.domain.events import Event, PurchaseMade, PurchaseRefunded
from leadscore.domain.handover import stage_change
from leadscore.domain.identity import ledger_key
from leadscore.domain.orders import changes_nothing, drops_keys
from leadscore.domain.rebuild import rebuilt, replayed, stale_rules
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import (
    ViewChange,
    history_entry,
    materialise,
    refreshed,
)
from leadscore.domain.scoring import (
    apply_events as apply_to_lead,
)
from leadscore.domain.state import HistoryItem, LeadState, Order, Stage
from leadscore.errors import TransientError
from leadscore.service import erasure
from leadscore.store.port import (
    BlindAppends,
    FieldTransforms,
    LeadSnapshot,
    LeadStore,
    LeadWrite,
    LedgerConflict,
    Tombstone,
    UnitOfWork,
)

MAX_CONFLICT_ROUNDS = 5
SAFETY_REVIEW = timedelta(minutes=10)  # due for the scheduled job if a writer dies mid-way


# Plain dataclasses: what this module's own code answers (issue 20: a pydantic model's class
# costs every cold start about twice a dataclass's; ARCHITECTURE.md "Where pydantic is used").
@dataclass(kw_only=True)
class ApplyOutcome:
    lead_id: str
    applied: int
    duplicates: int
    created: bool
    stage_before: Stage | None
    stage_after: Stage | None
    commits: int = 1
    erased: int = 0  # dropped: dated before the lead's erasure, or no basis for a new lead


def order_keys(events: Sequence[Event]) -> list[str]:
    """Orders these events pay or refund: written to the order index with the lead."""
    return sorted({f"{e.source}:{e.order_id}" for e in events if isinstance(e, PurchaseMade)})


def touched_orders(events: Sequence[Event]) -> list[str]:
    """Orders these events pay or refund: their records are read and written with the lead."""
    return sorted({f"{e.source}:{e.order_id}" for e in events
                   if isinstance(e, PurchaseMade | PurchaseRefunded)})


def order_aliases(events: Sequence[Event]) -> dict[str, str]:
    """Other ids of the orders these events pay, indexed with the lead (`platform:id`)."""
    return {f"{e.source}:{alias}": f"{e.source}:{target}" for e in events
            if isinstance(e, PurchaseMade) for alias, target in e.aliases.items()}


def unique_by_key(events: Sequence[Event]) -> list[tuple[str, Event]]:
    """Drop duplicates inside one group, keeping the first delivery of each event."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(ledger_key(event.source, event.idempotency_key), event)
    return list(seen.items())


_CAPABLE: dict[tuple[type, type], bool] = {}


def _offers(store: object, capability: type) -> bool:
    """`isinstance` against a runtime protocol inspects its members on every call (slow on
    Python 3.11, once per lead of a batch); the answer is remembered per store class."""
    key = (type(store), capability)
    if key not in _CAPABLE:
        _CAPABLE[key] = isinstance(store, capability)
    return _CAPABLE[key]


def _may_append_blind(store: object) -> bool:
    return _offers(store, BlindAppends)


def request_unit(store: LeadStore, leads: int) -> AbstractContextManager[None]:
    """Where the store offers it (SQLite), the writes of a request's `leads` in one
    transaction: one commit instead of one per lead, and a failure part-way leaves nothing
    written (the sender's retry then applies everything, de-duplicated by the ledger).
    Elsewhere each lead commits on its own, as before."""
    if leads > 1 and _offers(store, UnitOfWork):
        return cast(UnitOfWork, store).unit_of_work()
    return nullcontext()


def apply_events(store: LeadStore, lead_id: str, email: str, events: Sequence[Event],
                 rules: Rules, now: datetime, follow_moves: bool = True) -> ApplyOutcome:
    """Apply one lead's events exactly once, atomically (see the module's docstring). An
    address that moved (a `Tombstone.moved_to`) has its events written on the lead it moved
    to (`follow_moves=False`: where it is told, a moved record there ignored)."""
    keyed = unique_by_key(events)
    # an erased id never takes the blind path (the transaction reads the tombstone)
    if (_may_append_blind(store) and isinstance(store, BlindAppends)
            and store.tombstone(lead_id) is None):
        effects = {key: effect_of(event, rules) for key, event in keyed}
        if all(delta.blind for delta, _ in effects.values()):
            return _apply_blind(store, store, lead_id, email, keyed, effects, rules, now,
                                len(events))
    return _apply_in_transaction(store, lead_id, email, keyed, rules, now, len(events),
                                 follow_moves)


@dataclass
class _NeedsRebuild:
    """A plan's answer when the lead was stored under other rules: read its history too."""


@dataclass
class _MovedTo:
    """A plan's answer when the address moved (Mailchimp `upemail`): write there instead."""

    lead_id: str
    stranded: bool = False  # a lead under the record: a move stopped part-way, or a race


MAX_HOPS = 4  # moved records point one hop (a move re-points those to it): more is a race


def _follow_move(store: LeadStore, old_id: str, new_id: str, keyed: list[tuple[str, Event]],
                 rules: Rules, now: datetime, received: int, hops: int = 0) -> ApplyOutcome:
    """Write events for an address that moved on the lead it moved to, under that lead's
    address: their ledger keys de-duplicate them there, so a provider's retry of an event
    the move carried over counts once. That lead's own record is followed too, in its
    transaction (it may move on meanwhile: nothing is written under a moved record). If
    it is erased, they write nowhere; if the move has not created it yet, retry."""
    if hops >= MAX_HOPS:
        raise TransientError("the address kept moving; retry the delivery")
    target = store.get_lead(new_id)
    if target is None and new_id != old_id:
        stone = store.tombstone(new_id)
        if stone is not None and stone.moved_to is not None:  # moved on: follow it there
            return _follow_move(store, old_id, stone.moved_to, keyed, rules, now, received,
                                hops + 1)
        if stone is None:  # a move in progress (moves.py): its replay creates the lead
            raise TransientError("the address is moving; retry shortly")
    if target is None or new_id == old_id:
        erasure.log_dropped(old_id, len(keyed))
        return ApplyOutcome(lead_id=old_id, applied=0, duplicates=received - len(keyed),
                            erased=len(keyed), created=False, stage_before=None,
                            stage_after=None, commits=0)
    events = [(key, event.model_copy(update={"email": target.email})) for key, event in keyed]
    return _apply_in_transaction(store, new_id, target.email, events, rules, now, received,
                                 hops=hops + 1)


def _apply_in_transaction(store: LeadStore, lead_id: str, email: str,
                          keyed: list[tuple[str, Event]], rules: Rules, now: datetime,
                          received: int, follow_moves: bool = True,
                          hops: int = 0) -> ApplyOutcome:
    leftovers: list[bool] = []  # an erasure's leftover seen: cleared after the transaction

    def plan(snap: LeadSnapshot, rebuild: bool) -> tuple[
            LeadWrite | None, ApplyOutcome | _NeedsRebuild | _MovedTo]:
        if snap.tombstone is not None and snap.tombstone.moved_to is not None:
            if follow_moves:  # read in this transaction: a move committed meanwhile counts
                return None, _MovedTo(snap.tombstone.moved_to, snap.lead is not None)
            snap = replace(snap, tombstone=None)  # a move back here: no erasure to obey
        if erasure.leftover(snap):
            leftovers.append(True)
        current = snap.lead
        before = current.stage if current else None
        fresh = [event for key, event in keyed if key not in snap.known
                 and not (isinstance(event, PurchaseRefunded)  # held at this amount already
                          and changes_nothing(snap.orders, event,
                                              current.orders if current else None))]
        kept = erasure.admitted(snap, fresh, now)  # issue 21: erasure sticks
        dropped = len(fresh) - len(kept)
        fresh = kept
        if not fresh:
            return None, ApplyOutcome(lead_id=lead_id, applied=0,
                                      duplicates=received - dropped, erased=dropped,
                                      created=False, stage_before=before, stage_after=before,
                                      commits=0)
        records = dict(snap.orders)  # the touched orders' records, updated by the domain
        base, extra = current, []
        if current is not None and stale_rules(current, rules):  # the rules-version guard
            if not rebuild:
                return None, _NeedsRebuild()
            records = {}  # every order, rebuilt from its events under these rules
            done = rebuilt(current, snap.history, rules, now, records)
            base = done[0] if done else replayed(current, snap.history, rules, now, records)
            extra = [done[2]] if done else []
        lead, entries = apply_to_lead(base, lead_id, email, fresh, rules, now, records)
        if current is None and snap.tombstone is not None:  # started again with consent
            lead.restarted_after = snap.tombstone.erased_at
        change = stage_change(current, lead, now)
        # a rebuilt lead, or a legacy lead whose orders map leaves the document: write it whole
        whole = bool(extra) or base is not current or bool(current and current.orders)
        whole = whole or drops_keys(current, lead)  # a merge would keep the dropped keys
        write = LeadWrite(lead=lead, history=extra + entries,
                          outbox=[change] if change else [],
                          orders=order_keys([event for _, event in keyed]),
                          aliases=order_aliases([event for _, event in keyed]),
                          order_records=records, fields="replace" if whole else "merge")
        return write, ApplyOutcome(lead_id=lead_id, applied=len(entries),
                                   duplicates=received - len(entries) - dropped,
                                   erased=dropped, created=current is None,
                                   stage_before=before, stage_after=lead.stage)

    keys = [key for key, _ in keyed]
    touched = touched_orders([event for _, event in keyed])
    try:
        outcome = store.transact(lead_id, keys, lambda snap: plan(snap, False),
                                 order_keys=touched)
        if isinstance(outcome, _NeedsRebuild):  # rare: once per lead after a rules change
            outcome = store.transact(lead_id, keys, lambda snap: plan(snap, True),
                                     with_history=True, order_keys=touched)
    except erasure.LeftoverOfAnErasure:  # a form: clear the leftover, then the form starts
        # the lead, in this same call: raising for a retry would roll the clearing back
        # with a SQLite request's unit of work, and every retry would meet it again
        erasure.clear_leftover(store, lead_id)
        leftovers.clear()
        outcome = store.transact(lead_id, keys, lambda snap: plan(snap, False),
                                 order_keys=touched)
    if isinstance(outcome, _MovedTo) and outcome.stranded:  # finish that move first
        return _moved_meanwhile(store, lead_id, outcome.lead_id, keyed, rules, now, received,
                                hops)
    if isinstance(outcome, _MovedTo):
        return _follow_move(store, lead_id, outcome.lead_id, keyed, rules, now, received, hops)
    if leftovers:
        erasure.clear_leftover(store, lead_id)
    assert isinstance(outcome, ApplyOutcome)
    erasure.log_dropped(lead_id, outcome.erased)
    return outcome


def _apply_blind(store: LeadStore, blind: BlindAppends, lead_id: str, email: str,
                 keyed: list[tuple[str, Event]],
                 effects: dict[str, tuple[LeadDelta, list[HistoryItem]]], rules: Rules,
                 now: datetime, received: int) -> ApplyOutcome:
    pending = keyed
    commits = 0
    for _ in range(MAX_CONFLICT_ROUNDS):
        entries = [history_entry(event, effects[key][1], rules, now) for key, event in pending]
        deltas = [effects[key][0] for key, _ in pending]
        try:
            blind.append_blind(lead_id, entries, blind_transforms(lead_id, email, deltas, now))
            commits += 1
            break
        except LedgerConflict:  # some events were applied before: drop them, try again
            known = store.read(lead_id, [key for key, _ in pending]).known
            pending = [(key, event) for key, event in pending if key not in known]
            if not pending:
                break
    else:
        raise TransientError("events kept conflicting; retry the delivery")
    if pending and (stone := store.tombstone(lead_id)) is not None and stone.moved_to:
        return _moved_meanwhile(store, lead_id, stone.moved_to, pending, rules, now, received)
    if pending and stone is not None and not _restarted(
            store, lead_id, stone):
        # an erasure began after our check: it may have listed the documents before our
        # commit, so delete what we wrote (the erasure wins; issue 21). Only a leftover: a
        # lead started again with consent meanwhile is not ours to delete (erasure.py), and
        # our events count on it (they are after its erasure, or raced it and the restart)
        erasure.log_dropped(lead_id, len(pending))
        return ApplyOutcome(lead_id=lead_id, applied=0, duplicates=received - len(pending),
                            erased=len(pending), created=False, stage_before=None,
                            stage_after=None, commits=commits)
    stage_before, stage_after = (_refresh_view_blind(store, blind, lead_id, rules, now)
                                 if pending else (None, None))
    return ApplyOutcome(lead_id=lead_id, applied=len(pending),
                        duplicates=received - len(pending),
                        created=bool(pending) and stage_before is None,
                        stage_before=stage_before, stage_after=stage_after, commits=commits)


def _moved_meanwhile(store: LeadStore, lead_id: str, moved_to: str,
                     pending: list[tuple[str, Event]], rules: Rules, now: datetime,
                     received: int, hops: int = 0) -> ApplyOutcome:
    """A lead stands under a moved record: a blind write committed under an id whose move
    wrote its record after our check, or a move that stopped part-way (or is running).
    The move may have read the old lead's history before our commit, or be done: so the
    old lead's other events are carried over too (de-duplicated on the new lead), the old
    lead goes, and our events follow the record. Before the move's replay has created the
    new lead, the sender retries (our entries stay for that replay)."""
    from leadscore.service.moves import carry_over

    target = store.get_lead(moved_to)
    if target is None:
        raise TransientError("the address is moving; retry shortly")
    carry_over(store, rules, lead_id, moved_to, target.email, now,
               skip={key for key, _ in pending})
    store.erase(lead_id)
    return _follow_move(store, lead_id, moved_to, pending, rules, now, received, hops)


def _restarted(store: LeadStore, lead_id: str, stone: Tombstone) -> bool:
    """After a blind write under a tombstone: clear a leftover; True if a lead started again
    with consent holds the id (then the write counted on it)."""
    erasure.clear_leftover(store, lead_id)
    lead = store.get_lead(lead_id)
    return lead is not None and stone.restarted(lead)


def _refresh_view_blind(store: LeadStore, blind: BlindAppends, lead_id: str, rules: Rules,
                        now: datetime) -> tuple[Stage | None, Stage | None]:
    """Store the view computed from the facts just committed, unless someone else did.

    Returns the stored stage before (None for a lead never scored: just created) and after."""
    snap = store.read(lead_id)
    lead = snap.lead
    if lead is None:  # erased in between: nothing to show
        return None, None
    if stale_rules(lead, rules):  # stored under other rules: rebuild it, with our events
        rebuilt_change = rescore_lead(store, lead_id, rules, now)
        return lead.stage if lead.scored_at else None, (
            rebuilt_change.stage_after if rebuilt_change else lead.stage)  # type: ignore[return-value]
    fresh = materialise(lead, rules, now)
    if fresh.view() != lead.view():
        change = stage_change(lead if lead.scored_at else None, fresh, now)
        # False: a later writer committed after our read; its refresh sees our events
        blind.commit_view(snap, fresh, [change] if change else [])
    return (lead.stage if lead.scored_at else None), fresh.stage


def blind_transforms(lead_id: str, email: str, deltas: Sequence[LeadDelta],
                     now: datetime) -> FieldTransforms:
    """One set of commutative transforms that adds every delta."""
    increment: dict[str, dict[str, int | float]] = {
        "eng_acc": {}, "cap_counts": {}, "cap_weights": {}, "counters": {}}
    latest: dict[str, datetime] = {}
    earliest: dict[str, datetime] = {"created_at": now, "next_review_at": now + SAFETY_REVIEW}
    for d in deltas:
        for field, values in (("eng_acc", d.acc), ("cap_counts", d.caps),
                              ("cap_weights", d.cap_weights), ("counters", d.counters)):
            sums = increment[field]
            for k, v in values.items():
                sums[k] = sums.get(k, 0) + v
        for k, t in d.latest.items():
            latest[k] = max(latest[k], t) if k in latest else t
        for k, t in d.earliest.items():
            earliest[k] = min(earliest[k], t) if k in earliest else t
    latest["updated_at"] = now
    return FieldTransforms(set={"lead_id": lead_id, "email": email},
                           increment={k: v for k, v in increment.items() if v},
                           maximum=latest, minimum=earliest)


def rescore_lead(store: LeadStore, lead_id: str, rules: Rules,
                 now: datetime) -> ViewChange | None:
    """Recompute one lead from its events under `rules` and store it with a history entry,
    atomically; None if nothing changed."""
    leftovers: list[bool] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, ViewChange | None]:
        if erasure.leftover(snap):  # an erasure's leftover is cleared, never rescored
            leftovers.append(True)
            return None, None
        records: dict[str, Order] = {}  # every order, rebuilt from its events too
        done = rebuilt(snap.lead, snap.history, rules, now, records) if snap.lead else None
        if done is None:
            return None, None
        fresh, change, entry = done
        handover = stage_change(snap.lead, fresh, now)
        return LeadWrite(lead=fresh, fields="replace", history=[entry],
                         outbox=[handover] if handover else [], order_records=records), change

    change = store.transact(lead_id, (), plan, with_history=True)
    if leftovers:
        erasure.clear_leftover(store, lead_id)
    return change


def refresh_view(store: LeadStore, lead_id: str, rules: Rules,
                 now: datetime) -> ViewChange | None:
    """Re-materialise one lead at `now` and record the change in its history, atomically
    and only if something changed (so two runs at the same `now` equal one)."""
    leftovers: list[bool] = []

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, ViewChange | _NeedsRebuild | None]:
        if erasure.leftover(snap):  # an erasure's leftover is cleared, never decayed
            leftovers.append(True)
            return None, None
        if stale_rules(snap.lead, rules):
            return None, _NeedsRebuild()
        done = refreshed(snap.lead, rules, now) if snap.lead else None
        if done is None:
            return None, None
        fresh, change, entry = done
        handover = stage_change(snap.lead, fresh, now)
        # pruned buckets are written too (the whole document, inside the transaction)
        fields: Literal["view", "replace"] = "replace" if _pruned_keys(
            snap.lead, fresh) or drops_keys(snap.lead, fresh) else "view"
        return LeadWrite(lead=fresh, fields=fields, history=[entry],
                         outbox=[handover] if handover else []), change

    outcome = store.transact(lead_id, (), plan)
    if leftovers:
        erasure.clear_leftover(store, lead_id)
    if isinstance(outcome, _NeedsRebuild):  # stored under other rules: rebuild, never mix
        return rescore_lead(store, lead_id, rules, now)
    return outcome


def _pruned_keys(before: LeadState | None, after: LeadState) -> bool:
    return before is not None and (
        len(after.eng_acc), len(after.cap_weights), len(after.cap_counts),
        len(after.counters)) != (
        len(before.eng_acc), len(before.cap_weights), len(before.cap_counts),
        len(before.counters))
