"""Query parameters of the leads API: one pydantic model per route, one error naming each
bad parameter (400, with `details` of `{"field", "problem"}`)."""

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from leadscore.domain.state import STAGES, Stage
from leadscore.errors import BadRequest

MAX_LIMIT = 500
MAX_HISTORY = 5000


def _digits(value: Any) -> Any:
    """Whole numbers as the URL spells them: "5", never "5.0", "+5" or " 5"."""
    if isinstance(value, str) and not value.isdigit():
        raise ValueError("not a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_digits)]
Q = TypeVar("Q", bound=BaseModel)


def encode_cursor(score: float, lead_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([score, lead_id]).encode()).decode()


def _cursor(value: str) -> tuple[float, str]:
    try:
        score, lead_id = json.loads(base64.urlsafe_b64decode(value.encode()))
        # a lead id is short ASCII, a score finite: JSON's "\ud800" or NaN never came from us
        if (isinstance(score, int | float) and isinstance(lead_id, str) and lead_id.isascii()
                and len(lead_id) <= 100 and math.isfinite(score)):
            return float(score), lead_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        pass
    raise ValueError("not a cursor this API returned")


# What each parameter must be, said once: used for every error pydantic finds in it.
PROBLEMS = {
    "stage": "one of " + ", ".join(STAGES),
    "min_score": "a number",
    "grade": "a fit letter A-D and an engagement digit 1-4, e.g. A1",
    "non_opener": "true or false",
    "cursor": "not a cursor this API returned",
}


class LeadQuery(BaseModel):
    """`GET /leads?stage=&min_score=&grade=&non_opener=&limit=&cursor=` (and `format=`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage | None = None
    min_score: float | None = None
    grade: Annotated[str, Field(pattern=r"^[A-D][1-4]$")] | None = None
    non_opener: Literal["true", "false"] | None = None
    limit: Annotated[WholeNumber, Field(ge=1, le=MAX_LIMIT)] = 50
    cursor: str | None = None
    format: str | None = None

    @field_validator("cursor")
    @classmethod
    def _decodes(cls, value: str | None) -> str | None:
        if value is not None:
            _cursor(value)
        return value

    def store_filters(self) -> dict[str, Any]:
        """Keyword arguments for `LeadStore.list_leads`."""
        out: dict[str, Any] = {"limit": self.limit}
        for name in ("stage", "min_score", "grade"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.non_opener is not None:
            out["non_opener"] = self.non_opener == "true"
        if self.cursor is not None:
            out["after"] = _cursor(self.cursor)
        return out


class HistoryQuery(BaseModel):
    """`GET /leads/{id}/history?limit=`: its newest N entries (default 500, at most 5,000)."""

    model_config = ConfigDict(frozen=True)

    limit: Annotated[WholeNumber, Field(ge=1, le=MAX_HISTORY)] = 500


def parse_query(model: type[Q], args: Mapping[str, str]) -> Q:
    """The query as `model`, or one BadRequest naming every bad parameter."""
    try:
        return model.model_validate(dict(args))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            name = str(error["loc"][0]) if error["loc"] else "(query)"
            if error["type"] == "extra_forbidden":
                problem = "unknown parameter"
            elif name == "limit":
                top = MAX_HISTORY if model is HistoryQuery else MAX_LIMIT
                problem = f"a whole number from 1 to {top}"
            else:
                problem = PROBLEMS.get(name, error["msg"])
            problems.append({"field": name, "problem": problem})
        raise BadRequest(f"{len(problems)} invalid query parameter(s)", details=problems) from None


def lead_filters(args: Mapping[str, str]) -> dict[str, Any]:
    """stage, min_score, grade, non_opener, limit, cursor -> keyword arguments for the store."""
    return parse_query(LeadQuery, args).store_filters()


def history_limit(args: Mapping[str, str]) -> int:
    return parse_query(HistoryQuery, args).limit
