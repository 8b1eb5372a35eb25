"""Behaviour rules: points for events that match a URL, page, campaign or UTM pattern, and
for frequency ("3 pricing-page visits within 7 days"), exact and order-independent.

A rule names event kinds (`events`, the engagement keys), an optional condition `where`
over the event's fields (the same tests as fit rules: `contains`, `matches`, `one_of`...)
and its points. The fields are `url`, `page` (the URL's path), `campaign` (the event's own,
else the URL's `utm_campaign`) and `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`,
`utm_content` from the URL's query.

Without `frequency` every matching event earns the points, fading like engagement.

With `frequency: {count: N, within_days: W}` the matching events are counted in *fixed*
windows of W days (window k covers T0 + k*W to T0 + (k+1)*W, T0 = 2025-01-01 UTC): each
event adds 1 to the counter `freq|<id>|<W>|<half-life seconds>|<k>`, a blind increment, so
any writer in any order counts it (Firestore's blind path included). When the lead is
materialised, every window whose count has reached N awards the points once, dated at the
window's start (so an award fades from there, and is the same whichever event completed it
and whenever it arrived). Fixed windows are what makes this exact without reading events:
N events that straddle two windows do not count (a sliding window would need every event's
time). Windows far in the past are pruned like accumulator buckets.
"""

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import SplitResult, parse_qs, urlsplit

from pydantic import BaseModel, Field, field_validator

from leadscore.domain import decay
from leadscore.domain.conditions import Condition
from leadscore.domain.limits import ProfileValue
from leadscore.domain.rules_numbers import FINITE, Points

FREQ = "freq|"
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
EVENT_FIELDS = ("url", "page", "campaign", *UTM)  # what `event_fields` gives a `where`


class _Strict(BaseModel):
    model_config = FINITE


class Frequency(_Strict):
    count: int = Field(ge=2, le=1000)
    within_days: float = Field(ge=1 / 24, le=366)


class BehaviourRule(_Strict):
    id: str
    events: list[str] = Field(min_length=1)
    where: Condition | None = None
    points: Points
    frequency: Frequency | None = None
    half_life_days: float | None = None
    reason: str | None = None
    category: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,32}$")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError("must be a lower-case slug: letters, digits, '_' or '-'")
        return value

    @field_validator("where")
    @classmethod
    def _event_fields(cls, value: Condition | None) -> Condition | None:
        unknown = sorted(value.fields() - set(EVENT_FIELDS)) if value is not None else []
        if unknown:  # a typo (`pgae`) would never match, silently
            raise ValueError(f"unknown event field {', '.join(unknown)}: a behaviour rule's "
                             f"where reads {', '.join(EVENT_FIELDS)}")
        return value

    @field_validator("half_life_days")
    @classmethod
    def _half_life(cls, value: float | None) -> float | None:
        if value is not None and not decay.MIN_HALF_LIFE_DAYS <= value <= decay.MAX_HALF_LIFE_DAYS:
            raise ValueError("a half-life must be from 1 hour (0.0417 days) to 3650 days")
        return value

    def matches(self, key: str, fields: Mapping[str, ProfileValue]) -> bool:
        return key in self.events and (self.where is None or self.where.holds(fields))


def split_url(url: str) -> SplitResult | None:
    """A URL from outside split into its parts, or None when Python refuses to split it
    (an unclosed IPv6 host, "http://[x", raises ValueError): senders do send such links,
    and an event must never fail on one."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def event_fields(url: str | None, campaign: str | None) -> dict[str, ProfileValue]:
    """The fields a behaviour rule's `where` reads, from an event's URL and campaign (a URL
    that cannot be split gives no page or UTM fields: only rules on `url` itself see it)."""
    fields: dict[str, ProfileValue] = {}
    if url:
        fields["url"] = url
        parts = split_url(url)
        if parts is not None:
            fields["page"] = parts.path or "/"
            query = parse_qs(parts.query)
            for name in UTM:
                if query.get(name):
                    fields[name] = query[name][0]
    chosen = campaign or fields.get("utm_campaign")
    if chosen:
        fields["campaign"] = chosen
    return fields


def window_of(t: datetime, days: float) -> int:
    return math.floor(decay.days_since_epoch(t) / days)


def counter_key(rule: BehaviourRule, half_life_days: float, t: datetime) -> str:
    assert rule.frequency is not None
    w = rule.frequency.within_days
    return (f"{FREQ}{rule.id}|{w:g}|{decay.half_life_seconds(half_life_days)}|"
            f"{window_of(t, w)}")


def _parts(key: str) -> tuple[str, float, float, int]:
    _, rule_id, window, seconds, bucket = key.split("|")
    return rule_id, float(window), int(seconds) / decay.DAY, int(bucket)


def awards(counters: Mapping[str, int], rules_by_id: Mapping[str, BehaviourRule],
           now: datetime) -> dict[str, list[tuple[float, float]]]:
    """Each frequency rule's awards at `now`: (points now, half-life days) per window whose
    count reached the rule's N."""
    out: dict[str, list[tuple[float, float]]] = {}
    for key, count in counters.items():
        if not key.startswith(FREQ):
            continue
        rule_id, window, half_life, bucket = _parts(key)
        rule = rules_by_id.get(rule_id)
        if rule is None or rule.frequency is None or count < rule.frequency.count:
            continue
        start = decay.T0 + timedelta(days=bucket * window)
        out.setdefault(rule_id, []).append(
            (decay.faded(rule.points, start, now, half_life), half_life))
    return out


def expired(key: str, now: datetime) -> bool:
    """A window counter that can no longer matter: it ended 64 half-lives ago."""
    _, window, half_life, bucket = _parts(key)
    return decay.T0 + timedelta(days=(bucket + 1) * window + 64 * half_life) < now
