"""Fit rule conditions: one field test, or `all` / `any` / `not` over nested conditions.

A field test names a profile `field` and exactly one matcher:
- `equals: X` / `one_of: [X, Y]`: the folded value (case, accents and punctuation ignored)
  is X or one of them. On `country` both sides are read as ISO alpha-2 codes first ("Spain",
  "ESP" and "es" are one country); on `email_domain` a subdomain matches its domain.
- `contains: [word or phrase, ...]`: whole words or phrases of the folded value.
- `matches: REGEX`: a regular expression searched in the value, case-insensitive, compiled
  when the rules load by RE2, which runs in linear time whatever the pattern (no
  backreferences or lookaround: see `matching.compile_pattern`).
- `range: {min?, max?}`: the number in the value (see `matching.read_number`), inclusive.
- `email_domain: [domain, ...]` or `{domains: [...], free_mail: true}`: the address's
  domain, or a parent of it, is listed (or a free-mail provider). `field` defaults to
  `email_domain` here.
Every matcher is prepared once, when the rules load, so scoring an event re-parses nothing.
"""

from collections.abc import Callable, Mapping
from typing import Any, Self, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from leadscore.domain import matching
from leadscore.domain.defaults import empty_list
from leadscore.domain.limits import ProfileValue
from leadscore.domain.rules_numbers import Points

MATCHERS = ("equals", "one_of", "contains", "matches", "range", "email_domain")
COUNTRY_FIELDS = frozenset({"country"})
DOMAIN_FIELDS = frozenset({"email_domain"})
MAX_DEPTH = 4  # nesting of all/any/not
MAX_TESTS = 32  # field tests in one rule

Test = Callable[[Mapping[str, ProfileValue]], bool]


def private_attrs(model: BaseModel) -> dict[str, Any]:
    """pydantic's store of a model's private attributes, read directly: `model._x` first
    fails the normal lookup and falls back to `__getattr__`, ~2 us a read, several reads per
    event on the scoring path."""
    return cast(dict[str, Any], model.__pydantic_private__)


class Prepared(BaseModel):
    """A rules model whose validators prepare parts kept beside its fields (compiled tests,
    purchase band measures, the rules' content hash). pydantic's `model_copy(update=...)`
    skips validators, so the copy would keep the parts of the old values: a copy with
    changes is validated again instead (rules are copied rarely, read on every event)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        if not update:
            return super().model_copy(deep=deep)
        return self.model_validate({**dict(self), **update})


class _Strict(Prepared):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)  # rules_numbers


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


class DomainTest(_Strict):
    domains: list[str] = Field(default_factory=empty_list)
    free_mail: bool = False

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, data: Any) -> Any:
        return {"domains": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.domains and not self.free_mail:
            raise ValueError("give domains, free_mail: true, or both")
        bad = [d for d in self.domains if "." not in d.strip(".") or "@" in d]
        if bad:
            raise ValueError(f"not a domain: {', '.join(bad)}")
        return self


def _text(value: ProfileValue) -> str:
    return str(value)[:matching.MAX_VALUE_CHARS]


class Condition(_Strict):
    field: str | None = Field(default=None, min_length=1, max_length=64)
    equals: str | None = None
    one_of: list[str] | None = Field(default=None, min_length=1)
    contains: list[str] | None = Field(default=None, min_length=1)
    matches: str | None = Field(default=None, min_length=1)
    range: NumericRange | None = None
    email_domain: DomainTest | None = None
    all_: list["Condition"] | None = Field(default=None, alias="all", min_length=1,
                                         max_length=MAX_TESTS)
    any_: list["Condition"] | None = Field(default=None, alias="any", min_length=1,
                                         max_length=MAX_TESTS)
    not_: "Condition | None" = Field(default=None, alias="not")
    _test: Test = PrivateAttr()

    @model_validator(mode="after")
    def _prepare(self) -> Self:
        given = [m for m in MATCHERS if getattr(self, m) is not None]
        groups = [g for g in ("all_", "any_", "not_") if getattr(self, g) is not None]
        if groups:
            if given or self.field is not None or len(groups) > 1:
                raise ValueError("give one of all, any, not, or a field test; not several")
            self._test = self._group(groups[0])
            return self
        if len(given) != 1:
            raise ValueError("give exactly one of equals, one_of, contains, matches, range, "
                             "email_domain (or all, any, not)")
        if self.field is None and given[0] != "email_domain":
            raise ValueError(f"{given[0]} needs a field")
        self._test = self._field_test(given[0], self.field or "email_domain")
        return self

    def _group(self, group: str) -> Test:
        if group == "not_":
            assert self.not_ is not None
            inner = self.not_._test
            return lambda fields: not inner(fields)
        parts = [c._test for c in (self.all_ or self.any_ or [])]
        if group == "all_":
            return lambda fields: all(t(fields) for t in parts)
        return lambda fields: any(t(fields) for t in parts)

    def _field_test(self, matcher: str, field: str) -> Test:
        check = self._value_check(matcher, field)

        def test(fields: Mapping[str, ProfileValue]) -> bool:
            value = fields.get(field)
            if value is None:
                return False
            return check(str(value).lower() if isinstance(value, bool) else value)
        return test

    def _value_check(self, matcher: str, field: str) -> Callable[[ProfileValue], bool]:
        if matcher in ("equals", "one_of"):
            wanted = [self.equals] if matcher == "equals" else list(self.one_of or [])
            if field in COUNTRY_FIELDS:
                codes = {matching.country_code(w) for w in wanted}
                unknown = [w for w in wanted if matching.country_code(w) is None]
                if unknown:
                    names = ", ".join(map(str, unknown))
                    raise ValueError(f'field "{matcher}": unknown country: {names} (use an '
                                     "ISO 3166 code or the country's English name)")
                return lambda v: (matching.country_code(_text(v))
                                  or matching.fold_text(_text(v))) in codes
            if field in DOMAIN_FIELDS:
                domains = frozenset(str(w).strip().lower().rstrip(".") for w in wanted)
                return lambda v: matching.domain_in(matching.email_domain_of(_text(v)), domains)
            folded = frozenset(_folded(matcher, [str(w) for w in wanted]))
            return lambda v: matching.fold_text(_text(v)) in folded
        if matcher == "contains":
            phrases = _folded(matcher, self.contains or [])
            # whole words, or anywhere for a script without spaces: see matching.has_phrase
            padded = tuple(p if matching.unspaced(p) else f" {p} " for p in phrases)

            def contains(v: ProfileValue) -> bool:
                text = f" {matching.fold_text(_text(v))} "
                return any(p in text for p in padded)
            return contains
        if matcher == "matches":
            assert self.matches is not None
            try:
                pattern = matching.compile_pattern(self.matches)
            except ValueError as exc:
                raise ValueError(f'field "matches": {exc}') from None
            return lambda v: pattern.search(_text(v)) is not None
        if matcher == "range":
            bounds = self.range
            assert bounds is not None
            return lambda v: _in_range(v, bounds)
        test = self.email_domain
        assert test is not None
        listed = frozenset(d.strip().lower().strip(".") for d in test.domains)

        def domain_check(v: ProfileValue) -> bool:
            domain = matching.email_domain_of(_text(v))
            return matching.domain_in(domain, listed) or (
                test.free_mail and matching.domain_in(domain, matching.free_mail_domains()))
        return domain_check

    @property
    def test(self) -> Test:
        """The prepared test: a function of the profile fields."""
        return cast(Test, private_attrs(self)["_test"])

    def holds(self, fields: Mapping[str, ProfileValue]) -> bool:
        return cast(bool, private_attrs(self)["_test"](fields))

    def fields(self) -> set[str]:
        """Every profile field the condition's tests read."""
        children = [c for c in (self.all_ or self.any_ or [])] + (
            [self.not_] if self.not_ else [])
        if not children:
            return {self.field or "email_domain"}
        return set().union(*(c.fields() for c in children))

    def shape(self) -> tuple[int, int]:
        """(nesting depth, number of field tests)."""
        children = [c for c in (self.all_ or self.any_ or [])] + (
            [self.not_] if self.not_ else [])
        if not children:
            return 0, 1
        shapes = [c.shape() for c in children]
        return 1 + max(d for d, _ in shapes), sum(n for _, n in shapes)


def _folded(matcher: str, values: list[str]) -> list[str]:
    """The values folded (see `matching.fold_text`); one with no letter or digit in any
    script would match every value that has none either, so it is refused."""
    folded = [matching.fold_text(v) for v in values]
    empty = [v for v, f in zip(values, folded, strict=True) if not f]
    if empty:
        raise ValueError(f'field "{matcher}": no letter or digit in {", ".join(map(repr, empty))}')
    return folded


def _in_range(value: ProfileValue, bounds: NumericRange) -> bool:
    if isinstance(value, bool):
        return False
    number = float(value) if isinstance(value, int | float) else matching.read_number(value)
    return number is not None and (bounds.min is None or number >= bounds.min) and (
        bounds.max is None or number <= bounds.max)


class FitRule(Condition):
    """A condition worth `points` when it holds; every matching fit rule adds its points."""

    id: str = Field(min_length=1, max_length=64)
    points: Points
    reason: str | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        depth, tests = self.shape()
        if depth > MAX_DEPTH:
            raise ValueError(f"conditions nest {depth} deep; at most {MAX_DEPTH}")
        if tests > MAX_TESTS:
            raise ValueError(f"{tests} field tests in one rule; at most {MAX_TESTS}")
        return self

    def explain(self, fields: Mapping[str, ProfileValue]) -> str:
        if self.reason:
            return self.reason
        if self.field is not None or self.email_domain is not None:
            field = self.field or "email_domain"
            return f"{field} = {fields.get(field)!s}"
        return f"conditions of {self.id} met"
