"""JSON bodies with exact decimals: the one parser every wire format starts from.

Kept apart from the marshmallow schemas (`wire.py`) so that functions reading only our
own JSON (`/ingest`, the leads API, plain web forms) never import marshmallow at cold start.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from leadscore.errors import BadRequest


def parse_json(raw: bytes) -> Any:
    """JSON with exact decimals (never floats for money), or a 400 naming the problem.

    Nesting deep enough to exhaust the parser's recursion is refused like any bad JSON."""
    try:
        return json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("body is not valid JSON: nested too deeply") from None
