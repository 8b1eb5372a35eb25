"""A lead's stage from its exact score, with hysteresis so sales is not sent flapping leads.

Without hysteresis the stage is the best stage whose gate admits the lead (`StageGate`).
With `stages.hysteresis: {margin: m, min_stay_days: d}` a lead keeps the stage it is
*stored* at (`mql` or `sql`) when the fresh stage would be lower, as long as either

- it still passes that stage's gate with every number lowered by m: score >= threshold - m,
  fit >= the floor of `fit_at_least`'s band - m, engagement >= the floor of
  `engagement_at_least`'s band - m; or
- fewer than d days have passed since it entered the stage (`stage_since`).

If it keeps neither, it falls to the best lower stage it holds the same way (an SQL whose
score fell below `sql - m` but not below `mql - m` becomes an MQL), else to what its fresh
score gives. Moving up is never delayed, and a purchase makes a customer whatever the score.

So the stage is a pure function of (stored stage, stage_since, the exact score, fit and
engagement at `now`): exact, and it needs no clock and no event order. The facts (and so
the score) do not depend on the order events arrive in; the stage depends on the order only
inside the band of width m under a threshold, where by design it keeps what it had: two
writers that each saw a different intermediate score can leave a lead at `mql` with 37
points (it was above 40 once) or at `lead` (it never was), but never outside the band.
Memory starts only once time has passed: a stage entered at the same `now` (an earlier batch
of one request, one decay run) is not kept, so all the events applied at one moment give
the same stage in any order and any batching.
Firestore's blind path materialises after its increments from the lead it reads, with its
stored stage, so it follows the same rule; a rebuild (rescore, or a rules change) starts
from the stored stage too, so a replay does not flip a lead inside the band.
`tests/unit/test_hysteresis.py` checks on random histories delivered in random orders at
different moments that the score is the whole history's and the stage differs from the
memoryless one only where the margin or the minimum stay holds it.

Why the stage is not a function of the history alone (investigated for issue 15): that
would mean running the hysteresis over a trajectory fixed by the events (their times
sorted, plus checkpoints), where the score at each point counts only the events up to it.
The stored facts are sums over *all* events, so the score at a past moment cannot be read
from them: an event that arrives after a later one (ESP batches do this by minutes,
backfills by years) would need the events since its time re-applied, i.e. a history read
in the write (not in the store port, O(events since then), and Firestore's blind path,
which never reads the history, could no longer take any late event). It would also
rewrite stages sales has already been handed. So the stage keeps what was true when it
was computed, and the order of arrival matters only inside the band described above.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from leadscore.domain.rules import GradeBands, Rules, StageGate
from leadscore.domain.state import STAGES, Stage

_RANK = {name: i for i, name in enumerate(STAGES)}


def fit_floor(bands: GradeBands, letter: str | None) -> float | None:
    """The least fit score of a fit letter at least this good (None: any, D has none)."""
    if letter is None or letter == "D":
        return None
    return bands.fit[letter]


def engagement_floor(bands: GradeBands, digit: str | None) -> float | None:
    if digit is None or digit == "4":
        return None
    return bands.engagement[digit]


def holds(gate: StageGate, bands: GradeBands, margin: float, score: float, fit: float,
          engagement: float) -> bool:
    """The gate with every number lowered by `margin` (0: the gate itself, on the values
    shown, which are rounded to 4 decimals as the grade is)."""
    fit_min = fit_floor(bands, gate.fit_at_least)
    eng_min = engagement_floor(bands, gate.engagement_at_least)
    return score >= gate.score - margin and (
        fit_min is None or fit >= fit_min - margin) and (
        eng_min is None or engagement >= eng_min - margin)


def _admitted(rules: Rules, name: Literal["mql", "sql"], margin: float, score: float,
              fit: float, engagement: float) -> bool:
    gates: tuple[Literal["mql", "sql"], ...] = (
        ("mql", "sql") if name == "sql" else ("mql",))  # an SQL meets the MQL's needs too
    return all(holds(rules.stages.gate(g), rules.grades, margin, score, fit, engagement)
               for g in gates)


def fresh_stage(rules: Rules, score: float, fit: float, engagement: float) -> Stage:
    """The stage the score gives with no memory of the stored one."""
    if _admitted(rules, "sql", 0, score, fit, engagement):
        return "sql"
    if _admitted(rules, "mql", 0, score, fit, engagement):
        return "mql"
    return "lead"


def stage_at(rules: Rules, score: float, fit: float, engagement: float, *, customer: bool,
             stored: Stage, since: datetime | None, now: datetime) -> Stage:
    """The stage at `now` (see the module docstring)."""
    if customer:
        return "customer"
    fresh = fresh_stage(rules, score, fit, engagement)
    hyst = rules.stages.hysteresis
    if stored not in ("mql", "sql") or _RANK[fresh] >= _RANK[stored] or (
            hyst.margin == 0 and hyst.min_stay_days == 0):
        return fresh
    if since is not None and since >= now:
        # entered at this very moment (another batch of the same request or run): a stage
        # reached and lost within one instant is no stage held, so the events of one `now`
        # give the same stage whichever batch they came in
        return fresh
    stay = timedelta(days=hyst.min_stay_days)
    if since is not None and now < since + stay:
        return stored
    for name in ("sql", "mql"):
        if _RANK[fresh] < _RANK[name] <= _RANK[stored] and _admitted(
                rules, name, hyst.margin, score, fit, engagement):
            return name
    return fresh


def stay_ends(rules: Rules, stage: Stage, since: datetime | None) -> datetime | None:
    """When the minimum stay in `stage` ends (a moment the stage may change by itself)."""
    days = rules.stages.hysteresis.min_stay_days
    if stage not in ("mql", "sql") or since is None or days == 0:
        return None
    return since + timedelta(days=days)
