"""Segments by score: named bands a marketer builds campaigns on in the email tool.

The rules file's optional `segments` section lists bands in order; a lead belongs to the
first band it matches (by score, grade, stage and the non-opener flag). Each band has an
email frequency hint (synced as a field, for the tool's automations to read) and, per
tool, the tag or list that carries it. Pure: no I/O; `band_for` reads the lead's view.
"""

import re
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.domain.defaults import empty_list
from leadscore.domain.rules_numbers import FINITE, Threshold
from leadscore.domain.state import STAGES

TOOLS = ("mailchimp", "brevo", "sendgrid")
GRADE_PREFIX = re.compile(r"^[A-D][1-4]?$")  # a fit letter, optionally its engagement digit


class Band(BaseModel):
    model_config = FINITE

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,30}$")
    min_score: Threshold | None = None  # at least this score
    grades: list[str] = Field(default_factory=empty_list)  # grade prefixes: "A", "B1"
    stages: list[str] = Field(default_factory=empty_list)
    non_opener: bool | None = None  # only flagged (True) or only not flagged (False)
    frequency: str = Field(default="weekly", max_length=40)
    # per tool: a Mailchimp tag name, a Brevo list id, a SendGrid list id; absent -> the
    # Mailchimp tag `leadscore-<name>` and no Brevo/SendGrid list
    targets: dict[str, str] = Field(default_factory=dict)

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: list[str]) -> list[str]:
        """Stage names in any case (`SQL`); an unknown one would never match, silently."""
        folded = [s.lower() for s in value]
        unknown = [s for s, f in zip(value, folded, strict=True) if f not in STAGES]
        if unknown:
            raise ValueError(f"unknown stages {', '.join(unknown)}: the stages are "
                             f"{', '.join(STAGES)}")
        return folded

    @field_validator("grades")
    @classmethod
    def _known_grades(cls, value: list[str]) -> list[str]:
        """Grade prefixes in any case (`a`, `b1`); another would never match, silently."""
        folded = [g.upper() for g in value]
        unknown = [g for g, f in zip(value, folded, strict=True) if not GRADE_PREFIX.match(f)]
        if unknown:
            raise ValueError(f"unknown grades {', '.join(unknown)}: a grade is a fit letter "
                             "A-D, optionally with an engagement digit 1-4 (A, B1)")
        return folded

    @model_validator(mode="after")
    def _known_tools(self) -> Self:
        unknown = sorted(set(self.targets) - set(TOOLS))
        if unknown:
            raise ValueError(f"unknown tools in targets: {', '.join(unknown)}")
        return self

    def matches(self, score: float, grade: str, stage: str, non_opener: bool) -> bool:
        return ((self.min_score is None or score >= self.min_score)
                and (not self.grades or any(grade.startswith(g) for g in self.grades))
                and (not self.stages or stage in self.stages)
                and (self.non_opener is None or self.non_opener == non_opener))

    def target(self, tool: str) -> str | None:
        if tool in self.targets:
            return self.targets[tool] or None
        return f"leadscore-{self.name}" if tool == "mailchimp" else None


def _default_bands() -> list[Band]:
    return [
        Band(name="dormant", non_opener=True, frequency="monthly"),
        Band(name="hot", min_score=80, frequency="twice-weekly"),
        Band(name="warm", min_score=40, frequency="weekly"),
        Band(name="cold", frequency="fortnightly"),
    ]


class Segments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: list[Band] = Field(default_factory=_default_bands, min_length=1)

    @model_validator(mode="after")
    def _unique_and_total(self) -> Self:
        names = [b.name for b in self.bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate band names: {', '.join(dupes)}")
        last = self.bands[-1]  # band_for finds no band for a lead it does not match
        if last.min_score is not None or last.grades or last.stages or (
                last.non_opener is not None):
            raise ValueError("the last band must match every lead: no min_score, grades, "
                             "stages or non_opener")
        return self

    def band_for(self, score: float, grade: str, stage: str, non_opener: bool) -> Band:
        return next(b for b in self.bands if b.matches(score, grade, stage, non_opener))


DEFAULT_SEGMENTS = Segments()


def segments_of(rules: Any) -> Segments:
    """The rules file's segments, or the defaults (hot 80+, warm 40+, cold, dormant)."""
    found = getattr(rules, "segments", None)
    return found if isinstance(found, Segments) else DEFAULT_SEGMENTS
