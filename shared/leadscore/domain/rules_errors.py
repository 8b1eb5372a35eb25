"""Where a rules file's validation error is, and one line a person can act on.

Places are named as the file spells them, with the id of the listed rule they are in:
`fit.10 (id=student).contains`, `purchase.bands.0 (id=big-spender).total_spend`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def where(data: Any, loc: tuple[int | str, ...]) -> str:
    """Name a validation error's place, with the rule id when the place is a listed rule."""
    loc = _shown(loc)
    parts = [str(p) for p in loc]
    rule_id = _fit_rule_id(data, loc)
    if rule_id:
        parts[1] = f"{loc[1]} (id={rule_id})"
    band_id = _band_id(data, loc)
    if band_id:
        parts[2] = f"{loc[2]} (id={band_id})"
    return ".".join(parts) or "(top level)"


def _band_id(data: Any, loc: tuple[int | str, ...]) -> str | None:
    """The id of the purchase band at `purchase.bands.<i>`, if the place is one."""
    if len(loc) >= 3 and loc[:2] == ("purchase", "bands") and isinstance(loc[2], int):
        purchase = data.get("purchase") if isinstance(data, Mapping) else None
        bands = purchase.get("bands") if isinstance(purchase, Mapping) else None
        if isinstance(bands, list) and loc[2] < len(bands) and isinstance(bands[loc[2]],
                                                                          Mapping):
            band_id = bands[loc[2]].get("id")
            return str(band_id) if band_id else None
    return None


def _shown(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The place as the file spells it: a stage's gate is written under the stage."""
    return loc[:1] + loc[2:] if loc[:2] == ("stages", "gates") else loc


def _fit_rule_id(data: Any, loc: tuple[int | str, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] in ("fit", "behaviour") and isinstance(loc[1], int):
        fit = data.get(loc[0]) if isinstance(data, Mapping) else None
        if isinstance(fit, list) and loc[1] < len(fit) and isinstance(fit[loc[1]], Mapping):
            rule_id = fit[loc[1]].get("id")
            return str(rule_id) if rule_id else None
    return None


def message(data: Any, loc: tuple[int | str, ...], problem: str) -> str:
    """One line a person can act on: `fit rule "x": field "range": min is greater than max`."""
    problem = problem.removeprefix("Value error, ")
    loc = _shown(loc)
    if len(loc) >= 2 and loc[0] == "fit":
        rule_id = _fit_rule_id(data, loc)
        head = f'fit rule "{rule_id}"' if rule_id else f"fit rule #{loc[1]}"
        rest = loc[2:]
    elif len(loc) >= 2 and loc[0] == "behaviour":
        rule_id = _fit_rule_id(data, loc)
        head = f'behaviour rule "{rule_id}"' if rule_id else f"behaviour rule #{loc[1]}"
        rest = loc[2:]
    elif len(loc) >= 2 and loc[0] == "engagement":
        head, rest = f'engagement rule "{loc[1]}"', loc[2:]
    elif len(loc) >= 3 and loc[:2] == ("purchase", "bands") and isinstance(loc[2], int):
        band_id = _band_id(data, loc)
        head = f'purchase band "{band_id}"' if band_id else f"purchase band #{loc[2]}"
        rest = loc[3:]
    else:
        head, rest = "", loc
    where = f'field "{".".join(str(p) for p in rest)}"' if rest else ""
    return ": ".join(p for p in (head, where, problem) if p)
