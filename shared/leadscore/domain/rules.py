"""The scoring rules: a YAML (or JSON) file validated into pydantic models, all or nothing.

Event rules are keyed by what happened: `form.<kind>`, `email.<opened|clicked|delivered|
bounced_hard|bounced_soft|complained|unsubscribed|resubscribed>`, `activity.<name>`.
Fit rules match profile fields; every matching fit rule adds its points.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self, cast

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from leadscore.domain import decay, rules_yaml
from leadscore.domain.behaviour import BehaviourRule, Frequency
from leadscore.domain.conditions import (
    Condition,
    DomainTest,
    FitRule,
    NumericRange,
    Prepared,
    Test,
    private_attrs,
)
from leadscore.domain.defaults import empty_list
from leadscore.domain.purchase_rules import PurchaseBand, PurchaseRules, ValueBand
from leadscore.domain.rules_errors import message, where
from leadscore.domain.rules_numbers import FINITE, Limit, Points, Threshold
from leadscore.domain.segments import Segments
from leadscore.domain.website_rules import WebsiteRules
from leadscore.errors import RulesError

__all__ = ["BehaviourRule", "Condition", "DomainTest", "FitRule", "Frequency", "Hysteresis",
           "NumericRange", "PurchaseBand", "PurchaseRules", "Rules", "ValueBand", "parse_rules"]

EVENT_KEY = re.compile(
    r"^(form\.[a-z0-9_\-]+|activity\.[a-z0-9_\-]+|"
    r"email\.(opened|clicked|delivered|bounced_hard|bounced_soft|complained|unsubscribed|"
    r"resubscribed)|"
    r"outcome\.(opportunity_created|deal_won|deal_lost|sales_accepted|sales_rejected))$"
)
MIN_HALF_LIFE_DAYS = decay.MIN_HALF_LIFE_DAYS  # one hour: epoch buckets keep any H finite
MAX_HALF_LIFE_DAYS = decay.MAX_HALF_LIFE_DAYS  # ten years


HalfLife = decay.HalfLife


class _Strict(Prepared):  # a copy with changes is validated again (conditions.Prepared)
    model_config = FINITE


class Cap(_Strict):
    """At most `max_events` of this kind score per fixed window of `window_days` (from T0).

    Over the cap, the window's points are scaled down to `max_events` events' worth (dated
    at the window's events' average weight), which keeps the score independent of the
    order events arrive in and lets them be added without reading the lead.
    """

    max_events: int = Field(ge=1)
    window_days: float = Field(ge=1, le=366)


Category = Annotated[str, Field(pattern=r"^[a-z0-9]{1,32}$")]
DEFAULT_CATEGORY = {"email": "email", "form": "form", "activity": "website"}


class EventRule(_Strict):
    points: Points
    half_life_days: HalfLife | None = None
    cap: Cap | None = None
    reason: str | None = None
    category: Category | None = None  # for `limits`; by default email, form or website


class StageGate(_Strict):
    """What a stage needs: a total score and, optionally, a fit letter and an engagement
    digit at least this good (A best, 1 best), so fit alone cannot make a lead an MQL."""

    score: Threshold
    fit_at_least: Literal["A", "B", "C", "D"] | None = None
    engagement_at_least: Literal["1", "2", "3", "4"] | None = None

    def admits(self, score: float, grade: str) -> bool:
        return score >= self.score and (
            self.fit_at_least is None or grade[0] <= self.fit_at_least) and (
            self.engagement_at_least is None or grade[1] <= self.engagement_at_least)


class Hysteresis(_Strict):
    """How sticky a stage is once reached (see `domain/stages.py` for the exact rule).

    A lead in `mql` or `sql` keeps that stage while it still meets the stage's gate with
    every number lowered by `margin` points (score, fit band floor, engagement band floor),
    and in any case for `min_stay_days` after it entered the stage. Moving up is never
    delayed."""

    margin: float = Field(default=0, ge=0, le=1000)
    min_stay_days: float = Field(default=0, ge=0, le=365)


class Stages(_Strict):
    """`{mql: 40, sql: 80}` (score thresholds) or `{mql: {score: 40, fit_at_least: C,
    engagement_at_least: "3"}, sql: ...}`; `mql`/`sql` stay the score thresholds either way
    and `gates` holds the whole requirement of each stage. `hysteresis: {margin: 5,
    min_stay_days: 7}` (optional) keeps a stage from flapping."""

    mql: Threshold
    sql: Threshold
    gates: dict[Literal["mql", "sql"], StageGate] = Field(default_factory=dict)
    hysteresis: Hysteresis = Field(default_factory=Hysteresis)

    @model_validator(mode="before")
    @classmethod
    def _gate_form(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "gates" in data:
            return data
        out: dict[str, Any] = dict(data)
        gates: dict[str, Any] = {}
        for name in ("mql", "sql"):
            given = data.get(name)
            gates[name] = given if isinstance(given, Mapping) else {"score": given}
            if isinstance(given, Mapping):
                out[name] = given.get("score")
        out["gates"] = gates
        return out

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.sql < self.mql:
            raise ValueError("the sql threshold must not be below the mql threshold")
        return self

    def gate(self, name: Literal["mql", "sql"]) -> StageGate:
        return self.gates.get(name) or StageGate(score=getattr(self, name))


class GradeBands(_Strict):
    """Lower bounds: fit A/B/C (else D) and engagement 1/2/3 (else 4); best first."""

    fit: dict[str, Threshold] = Field(default_factory=lambda: {"A": 30.0, "B": 15.0, "C": 0.0})
    engagement: dict[str, Threshold] = Field(
        default_factory=lambda: {"1": 60.0, "2": 30.0, "3": 10.0})

    @model_validator(mode="after")
    def _labels(self) -> Self:
        if set(self.fit) != {"A", "B", "C"}:
            raise ValueError("fit bands must be exactly A, B and C (below C is D)")
        if set(self.engagement) != {"1", "2", "3"}:
            raise ValueError("engagement bands must be exactly 1, 2 and 3 (below 3 is 4)")
        return self


class Rules(_Strict):
    version: str = Field(min_length=1, max_length=64)
    engagement_half_life_days: HalfLife
    fit: list[FitRule] = Field(default_factory=empty_list)
    engagement: dict[str, EventRule] = Field(default_factory=dict)
    behaviour: list[BehaviourRule] = Field(default_factory=empty_list)
    # at most this many engagement points now per category, e.g. {email: 30, website: 40}
    limits: dict[Category, Limit] = Field(default_factory=dict)
    purchase: PurchaseRules = Field(default_factory=PurchaseRules)
    stages: Stages
    grades: GradeBands = Field(default_factory=GradeBands)
    non_opener_after_days: float = Field(default=183, ge=1, le=3650)
    website: WebsiteRules = Field(default_factory=WebsiteRules)
    segments: Segments | None = None  # bands synced to the email tools (domain/segments.py)
    _fit_tests: tuple[tuple[FitRule, Test], ...] = PrivateAttr(default=())
    _behaviour: dict[str, BehaviourRule] = PrivateAttr(default_factory=dict)
    _content_hash: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _keys(self) -> Self:
        bad = [k for k in self.engagement if not EVENT_KEY.match(k)]
        if bad:
            raise ValueError(f"unknown event keys in engagement: {', '.join(sorted(bad))}")
        ids = [r.id for r in self.fit]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate fit rule ids: {', '.join(dupes)}")
        self._fit_tests = tuple((r, r.test) for r in self.fit)
        for i, rule in enumerate(self.behaviour):
            unknown = [k for k in rule.events if not EVENT_KEY.match(k)]
            if unknown:
                raise ValueError(f'behaviour rule "{rule.id}" (behaviour.{i}.events): unknown '
                                 f"event keys {', '.join(unknown)}")
            if rule.id in self._behaviour:
                raise ValueError(f'duplicate behaviour rule id "{rule.id}"')
            self._behaviour[rule.id] = rule
        self._known_limits()
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True,
                                               exclude={"segments"}),  # not scoring
                               sort_keys=True,
                               separators=(",", ":"), ensure_ascii=False)
        self._content_hash = hashlib.sha256(canonical.encode()).hexdigest()
        return self

    def _known_limits(self) -> None:
        """A limit on a category no rule scores in is a typo (`webiste`): it would limit
        nothing, silently."""
        scored = {_scored_category(k, r) for k, r in self.engagement.items()} | {
            _scored_category(r.events[0], r) for r in self.behaviour}
        unknown = sorted(set(self.limits) - scored)
        if unknown:
            known = ", ".join(sorted(scored)) or "none: no engagement or behaviour rules"
            raise ValueError(f"limits on categories no rule scores in: {', '.join(unknown)} "
                             f"(the rules' categories: {known})")

    @property
    def content_hash(self) -> str:
        """sha256 of the parsed rules as canonical JSON: equal for files that differ only in
        layout, comments or spelling of the stage form; changes with any rule (even when
        `version` was not bumped)."""
        return cast(str, private_attrs(self)["_content_hash"])

    def fit_tests(self) -> tuple[tuple[FitRule, Test], ...]:
        """Each fit rule with its prepared test, read once per scoring (a private attribute
        of a pydantic model costs a slow attribute lookup on every access)."""
        return cast(tuple[tuple[FitRule, Test], ...], private_attrs(self)["_fit_tests"])

    def behaviour_by_id(self) -> Mapping[str, BehaviourRule]:
        """The behaviour rules by id, read-only: rules are shared by every request, so no
        caller may change them through this. A view (~65 ns, once per breakdown), not a copy;
        the dict itself stays a plain one, so Rules still copy and pickle."""
        return MappingProxyType(private_attrs(self)["_behaviour"])

    def category_for(self, key: str, rule: EventRule | BehaviourRule) -> str | None:
        """The category an event's points count in; None when no limits are set (keys
        then carry no category, as before limits existed)."""
        return _scored_category(key, rule) if self.limits else None

    def half_life_for(self, rule: EventRule | BehaviourRule) -> float:
        return rule.half_life_days or self.engagement_half_life_days

    def purchase_half_life(self) -> float:
        return self.purchase.half_life_days or self.engagement_half_life_days


def _scored_category(key: str, rule: EventRule | BehaviourRule) -> str:
    """The category a rule's points count in: its own, else by its (first) event's kind."""
    if rule.category:
        return rule.category
    first = rule.events[0] if isinstance(rule, BehaviourRule) else key
    return DEFAULT_CATEGORY.get(first.split(".", 1)[0], "other")


def parse_rules(text: str, origin: str = "rules") -> Rules:
    """Validate a whole rules document; raise RulesError listing every problem."""
    import yaml  # here, not at the top: the built-in rules and JSON files never need it, and
    # PyYAML's import and pure-Python parse cost ~25 ms of a function's cold start (issue 20)

    try:
        data = yaml.load(text, Loader=rules_yaml.unique_key_loader())  # noqa: S506 (safe)
    except yaml.YAMLError as exc:
        raise RulesError(f"{origin}: not valid YAML: {exc}") from None
    return rules_from_data(data, origin)


def parse_rules_json(text: str, origin: str = "rules") -> Rules:
    """`parse_rules` for a JSON document (a `.json` LEADSCORE_RULES file, the built-in rules'
    JSON twin): the same rules and errors, read by the standard library."""
    try:
        data = json.loads(text, object_pairs_hook=rules_yaml.unique_json_object)
    except ValueError as exc:
        raise RulesError(f"{origin}: not valid JSON: {exc}") from None
    return rules_from_data(data, origin)


def parse_rules_file(text: str, origin: str) -> Rules:
    """The rules of the file named `origin`: JSON for a `.json` name (read without PyYAML,
    a faster cold start), YAML otherwise."""
    parse = parse_rules_json if origin.lower().endswith(".json") else parse_rules
    return parse(text, origin)


def rules_from_data(data: Any, origin: str = "rules") -> Rules:
    """Validate a parsed rules document; raise RulesError listing every problem."""
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: the top level must be a mapping")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": where(data, tuple(e["loc"])), "problem": e["msg"],
             "message": message(data, tuple(e["loc"]), e["msg"])} for e in exc.errors()
        ]
        lines = "; ".join(d["message"] for d in details)
        raise RulesError(f"{origin}: {lines}", details=details) from None


def rules_as_json(rules: Rules) -> str:
    """Validated rules as a JSON rules file that reads back to the same rules (the same
    content hash): what a deployment ships as LEADSCORE_RULES so no function imports PyYAML.
    Only what the file gave is written (`exclude_unset`), so defaults stay defaults."""
    data = rules.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def default_rules_text() -> str:
    """The built-in rules as people read and copy them (YAML, with comments)."""
    return resources.files("leadscore.domain").joinpath("default_rules.yaml").read_text("utf-8")


def default_rules_json(yaml_text: str) -> str:
    """The JSON twin of the built-in rules' YAML, as `default_rules.json` holds it: the
    functions read the twin, so no cold start imports or runs PyYAML. A test keeps the two
    files equal; regenerate the twin with
    `python -c "from leadscore.domain.rules import write_default_json; write_default_json()"`."""
    import yaml

    return json.dumps(yaml.safe_load(yaml_text), indent=1, ensure_ascii=False) + "\n"


def write_default_json() -> None:
    folder = resources.files("leadscore.domain")
    target = folder.joinpath("default_rules.json")
    with resources.as_file(target) as path:
        path.write_text(default_rules_json(default_rules_text()), "utf-8")


def default_rules() -> Rules:
    twin = resources.files("leadscore.domain").joinpath("default_rules.json").read_text("utf-8")
    return parse_rules_json(twin, "default rules")
