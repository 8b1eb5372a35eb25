"""Query parameters of the leads API, validated with one error that names each bad one."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from leadscore.domain.state import STAGES
from leadscore.errors import BadRequest

GRADE = re.compile(r"^[A-D][1-4]$")
MAX_LIMIT = 500


def encode_cursor(score: float, lead_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([score, lead_id]).encode()).decode()


def _cursor(value: str) -> tuple[float, str]:
    try:
        score, lead_id = json.loads(base64.urlsafe_b64decode(value.encode()))
        if isinstance(score, int | float) and isinstance(lead_id, str):
            return float(score), lead_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        pass
    raise ValueError("not a cursor this API returned")


MAX_HISTORY = 5000


def history_limit(args: Mapping[str, str]) -> int:
    """`?limit=` for a lead's history: its newest N entries (default 500, at most 5,000)."""
    value = args.get("limit", "500")
    if not value.isdigit() or not 1 <= int(value) <= MAX_HISTORY:
        raise BadRequest("invalid query parameter", details=[
            {"field": "limit", "problem": f"a whole number from 1 to {MAX_HISTORY}"}])
    return int(value)


def lead_filters(args: Mapping[str, str]) -> dict[str, Any]:
    """stage, min_score, grade, non_opener, limit, cursor -> keyword arguments for the store."""
    out: dict[str, Any] = {"limit": 50}
    problems: list[dict[str, str]] = []

    def bad(name: str, problem: str) -> None:
        problems.append({"field": name, "problem": problem})

    known = {"stage", "min_score", "grade", "non_opener", "limit", "cursor", "format"}
    for name in args:
        if name not in known:
            bad(name, "unknown parameter")
    if "stage" in args:
        if args["stage"] in STAGES:
            out["stage"] = args["stage"]
        else:
            bad("stage", "one of " + ", ".join(STAGES))
    if "min_score" in args:
        try:
            out["min_score"] = float(args["min_score"])
        except ValueError:
            bad("min_score", "a number")
    if "grade" in args:
        if GRADE.match(args["grade"]):
            out["grade"] = args["grade"]
        else:
            bad("grade", "a fit letter A-D and an engagement digit 1-4, e.g. A1")
    if "non_opener" in args:
        if args["non_opener"] in ("true", "false"):
            out["non_opener"] = args["non_opener"] == "true"
        else:
            bad("non_opener", "true or false")
    if "limit" in args:
        if args["limit"].isdigit() and 1 <= int(args["limit"]) <= MAX_LIMIT:
            out["limit"] = int(args["limit"])
        else:
            bad("limit", f"a whole number from 1 to {MAX_LIMIT}")
    if "cursor" in args:
        try:
            out["after"] = _cursor(args["cursor"])
        except ValueError as exc:
            bad("cursor", str(exc))
    if problems:
        raise BadRequest(f"{len(problems)} invalid query parameter(s)", details=problems)
    return out
