"""JSON bodies with exact decimals: the one parser every wire format starts from.

Kept apart from the marshmallow schemas (`wire.py`) so that functions reading only our
own JSON (`/ingest`, the leads API, plain web forms) never import marshmallow at cold start.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from leadscore.errors import BadRequest

MAX_INT_DIGITS = 30  # far beyond any amount or id we read; Python's own limit is 4,300
MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 30  # `1e10000000` is cheap as a Decimal and ruinous as an int: refuse it
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]", re.ASCII)


class _Refused(ValueError):
    """A number or constant the parser hooks will not convert."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _number(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number longer than {MAX_NUMBER_CHARS} characters")
    value = Decimal(text)
    if value.adjusted() > MAX_EXPONENT:  # tiny numbers are harmless: they round to 0
        raise _Refused(f"a number beyond 1e{MAX_EXPONENT}")
    return value


def _constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number")


def _has_surrogate(value: Any) -> bool:
    """Walked with a list, not recursion: `json.loads` takes nesting a recursive walk of
    two frames per level cannot (a 963-byte body of 450 lists around "\\ud800" was a 500)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse_json(raw: bytes) -> Any:
    """JSON with exact decimals (never floats for money), or a 400 naming the problem.

    Cheap whatever arrives: numbers are bounded before conversion (no 4,300-digit ints, no
    `1e10000000`), NaN and Infinity are refused, and so are lone surrogates (`"\\ud800"`,
    which no UTF-8 text can hold and which fail later when encoded). Nesting deep enough
    to exhaust the parser's recursion is refused like any bad JSON."""
    try:
        data = json.loads(raw, parse_float=_number, parse_int=_int, parse_constant=_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, _Refused) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("body is not valid JSON: nested too deeply") from None
    if SURROGATE_ESCAPE.search(raw) and _has_surrogate(data):
        raise BadRequest("body is not valid JSON: a lone surrogate (\\ud800-\\udfff)")
    return data
