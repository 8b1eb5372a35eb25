"""A fixed-seed population of leads whose true conversion model is known.

Each lead signs up to the newsletter (with a job title), may request a demo, may visit the
pricing page a few times, all before the cut-off. Its chance of winning in the window after
the cut-off is a logistic function of those facts (TRUE_EFFECTS): demo requests and pricing
visits raise it, students lower it. Winners win either by a `deal_won` outcome or by a paid
purchase; some non-winners buy and are fully refunded (not a win); after winning, a lead
completes onboarding (an activity only converters have, for the leakage test). A few leads
won before the cut-off and some are first seen after it: both must be excluded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadscore.domain.events import EVENT_ADAPTER, Event

TRUE_INTERCEPT = -2.6
TRUE_EFFECTS = {"demo_request": 1.8, "pricing_visits": 0.5, "student": -1.6}


@dataclass
class GeneratedLead:
    email: str
    demo: bool
    pricing_visits: int
    student: bool
    young: bool  # first seen after the cut-off
    converted_before: bool
    converted: bool  # won in the window after the cut-off
    events: list[Event] = field(default_factory=list)

    @property
    def true_logit(self) -> float:
        return (TRUE_INTERCEPT + TRUE_EFFECTS["demo_request"] * self.demo
                + TRUE_EFFECTS["pricing_visits"] * self.pricing_visits
                + TRUE_EFFECTS["student"] * self.student)

    @property
    def included(self) -> bool:
        return not self.young and not self.converted_before


def event(kind: str, email: str, key: str, at: datetime, source: str = "test",
          **fields: Any) -> Event:
    return EVENT_ADAPTER.validate_python({
        "type": kind, "email": email, "source": source, "idempotency_key": key,
        "occurred_at": at, **fields})


def form(email: str, key: str, at: datetime, kind: str, **profile: Any) -> Event:
    return event("form_submitted", email, key, at, source="web", form_kind=kind, profile=profile)


def activity(email: str, key: str, at: datetime, name: str) -> Event:
    return event("activity", email, key, at, source="tracker", activity=name)


def generate(n: int, cutoff: datetime, window_days: int = 90, seed: int = 7) -> list[GeneratedLead]:
    rng = random.Random(seed)
    leads = []
    for i in range(n):
        email = f"lead{i:06d}@example{i % 97}.com"
        young = rng.random() < 0.1
        start = cutoff + timedelta(days=rng.uniform(1, 30)) if young else \
            cutoff - timedelta(days=rng.uniform(5, 120))
        student = rng.random() < 0.2
        lead = GeneratedLead(email=email, demo=rng.random() < 0.25,
                             pricing_visits=rng.choice([0, 0, 0, 1, 2, 3]), student=student,
                             young=young, converted_before=False, converted=False)
        span = ((cutoff if not young else start + timedelta(days=30)) - start).total_seconds()

        def at(share: float, base: datetime = start, width: float = span) -> datetime:
            return base + timedelta(seconds=share * width)

        lead.events.append(form(email, f"n{i}", start, "newsletter",
                                job_title="student" if student else "marketing manager"))
        if lead.demo:
            lead.events.append(form(email, f"d{i}", at(rng.uniform(0.1, 0.99)), "demo_request"))
        for v in range(lead.pricing_visits):
            lead.events.append(activity(email, f"p{i}-{v}", at(rng.uniform(0.1, 0.99)),
                                        "pricing_page_visit"))
        if not young and rng.random() < 0.03:  # already a customer at the cut-off
            lead.converted_before = True
            lead.events.append(event("outcome", email, f"wb{i}", at(0.99), source="crm",
                                     outcome="deal_won"))
        elif not young and rng.random() < 1 / (1 + math.exp(-lead.true_logit)):
            lead.converted = True
            won = cutoff + timedelta(days=rng.uniform(1, window_days - 1))
            if rng.random() < 0.7:
                lead.events.append(event("outcome", email, f"w{i}", won, source="crm",
                                         outcome="deal_won", amount_minor=500000, currency="EUR"))
            else:
                lead.events.append(event("purchase_made", email, f"b{i}", won, source="shop",
                                         order_id=f"o{i}", amount_minor=9900, currency="EUR"))
            lead.events.append(activity(email, f"on{i}", won + timedelta(days=1),
                                        "onboarding_completed"))
        elif not young and rng.random() < 0.05:  # bought and got all the money back
            paid = cutoff + timedelta(days=rng.uniform(1, 40))
            lead.events.append(event("purchase_made", email, f"r{i}", paid, source="shop",
                                     order_id=f"o{i}", amount_minor=9900, currency="EUR"))
            lead.events.append(event("purchase_refunded", email, f"rf{i}",
                                     paid + timedelta(days=3), source="shop", order_id=f"o{i}",
                                     refund_id=f"re{i}", amount_minor=9900, currency="EUR"))
        leads.append(lead)
    return leads


def all_events(leads: list[GeneratedLead], before: datetime | None = None) -> list[Event]:
    return [e for lead in leads for e in lead.events
            if before is None or e.occurred_at < before]
