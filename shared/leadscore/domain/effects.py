"""What one canonical event does to a lead: a delta of facts plus the explained points."""

import math
from dataclasses import dataclass, field
from datetime import datetime

from leadscore.domain import decay, money
from leadscore.domain.behaviour import BehaviourRule, counter_key, event_fields
from leadscore.domain.events import (
    CustomActivity,
    EmailBounced,
    EmailClicked,
    EmailComplained,
    EmailDelivered,
    EmailOpened,
    EmailResubscribed,
    EmailUnsubscribed,
    Event,
    FormSubmitted,
    OutcomeRecorded,
    ProfileValue,
    PurchaseMade,
    PurchaseRefunded,
)
from leadscore.domain.rules import Rules
from leadscore.domain.state import EmailStatus, HistoryItem

NEWSLETTER = "newsletter"


# Plain dataclasses: built only here, from validated events (issue 20: a pydantic model's
# class costs a cold start about twice a dataclass's; ARCHITECTURE.md "Where pydantic is used").
@dataclass(kw_only=True)
class OrderChange:
    key: str
    paid: bool  # True: a purchase report; False: a refund
    amount_minor: int
    currency: str
    refund_id: str | None = None


@dataclass(kw_only=True)
class LeadDelta:
    """Changes that commute (sums, maxima, minima) plus, rarely, state-dependent ones."""

    at: datetime
    acc: dict[str, float] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    cap_weights: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    latest: dict[str, datetime] = field(default_factory=dict)
    earliest: dict[str, datetime] = field(default_factory=dict)
    # state-dependent (last writer by event time wins): need the old value to apply
    profile: dict[str, ProfileValue] = field(default_factory=dict)
    email_status: EmailStatus | None = None
    order: OrderChange | None = None

    @property
    def blind(self) -> bool:
        """True when the delta can be written without reading the lead first."""
        return not self.profile and self.email_status is None and self.order is None


def cap_key(rule_key: str, max_events: int, window: float, hl: float, bucket: int) -> str:
    """A self-describing cap bucket, so the score can be computed without the rules file."""
    return f"{max_events}|{window:g}|{hl:g}|{bucket}|{rule_key}"


_SIMPLE_KEYS = {
    "email_delivered": "email.delivered",
    "email_opened": "email.opened",
    "email_clicked": "email.clicked",
    "email_complained": "email.complained",
    "email_unsubscribed": "email.unsubscribed",
    "email_resubscribed": "email.resubscribed",
}


def event_key(event: Event) -> str:
    if isinstance(event, FormSubmitted):
        return f"form.{event.form_kind}"
    if isinstance(event, CustomActivity):
        return f"activity.{event.activity}"
    if isinstance(event, EmailBounced):
        return "email.bounced_hard" if event.hard else "email.bounced_soft"
    if isinstance(event, OutcomeRecorded):
        return f"outcome.{event.outcome}"
    return _SIMPLE_KEYS.get(event.type, event.type)


def _clean_profile(profile: dict[str, ProfileValue]) -> dict[str, ProfileValue]:
    """Empty values never erase what we know."""
    out: dict[str, ProfileValue] = {}
    for name, value in profile.items():
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out[key] = value.strip() if isinstance(value, str) else value
    return out


def _score_rule(event: Event, delta: LeadDelta, rules: Rules) -> list[HistoryItem]:
    key = event_key(event)
    return _engagement_rule(event, key, delta, rules) + _behaviour_rules(event, key, delta,
                                                                         rules)


def matching_behaviour(event: Event, key: str, rules: Rules) -> list[BehaviourRule]:
    """The behaviour rules an event of engagement key `key` matches, in rules order."""
    if not rules.behaviour:
        return []
    given = event.__dict__  # a missing attribute costs pydantic's slow `__getattr__`
    fields = event_fields(given.get("url"), given.get("campaign"))
    return [rule for rule in rules.behaviour if rule.matches(key, fields)]


def _behaviour_rules(event: Event, key: str, delta: LeadDelta,
                     rules: Rules) -> list[HistoryItem]:
    """Behaviour rules the event matches (see `behaviour.py`): points, or a window count."""
    items = []
    for rule in matching_behaviour(event, key, rules):
        hl = rules.half_life_for(rule)
        reason = rule.reason or f"behaviour rule {rule.id}"
        if rule.frequency:
            ck = counter_key(rule, hl, event.occurred_at)
            delta.counters[ck] = delta.counters.get(ck, 0) + 1
            items.append(HistoryItem(
                rule=f"behaviour.{rule.id}", points=0,
                reason=f"{reason}: counts toward {rule.frequency.count} within a "
                       f"{rule.frequency.within_days:g}-day window (+{rule.points:g} once)"))
        else:
            ak, amount = decay.accrue(rule.points, hl, event.occurred_at,
                                      rules.category_for(key, rule))
            delta.acc[ak] = delta.acc.get(ak, 0.0) + amount
            items.append(HistoryItem(rule=f"behaviour.{rule.id}", points=rule.points,
                                     reason=reason))
    return items


def _engagement_rule(event: Event, key: str, delta: LeadDelta,
                     rules: Rules) -> list[HistoryItem]:
    rule = rules.engagement.get(key)
    if rule is None:
        return [HistoryItem(rule=key, points=0, reason=f"no rule for {key}")]
    if rule.points == 0:
        return [HistoryItem(rule=key, points=0, reason=rule.reason or f"{key}: recorded")]
    hl = rules.half_life_for(rule)
    reason = rule.reason or f"{key}"
    if rule.cap:
        bucket = math.floor(decay.days_since_epoch(event.occurred_at) / rule.cap.window_days)
        ck = cap_key(key, rule.cap.max_events, rule.cap.window_days, hl, bucket)
        delta.caps[ck] = delta.caps.get(ck, 0) + 1
        epoch, amount = decay.accrue(rule.points, hl, event.occurred_at,
                                     rules.category_for(key, rule))
        wk = f"{ck}|{epoch}"  # the window's count key, then the weight's epoch bucket
        delta.cap_weights[wk] = delta.cap_weights.get(wk, 0.0) + amount
        reason += (f" (counts for at most {rule.cap.max_events} per "
                   f"{rule.cap.window_days:g}-day window)")
    else:
        ak, amount = decay.accrue(rule.points, hl, event.occurred_at,
                                  rules.category_for(key, rule))
        delta.acc[ak] = delta.acc.get(ak, 0.0) + amount
    return [HistoryItem(rule=key, points=rule.points, reason=reason)]


def _shown(amount_minor: int, currency: str) -> str:
    """`199.90 EUR`, `10000 JPY`, `10.000 KWD`: in the currency's own minor unit."""
    return f"{_money_text(amount_minor, currency)} {currency}"


def _money_text(amount_minor: int, currency: str) -> str:
    try:
        return f"{money.to_major(amount_minor, currency):f}"
    except money.MoneyError:  # a code ISO 4217 does not know (only `/ingest` can send one)
        return f"{amount_minor / 100:.2f}"


def _purchase_items(event: PurchaseMade, rules: Rules) -> list[HistoryItem]:
    amount = _shown(event.amount_minor, event.currency)
    return [HistoryItem(rule=rule, points=points,
                        reason=f"purchase of {amount}" if rule == "purchase.per_purchase"
                        else f"order value {amount}")
            for rule, points in rules.purchase.order_items(event.amount_minor, event.currency)]


def effect_of(event: Event, rules: Rules) -> tuple[LeadDelta, list[HistoryItem]]:
    t = event.occurred_at
    delta = LeadDelta(at=t, counters={event.type: 1})
    items: list[HistoryItem] = []
    if isinstance(event, FormSubmitted | CustomActivity):
        # a form never changes the email status: anyone can type an address into a form,
        # so only the ESP's own resubscribe event, or a signup the ESP itself reports
        # (`opt_in`), undoes an unsubscribe or a complaint
        delta.profile = _clean_profile(event.profile)
        delta.latest["last_activity_at"] = t
        items = _score_rule(event, delta, rules)
        if isinstance(event, FormSubmitted) and event.opt_in:
            delta.email_status = "active"
            items.append(HistoryItem(rule="email.opt_in", points=0, reason=(
                "signup reported by the email tool: the address takes mail again")))
    elif isinstance(event, EmailDelivered):
        delta.latest["last_sent_at"] = t
        delta.earliest["first_sent_at"] = t
        items = _score_rule(event, delta, rules)
    elif isinstance(event, EmailOpened):
        # an open (a machine's too) or a click proves an email was sent by then: without
        # it, a tool that reports no deliveries left its readers out of the non-opener
        # rule for good (an audit)
        delta.earliest["first_sent_at"] = t
        if event.machine_open:
            delta.counters = {"email_opened_machine": 1}
            items = [HistoryItem(rule="email.opened", points=0,
                                 reason="machine open (privacy prefetch): recorded, no points")]
        else:
            delta.latest.update(last_open_at=t, last_activity_at=t)
            items = _score_rule(event, delta, rules)
    elif isinstance(event, EmailClicked):
        delta.earliest["first_sent_at"] = t
        delta.latest.update(last_open_at=t, last_click_at=t, last_activity_at=t)
        items = _score_rule(event, delta, rules)
    elif isinstance(event, EmailBounced):
        if event.hard:
            delta.email_status = "bounced"
        items = _score_rule(event, delta, rules)
    elif isinstance(event, EmailComplained | EmailUnsubscribed | EmailResubscribed):
        delta.email_status = {
            "email_complained": "complained",
            "email_unsubscribed": "unsubscribed",
            "email_resubscribed": "active",
        }[event.type]  # type: ignore[assignment]
        items = _score_rule(event, delta, rules)
    elif isinstance(event, PurchaseMade):
        delta.order = OrderChange(key=f"{event.source}:{event.order_id}", paid=True,
                                  amount_minor=event.amount_minor, currency=event.currency)
        delta.latest.update(last_purchase_at=t, last_activity_at=t)
        delta.earliest["first_purchase_at"] = t
        items = _purchase_items(event, rules)
    elif isinstance(event, PurchaseRefunded):
        delta.order = OrderChange(key=f"{event.source}:{event.order_id}", paid=False,
                                  amount_minor=event.amount_minor, currency=event.currency,
                                  refund_id=event.refund_id)
        items = [HistoryItem(rule="purchase.refund", points=0,
                             reason=f"refund of {_shown(event.amount_minor, event.currency)}"
                                    " takes back that share of the order's points")]
    elif isinstance(event, OutcomeRecorded):
        delta.counters = {f"outcome_{event.outcome}": 1}  # blind: counted, judged against
        items = _score_rule(event, delta, rules)
        if items[0].points == 0:
            said = event.outcome.replace("_", " ")
            items = [HistoryItem(rule=f"outcome.{event.outcome}", points=0,
                                 reason=f"{said}: recorded; outcomes score nothing unless "
                                        "a rule says so")]
    return delta, items
