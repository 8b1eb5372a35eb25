"""Build Segment messages and run them through the mapping and the visitors use case."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadscore.domain import field_map
from leadscore.domain.rules import Rules
from leadscore.domain.visitors import Tracked
from leadscore.service.visitors import TrackResult, record
from leadscore.tracking.mapping import Policy, map_message

KEEP = timedelta(days=90)


def policy(rules: Rules, caller: str = "server", captcha: bool = False) -> Policy:
    mapping = field_map.build()
    return Policy(caller=caller, website=rules.website,  # type: ignore[arg-type]
                  client_events=frozenset(rules.website.events), field_mapping=mapping,
                  profile_fields=frozenset(field_map.DEFAULT_ALIASES),
                  captcha_required=captcha)


def page(anon: str, path: str, at: datetime, mid: str, user: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "page", "anonymousId": anon, "messageId": mid,
                            "timestamp": at.isoformat(), "properties": {"path": path}}
    if user:
        body["userId"] = user
    return body


def identify(anon: str | None, email: str, at: datetime, mid: str,
             user: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "identify", "messageId": mid, "timestamp": at.isoformat(),
                            "traits": {"email": email}}
    if anon:
        body["anonymousId"] = anon
    if user:
        body["userId"] = user
    return body


def mapped(messages: list[dict[str, Any]], rules: Rules, now: datetime,
           caller: str = "server", captcha: bool = False) -> list[Tracked]:
    return [map_message(m, "batch", None, now, policy(rules, caller, captcha))
            for m in messages]


def send(store: Any, rules: Rules, messages: list[dict[str, Any]], now: datetime,
         caller: str = "server", captcha: bool = False,
         visitors: Any = None) -> TrackResult:
    """`visitors`: the visitor records' store, when not `store` itself (a recording one)."""
    return record(store, store if visitors is None else visitors, rules,
                  mapped(messages, rules, now, caller, captcha), now, KEEP)
