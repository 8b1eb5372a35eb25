"""Query parameters and bodies of the leads API: one pydantic model per route, one error
naming each bad parameter or field (400, with `details` of `{"field", "problem"}`)."""

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

from leadscore.domain.events import checked_email
from leadscore.domain.identity import is_lead_id, normalise_email
from leadscore.domain.state import STAGES, Stage
from leadscore.errors import BadRequest
from leadscore.providers.json_body import parse_json

MAX_LIMIT = 500
MAX_HISTORY = 5000
ADDRESS_BODY_BYTES = 4096  # `{"email": ...}`: an address is at most 254 characters


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
        # a lead id as we spell them, a score finite: JSON's "\ud800", NaN, or an id that is
        # no Firestore document id ("__x__", "a/b": a 500 there) never came from us
        if (isinstance(score, int | float) and isinstance(lead_id, str)
                and is_lead_id(lead_id) and math.isfinite(score)):
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


class AddressBody(BaseModel):
    """`POST /leads/lookup` and `POST /leads/erase`: `{"email": "..."}`. An address goes in a
    body, never in a URL: request logs (Cloud Run's too) keep every URL in clear."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    email: str

    @field_validator("email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        checked_email(normalise_email(value))  # the check every stored address passed
        # as the caller spelled it, trimmed: `find_lead` and the erasure fold every spelling
        return value.strip()


BODY_PROBLEMS = {"missing": "required: the lead's address",
                 "string_type": "must be a string: the lead's address",
                 "extra_forbidden": "unknown field"}


def address_in(raw: bytes) -> str:
    """The address of a `{"email": "..."}` body, or one BadRequest naming what is wrong:
    not JSON, not an object, `email` missing or not a string, not an address, another field.
    The body is bounded by the caller (`ADDRESS_BODY_BYTES`); nothing here repeats it."""
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object: {"email": "..."}',
                         details=[{"field": "(body)", "problem": "not a JSON object"}])
    try:
        return AddressBody.model_validate(data).email
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in error["loc"]) or "(body)",
                     "problem": BODY_PROBLEMS.get(error["type"], error["msg"])}
                    for error in exc.errors(include_url=False, include_input=False)]
        raise BadRequest(f"{len(problems)} invalid field(s) in the body",
                         details=problems) from None


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
