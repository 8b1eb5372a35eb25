"""The scoring rules: a YAML file validated into pydantic models, all or nothing.

Event rules are keyed by what happened: `form.<kind>`, `email.<opened|clicked|delivered|
bounced_hard|bounced_soft|complained|unsubscribed|resubscribed>`, `activity.<name>`.
Fit rules match profile fields; every matching fit rule adds its points.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadscore.domain.segments import Segments
from leadscore.errors import RulesError

EVENT_KEY = re.compile(
    r"^(form\.[a-z0-9_\-]+|activity\.[a-z0-9_\-]+|"
    r"email\.(opened|clicked|delivered|bounced_hard|bounced_soft|complained|unsubscribed|"
    r"resubscribed))$"
)
MIN_HALF_LIFE_DAYS = 7.0  # keeps 2**((t - T0) / H) far inside float range for decades


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericRange(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class FitRule(_Strict):
    id: str = Field(min_length=1, max_length=64)
    field: str = Field(min_length=1, max_length=64)
    equals: str | None = None
    one_of: list[str] | None = Field(default=None, min_length=1)
    contains: list[str] | None = Field(default=None, min_length=1)
    range: NumericRange | None = None
    points: float
    reason: str | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> Self:
        given = [m for m in ("equals", "one_of", "contains", "range") if getattr(self, m)]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, one_of, contains, range")
        return self


class Cap(_Strict):
    """At most `max_events` of this kind score per fixed window of `window_days` (from T0).

    Over the cap, the window's points are scaled down to `max_events` events' worth (dated
    at the window's events' average weight), which keeps the score independent of the
    order events arrive in and lets them be added without reading the lead.
    """

    max_events: int = Field(ge=1)
    window_days: float = Field(ge=1, le=366)


class EventRule(_Strict):
    points: float
    half_life_days: float | None = Field(default=None, ge=MIN_HALF_LIFE_DAYS, le=3650)
    cap: Cap | None = None
    reason: str | None = None


class ValueBand(_Strict):
    min_minor: int = Field(ge=0)
    points: float


class PurchaseRules(_Strict):
    per_purchase: float = 0
    value_bands: list[ValueBand] = Field(default_factory=list)
    half_life_days: float | None = Field(default=None, ge=MIN_HALF_LIFE_DAYS, le=3650)


class Stages(_Strict):
    mql: float
    sql: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.sql < self.mql:
            raise ValueError("the sql threshold must not be below the mql threshold")
        return self


class GradeBands(_Strict):
    """Lower bounds: fit A/B/C (else D) and engagement 1/2/3 (else 4); best first."""

    fit: dict[str, float] = Field(default_factory=lambda: {"A": 30.0, "B": 15.0, "C": 0.0})
    engagement: dict[str, float] = Field(default_factory=lambda: {"1": 60.0, "2": 30.0, "3": 10.0})

    @model_validator(mode="after")
    def _labels(self) -> Self:
        if set(self.fit) != {"A", "B", "C"}:
            raise ValueError("fit bands must be exactly A, B and C (below C is D)")
        if set(self.engagement) != {"1", "2", "3"}:
            raise ValueError("engagement bands must be exactly 1, 2 and 3 (below 3 is 4)")
        return self


class Rules(_Strict):
    version: str = Field(min_length=1, max_length=64)
    engagement_half_life_days: float = Field(ge=MIN_HALF_LIFE_DAYS, le=3650)
    fit: list[FitRule] = Field(default_factory=list)
    engagement: dict[str, EventRule] = Field(default_factory=dict)
    purchase: PurchaseRules = Field(default_factory=PurchaseRules)
    stages: Stages
    grades: GradeBands = Field(default_factory=GradeBands)
    non_opener_after_days: float = Field(default=183, ge=1, le=3650)
    segments: Segments | None = None  # bands synced to the email tools (domain/segments.py)

    @model_validator(mode="after")
    def _keys(self) -> Self:
        bad = [k for k in self.engagement if not EVENT_KEY.match(k)]
        if bad:
            raise ValueError(f"unknown event keys in engagement: {', '.join(sorted(bad))}")
        ids = [r.id for r in self.fit]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate fit rule ids: {', '.join(dupes)}")
        return self

    def half_life_for(self, rule: EventRule) -> float:
        return rule.half_life_days or self.engagement_half_life_days

    def purchase_half_life(self) -> float:
        return self.purchase.half_life_days or self.engagement_half_life_days


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """Name a validation error's place, with the rule id when the place is a fit rule."""
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "fit" and isinstance(loc[1], int):
        fit = data.get("fit") if isinstance(data, Mapping) else None
        if isinstance(fit, list) and loc[1] < len(fit) and isinstance(fit[loc[1]], Mapping):
            rule_id = fit[loc[1]].get("id")
            if rule_id:
                parts[1] = f"{loc[1]} (id={rule_id})"
    return ".".join(parts) or "(top level)"


def parse_rules(text: str, origin: str = "rules") -> Rules:
    """Validate a whole rules document; raise RulesError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: the top level must be a mapping")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": _where(data, tuple(e["loc"])), "problem": e["msg"]} for e in exc.errors()
        ]
        lines = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        raise RulesError(f"{origin}: {lines}", details=details) from None


def default_rules_text() -> str:
    return resources.files("leadscore.domain").joinpath("default_rules.yaml").read_text("utf-8")


def default_rules() -> Rules:
    return parse_rules(default_rules_text(), "default rules")
