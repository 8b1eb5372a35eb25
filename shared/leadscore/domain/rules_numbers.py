"""The numbers a rules file gives: points and score thresholds, finite and bounded.

A NaN, an infinity or a number near float's limit would pass a plain `float` field and then
break scoring: NaN points make every write of the lead fail (its score is stored NOT NULL),
an infinite score is stored and can never be read back, a NaN bound never matches. So every
float in the rules is finite (`allow_inf_nan=False` on every rules model), and points and
thresholds are also at most `MAX_POINTS` either way: far beyond any real rule, far below
where sums of them lose precision or overflow.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

MAX_POINTS = 1_000_000.0

# points a rule adds (negative: takes away), and score thresholds (stages, grades, bands)
Points = Annotated[float, Field(ge=-MAX_POINTS, le=MAX_POINTS, allow_inf_nan=False)]
Threshold = Points
# a limit on a category's points: at least 0
Limit = Annotated[float, Field(ge=0, le=MAX_POINTS, allow_inf_nan=False)]

# every rules model's config: no NaN or infinity in any float (ranges, days, margins...)
FINITE = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
