"""Anonymous visitors who become leads: the `track` function's use case.

A message whose sender is known (an address in its traits, or a visitor key already linked
to a lead) is written to the lead through the one unit of work (`ingest`). A message from
an unknown visitor is kept as a visitor record, under its visitor key, until the visitor is
identified: then its events join the lead through the same unit of work, each at its own
time and with its own ledger key, so the lead equals the one we would have had if the
address had been known from the start, and a redelivery (or a second identification)
counts nothing twice.

Several keys can name one visitor (a user id and the anonymous ids of each browser). While
none is identified, the others are linked to the first as aliases and their events pooled
under it; identifying any of them links them all to the lead.

People and devices (Segment's meaning, an audit of session 9): a `userId` is a person, an
`anonymousId` a device that people may share. A message naming its userId (`Tracked.person`)
is that person's: its device does not say who it is, its device's later events become the
person's (the device is re-aliased, or re-linked, to them). A key reached through a device
(its earlier user: their pool or their lead) is never linked or moved by a message that does
not name it, whatever key sent it: an identification of the device (a browser's identify, a
form) re-points the device alone. So a userId linked to a person stays theirs unless a
message naming that userId says otherwise, and no person's events or pooled history move to
another. An alias call, which names both ids, still merges them.

Races: an anonymous event is stored first and its visitor's link read again afterwards;
an identification links first and reads the stored events afterwards. Whichever comes
second sees the other, and the ledger makes a double join harmless.

Who may link what (a security review's findings):
- Only a server key's message (`Tracked.trusted`) may re-point a visitor key already linked
  to another lead. A client key is public and a form is anyone's, so their messages link
  only keys nobody else has; a key linked to someone else keeps its lead (and the message's
  own event still goes to the address it names). Client keys never name `userId` keys at
  all (`tracking.mapping`): user ids are the site's own server-side identities.
- An erased address (a tombstone and no new lead) gets no link, so its address is not
  stored again; its events are dropped by the unit of work (`service/erasure.py`), as
  /ingest's are. A form, the person's consent, may start a new lead: then links follow.
- A message that may not start a lead (`Tracked.creates` is False: a client key while
  forms need a captcha) uses its address only if that lead exists; else it stays
  anonymous activity of its visitor keys.

Bounds: a visitor key keeps its `MAX_VISITOR_EVENTS` most recently stored events (older
ones are deleted as newer ones arrive: the anonymous history that joins a lead is a window
of the visitor's latest activity), and events are read, moved and joined `JOIN_PAGE` at a
time, so one request never holds more than that many stored events. Measured (05:20 UTC
2026-11-23, SQLite, one process, the review's script): 24 client batches of 2,500 page views
under one anonymous id, then one identify: before, 60,000 events joined in one request, max
RSS 64 -> 525 MB, 12.2 s; after, 1,000 kept and joined in 5 pages, max RSS 63 -> 63 MB, 0.3 s.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pydantic import ValidationError

from leadscore import logs
from leadscore.domain.events import EVENT_ADAPTER, Event, PurchaseRefunded
from leadscore.domain.happenings import DomainEvent
from leadscore.domain.identity import lead_id_for, ledger_key
from leadscore.domain.rules import Rules
from leadscore.domain.visitors import Tracked, visitor_key
from leadscore.store.port import LeadStore, VisitorEvent, VisitorLink, VisitorStore

MAX_ALIAS_HOPS = 4
MAX_VISITOR_EVENTS = 1000  # stored per visitor key: the most recently stored are kept
JOIN_PAGE = 200  # stored events read at once (moved between keys, or joined to a lead)
Lead = tuple[str, str]  # (lead id, address)


# A dataclass, not a pydantic model: built only here, and holding the domain events (dataclasses,
# which a model would build a pydantic schema for at every cold start; issue 20).
@dataclass(kw_only=True)
class TrackResult:
    accepted: int
    anonymous: int  # kept as visitor records, waiting for an identification
    joined: int  # earlier anonymous events that joined a lead now
    applied: int
    duplicates: int
    events: list[DomainEvent] = field(default_factory=list)


class _Visits:
    """One request's view of visitor links (each read once) and what it will write."""

    def __init__(self, store: LeadStore, visitors: VisitorStore, now: datetime,
                 keep: timedelta) -> None:
        self.store, self.visitors, self.now, self.keep = store, visitors, now, keep
        self.links: dict[str, VisitorLink | None] = {}
        self.drain: dict[str, Lead] = {}
        self.pending: list[VisitorEvent] = []
        self.pooled: set[str] = set()  # keys that received stored events: trimmed after
        self.leads: dict[str, bool] = {}  # lead id -> it exists now

    def link(self, key: str, fresh: bool = False) -> VisitorLink | None:
        if fresh or key not in self.links:
            self.links[key] = self.visitors.visitor_link(key)
        return self.links[key]

    def resolve(self, key: str, fresh: bool = False) -> tuple[str, VisitorLink | None]:
        """Follow aliases to the key whose link says who this is (or nobody yet)."""
        link = self.link(key, fresh)
        for _ in range(MAX_ALIAS_HOPS):
            if link is None or not link.alias_of:
                break
            key, link = link.alias_of, self.link(link.alias_of, fresh)
        if link is not None and link.alias_of:
            link = None
        return key, link

    def put(self, key: str, lead: Lead | None = None, alias_of: str | None = None) -> None:
        link = VisitorLink(key=key, lead_id=lead[0] if lead else None,
                           email=lead[1] if lead else None, alias_of=alias_of,
                           expires_at=self.now + self.keep)
        self.visitors.put_visitor_link(link)
        self.links[key] = link

    def exists(self, lead_id: str) -> bool:
        if lead_id not in self.leads:
            self.leads[lead_id] = self.store.get_lead(lead_id) is not None
        return self.leads[lead_id]

    def erased(self, lead_id: str) -> bool:
        """Erased and not started again (by a form): no visitor key may name it."""
        return self.store.tombstone(lead_id) is not None and not self.exists(lead_id)

    def known_lead(self, item: Tracked) -> Lead | None:
        if item.email:
            lead = lead_id_for(item.email), item.email
            if item.creates or self.exists(lead[0]):
                return lead
        # a userId is the person: the device it uses (maybe another's too) does not say who
        for key in item.keys[:1] if item.person else item.keys:
            _, link = self.resolve(key)
            if link is not None and link.lead_id and link.email:
                if link.expires_at < self.now + self.keep / 2 and not self.erased(
                        link.lead_id):  # still in use: keep it (unless erased meanwhile)
                    self.put(link.key, (link.lead_id, link.email))
                return link.lead_id, link.email
        return None

    def link_all(self, item: Tracked, lead: Lead) -> None:
        writes: list[str] = []
        for key in item.keys:
            terminal, found = self.resolve(key)
            if not item.trusted and found is not None and found.lead_id not in (None, lead[0]):
                continue  # someone else's: only a server key may re-point it
            for k in dict.fromkeys((key, terminal)):
                if k != key and k not in item.keys:
                    continue  # the device's earlier user: a person of their own (module doc)
                link = self.link(k)
                if link is None or link.lead_id != lead[0] or link.alias_of:
                    writes.append(k)
                elif item.email and self.visitors.visitor_events(k, 1):
                    # linked already, yet events wait: a join that failed part-way (its
                    # link was written first); the retried identify finishes it
                    self.drain[k] = lead
        if not writes or self.erased(lead[0]):
            return
        for k in dict.fromkeys(writes):
            self.put(k, lead)
            self.drain[k] = lead
        # An erasure that finished between the check above and these puts deleted the links
        # it found, not ours. It writes its tombstone before deleting links, so reading the
        # tombstone after our puts sees it: whichever comes second sees the other.
        if self.store.tombstone(lead[0]) is not None and self.store.get_lead(lead[0]) is None:
            self.visitors.erase_visitors(lead[0])
            for k in writes:
                self.drain.pop(k, None)
                self.links.pop(k, None)

    def pool(self, item: Tracked) -> None:
        """An unknown visitor: its keys become aliases of the first, its event waits there."""
        terminals = [self.resolve(k)[0] for k in item.keys]
        target = terminals[0]
        moved: set[str] = {target}
        for key, terminal in zip(item.keys[1:], terminals[1:], strict=True):
            if item.person and (terminal != key or self.link(key) is not None):
                # a device now used by this person: its later events are theirs, while what
                # it did for its earlier user (pooled there, or on their lead) stays theirs
                if terminal != target:
                    self.put(key, alias_of=target)
                continue
            if terminal in moved:
                continue
            moved.add(terminal)
            self.move(terminal, target)
            self.put(terminal, alias_of=target)
            self.pending = [e.model_copy(update={"key": target}) if e.key == terminal
                            else e for e in self.pending]  # this request's, not saved yet
        if item.event is not None:
            event = item.event
            self.pending.append(VisitorEvent(
                key=target, ledger_key=ledger_key(event.source, event.idempotency_key),
                event=event.model_dump(mode="json", exclude={"email"}),
                expires_at=self.now + self.keep))
        self.pooled.add(target)

    def move(self, source: str, target: str) -> None:
        """Another key's stored events, a page at a time, to `target`."""
        for _ in range(_pages()):
            moved = self.visitors.visitor_events(source, JOIN_PAGE)
            self.visitors.save_visitor_events(
                [e.model_copy(update={"key": target}) for e in moved])
            self.visitors.drop_visitor_events(source, [e.ledger_key for e in moved])
            if len(moved) < JOIN_PAGE:
                break

    def save(self) -> None:
        """This request's anonymous events, then each key trimmed to its newest ones."""
        newest: list[VisitorEvent] = []
        per_key: dict[str, int] = {}
        for event in reversed(self.pending):  # a batch's later messages are the newer ones
            per_key[event.key] = per_key.get(event.key, 0) + 1
            if per_key[event.key] <= MAX_VISITOR_EVENTS:
                newest.append(event)
        self.visitors.save_visitor_events(newest[::-1])
        self.visitors.trim_visitor_events(sorted(self.pooled), MAX_VISITOR_EVENTS)


def _pages() -> int:
    """Pages read per key at most: the cap's, and one more (racing writers may pass it)."""
    return -(-MAX_VISITOR_EVENTS // JOIN_PAGE) + 1


def _with_address(event: Event, email: str) -> Event:
    return EVENT_ADAPTER.validate_python({**event.model_dump(mode="json"), "email": email})


def _joinable(stored: VisitorEvent, email: str, now: datetime) -> Event | None:
    """A stored event as it joins its lead, or None when it cannot: expired, or stored
    before its time was checked (a zone that puts it before year 1: the events' own check,
    `within_scored_years`, refuses it now)."""
    if stored.expires_at <= now:
        return None
    try:
        return EVENT_ADAPTER.validate_python({**stored.event, "email": email})
    except ValidationError:
        return None


class _Totals:
    def __init__(self) -> None:
        self.applied = self.duplicates = self.joined = self.skipped = 0
        self.events: list[DomainEvent] = []

    def ingest(self, store: LeadStore, rules: Rules, events: list[Event], now: datetime) -> None:
        if not events:
            return
        # the write path (scoring, the unit of work) loads with the first known lead:
        from leadscore.service.ingest import ingest  # an anonymous page view never needs it

        result = ingest(store, rules, events, now)
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.events += result.events


def _drain(store: LeadStore, visitors: VisitorStore, rules: Rules, key: str, email: str,
           first: list[Event], totals: _Totals, now: datetime) -> None:
    """Join one key's stored events to its lead, a page at a time (with `first`, this
    request's own events, in the first write); each page is deleted once the lead has it."""
    for _ in range(_pages()):
        stored = visitors.visitor_events(key, JOIN_PAGE)
        events = [e for e in (_joinable(s, email, now) for s in stored) if e is not None]
        totals.ingest(store, rules, first + events, now)
        first.clear()
        visitors.drop_visitor_events(key, [s.ledger_key for s in stored])
        totals.joined += len(events)
        totals.skipped += len(stored) - len(events)
        if len(stored) < JOIN_PAGE:
            break


def record(store: LeadStore, visitors: VisitorStore, rules: Rules, items: Sequence[Tracked],
           now: datetime, keep: timedelta) -> TrackResult:
    """Write what each message says (see the module's docstring)."""
    visits = _Visits(store, visitors, now, keep)
    known: list[Event] = []
    for item in items:
        lead = visits.known_lead(item)
        if lead is None:
            visits.pool(item)
            continue
        visits.link_all(item, lead)
        if item.event is not None:
            known.append(_with_address(item.event, lead[1]))
    visits.save()
    for key in dict.fromkeys(e.key for e in visits.pending):  # identified meanwhile?
        _, link = visits.resolve(key, fresh=True)
        if link is not None and link.lead_id and link.email:
            visits.drain[key] = (link.lead_id, link.email)
    totals = _Totals()
    for key, (_, email) in visits.drain.items():
        _drain(store, visitors, rules, key, email, known, totals, now)
    totals.ingest(store, rules, known, now)  # still there when no key was drained
    if totals.joined or totals.skipped:
        logs.info("visitors identified", visitors=len(visits.drain), events=totals.joined,
                  unreadable=totals.skipped)
    return TrackResult(accepted=len(items), anonymous=len(visits.pending),
                       joined=totals.joined, applied=totals.applied,
                       duplicates=totals.duplicates, events=totals.events)


def price_full_refund(store: LeadStore, item: Tracked) -> Tracked | None:
    """An `Order Refunded` naming only its order (Segment's full refund) as the refund of
    the order's recorded amount, in its currency; None when no paid order of that id is
    recorded (nothing says how much to refund). The amount is read before the write, so an
    order edited after the refund still holds the refund of its amount at the time."""
    event = item.event
    if not item.full_refund or not isinstance(event, PurchaseRefunded):
        return item
    key = f"{event.source}:{event.order_id}"
    owner = store.order_owner(key)
    order = store.order_record(owner, key) if owner else None
    if order is None or order.amount_minor is None or order.currency is None:
        return None
    priced = event.model_copy(update={"amount_minor": order.amount_minor,
                                      "currency": order.currency})
    return replace(item, event=priced, full_refund=False)


def join_visitor(store: LeadStore, visitors: VisitorStore, rules: Rules, anonymous_id: str,
                 email: str, now: datetime, keep: timedelta) -> TrackResult:
    """A form submission carried the visitor's anonymous id: the visitor is this address."""
    item = Tracked(keys=(visitor_key("anon", anonymous_id.strip()[:256]),), email=email,
                   event=None, trusted=False)  # a form is anyone's: no re-pointing
    return record(store, visitors, rules, [item], now, keep)
