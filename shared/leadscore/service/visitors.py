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

Races: an anonymous event is stored first and its visitor's link read again afterwards;
an identification links first and reads the stored events afterwards. Whichever comes
second sees the other, and the ledger makes a double join harmless.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadscore import logs
from leadscore.domain.events import EVENT_ADAPTER, Event
from leadscore.domain.happenings import DomainEvent
from leadscore.domain.identity import lead_id_for, ledger_key
from leadscore.domain.rules import Rules
from leadscore.domain.visitors import Tracked, visitor_key
from leadscore.store.port import LeadStore, VisitorEvent, VisitorLink, VisitorStore

MAX_ALIAS_HOPS = 4
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

    def __init__(self, visitors: VisitorStore, now: datetime, keep: timedelta) -> None:
        self.visitors, self.now, self.keep = visitors, now, keep
        self.links: dict[str, VisitorLink | None] = {}
        self.drain: dict[str, Lead] = {}
        self.pending: list[VisitorEvent] = []

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

    def known_lead(self, item: Tracked) -> Lead | None:
        if item.email:
            return lead_id_for(item.email), item.email
        for key in item.keys:
            _, link = self.resolve(key)
            if link is not None and link.lead_id and link.email:
                if link.expires_at < self.now + self.keep / 2:  # still in use: keep it
                    self.put(link.key, (link.lead_id, link.email))
                return link.lead_id, link.email
        return None

    def link_all(self, keys: Sequence[str], lead: Lead) -> None:
        for key in keys:
            terminal, _ = self.resolve(key)
            for k in dict.fromkeys((key, terminal)):
                link = self.link(k)
                if link is None or link.lead_id != lead[0] or link.alias_of:
                    self.put(k, lead)
                    self.drain[k] = lead

    def pool(self, item: Tracked) -> None:
        """An unknown visitor: its keys become aliases of the first, its event waits there."""
        terminals = [self.resolve(k)[0] for k in item.keys]
        target = terminals[0]
        for terminal in dict.fromkeys(terminals[1:]):
            if terminal != target:
                moved = self.visitors.visitor_events(terminal)
                self.visitors.save_visitor_events(
                    [e.model_copy(update={"key": target}) for e in moved])
                self.put(terminal, alias_of=target)
                self.visitors.drop_visitor_events(terminal, [e.ledger_key for e in moved])
                self.pending = [e.model_copy(update={"key": target}) if e.key == terminal
                                else e for e in self.pending]  # this request's, not saved yet
        if item.event is not None:
            event = item.event
            self.pending.append(VisitorEvent(
                key=target, ledger_key=ledger_key(event.source, event.idempotency_key),
                event=event.model_dump(mode="json", exclude={"email"}),
                expires_at=self.now + self.keep))


def _with_address(event: Event, email: str) -> Event:
    return EVENT_ADAPTER.validate_python({**event.model_dump(mode="json"), "email": email})


def record(store: LeadStore, visitors: VisitorStore, rules: Rules, items: Sequence[Tracked],
           now: datetime, keep: timedelta) -> TrackResult:
    """Write what each message says (see the module's docstring)."""
    visits = _Visits(visitors, now, keep)
    known: list[Event] = []
    for item in items:
        lead = visits.known_lead(item)
        if lead is None:
            visits.pool(item)
            continue
        visits.link_all(item.keys, lead)
        if item.event is not None:
            known.append(_with_address(item.event, lead[1]))
    visitors.save_visitor_events(visits.pending)
    for key in dict.fromkeys(e.key for e in visits.pending):  # identified meanwhile?
        _, link = visits.resolve(key, fresh=True)
        if link is not None and link.lead_id and link.email:
            visits.drain[key] = (link.lead_id, link.email)
    drained: dict[str, list[str]] = {}
    for key, (_, email) in visits.drain.items():
        stored = [e for e in visitors.visitor_events(key) if e.expires_at > now]
        known += [EVENT_ADAPTER.validate_python({**e.event, "email": email}) for e in stored]
        drained[key] = [e.ledger_key for e in stored]
    result = None
    if known:  # the write path (scoring, the unit of work) loads with the first known lead:
        from leadscore.service.ingest import ingest  # an anonymous page view never needs it

        result = ingest(store, rules, known, now)
    for key, ledgers in drained.items():  # only once the lead has them
        visitors.drop_visitor_events(key, ledgers)
    joined = sum(len(v) for v in drained.values())
    if joined:
        logs.info("visitors identified", visitors=len(drained), events=joined)
    return TrackResult(accepted=len(items), anonymous=len(visits.pending), joined=joined,
                       applied=result.applied if result else 0,
                       duplicates=result.duplicates if result else 0,
                       events=result.events if result else [])


def join_visitor(store: LeadStore, visitors: VisitorStore, rules: Rules, anonymous_id: str,
                 email: str, now: datetime, keep: timedelta) -> TrackResult:
    """A form submission carried the visitor's anonymous id: the visitor is this address."""
    item = Tracked(keys=(visitor_key("anon", anonymous_id.strip()[:256]),), email=email,
                   event=None)
    return record(store, visitors, rules, [item], now, keep)
