"""Small builders for canonical events in tests (payload fixtures live in tests/events/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.domain.events import EVENT_ADAPTER, Event


def event(kind: str, email: str, key: str, at: datetime, source: str = "test",
          **fields: Any) -> Event:
    return EVENT_ADAPTER.validate_python({
        "type": kind, "email": email, "source": source, "idempotency_key": key,
        "occurred_at": at, **fields})


def opened(email: str, key: str, at: datetime, machine: bool = False) -> Event:
    return event("email_opened", email, key, at, source="esp", machine_open=machine)


def activity(email: str, key: str, at: datetime, name: str = "website_visit") -> Event:
    return event("activity", email, key, at, source="tracker", activity=name)


def form(email: str, key: str, at: datetime, kind: str = "newsletter",
         **profile: Any) -> Event:
    return event("form_submitted", email, key, at, source="web", form_kind=kind,
                 profile=profile)
