"""A test generator of realistic leads for the dashboard: every lead is written through the
real use case (`service.ingest`) from canonical events, so stored scores, stages, grades and
email states are what production would hold. Deterministic for a given seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from builders import activity, event, form, opened

from leadscore.domain.events import Event
from leadscore.domain.rules import Rules
from leadscore.service.ingest import ingest
from leadscore.store.port import LeadStore

INDUSTRIES = ["software", "saas", "retail", "media", "farming", "education"]
TITLES = ["CTO", "Head of Growth", "Marketing Manager", "Student", "Retired teacher",
          "Analyst", "Founder", "Engineer"]
SENIORITY = ["c-level", "vp", "manager", "lead", "individual"]
FORMS = ["newsletter", "content_download", "webinar", "demo_request", "contact"]


def _events_for(i: int, rng: random.Random, now: datetime) -> Iterator[Event]:
    email = f"person{i:06d}@example{i % 97}.com"
    start = now - timedelta(days=rng.randint(1, 40), hours=rng.randint(0, 23))
    profile: dict[str, Any] = {"industry": rng.choice(INDUSTRIES),
                               "job_title": rng.choice(TITLES),
                               "seniority": rng.choice(SENIORITY),
                               "company_size": rng.choice([3, 40, 250, 5000]),
                               "country": rng.choice(["US", "DE", "BR", "ES"])}
    yield form(email, f"f{i}", start, kind=rng.choice(FORMS), **profile)
    for n in range(rng.choice([0, 0, 1, 2, 4, 8])):
        # about a third of opens are privacy prefetches (Apple Mail Privacy Protection)
        yield opened(email, f"o{i}-{n}", start + timedelta(hours=n + 1),
                     machine=rng.random() < 0.35)
    for n in range(rng.choice([0, 0, 0, 1, 3])):
        yield event("email_clicked", email, f"c{i}-{n}", start + timedelta(hours=n + 2),
                    source="esp")
    if rng.random() < 0.3:
        yield activity(email, f"p{i}", start + timedelta(hours=3), name="pricing_page_visit")
    ending = rng.random()
    if ending < 0.05:
        yield event("email_unsubscribed", email, f"u{i}", start + timedelta(hours=9),
                    source="esp")
    elif ending < 0.08:
        yield event("email_bounced", email, f"b{i}", start + timedelta(hours=9),
                    source="esp", hard=True)
    elif ending < 0.10:
        yield event("email_complained", email, f"s{i}", start + timedelta(hours=9),
                    source="esp")


def seed_leads(store: LeadStore, rules: Rules, count: int, now: datetime,
               seed: int = 17) -> None:
    rng = random.Random(seed)
    batch: list[Event] = []
    for i in range(count):
        batch.extend(_events_for(i, rng, now))
        if len(batch) >= 400:
            ingest(store, rules, batch, now)
            batch = []
    if batch:
        ingest(store, rules, batch, now)
