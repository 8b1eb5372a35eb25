"""Rescoring every lead from its stored events, to preview or apply a rules change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from leadscore.domain.rebuild import rebuilt, stale_rules
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import materialise
from leadscore.service import writes
from leadscore.store.port import LeadStore

PAGE = 200


BAND_ORDER = ["<0", "0-20", "20-40", "40-60", "60-80", "80-100", "100+"]  # what `band` gives


def in_band_order(spread: Mapping[str, int]) -> dict[str, int]:
    """Leads per score band, bands low to high (their labels do not sort as text)."""
    return {b: spread[b] for b in BAND_ORDER if spread.get(b)}


def band(score: float, width: int = 20) -> str:
    if score < 0:
        return "<0"
    low = int(score // width) * width
    return f"{low}-{low + width}" if low < 100 else "100+"


class Mover(BaseModel):
    lead_id: str
    email: str
    score_before: float
    score_after: float
    stage_before: str
    stage_after: str


class RescoreReport(BaseModel):
    rules_version: str
    dry_run: bool
    examined: int = 0
    changed: int = 0  # leads whose score or stage changed
    skipped: int = 0  # already rescored under this version (a resumed run)
    stage_moves: dict[str, int] = Field(default_factory=dict)
    biggest_movers: list[Mover] = Field(default_factory=list)
    distribution: dict[str, int] = Field(default_factory=dict)


def rescore(store: LeadStore, rules: Rules, now: datetime, *, dry_run: bool,
            baseline: Rules | None = None, on_progress: Callable[[int], None] | None = None,
            top: int = 10) -> RescoreReport:
    """Recompute every lead under `rules`; with dry_run nothing is written.

    Changes are measured against each lead as it stands at `now` under `baseline` (the
    configured rules), so fading over time is not mistaken for the rules change; a lead
    stored under other rules than `baseline` moves from its stored stage. Applying
    goes a page of leads at a time, each lead atomically, and skips leads already rescored
    under this rules version, so an interrupted run resumes where it stopped."""
    base = baseline or rules
    report = RescoreReport(rules_version=rules.version, dry_run=dry_run)
    moves: Counter[str] = Counter()
    spread: Counter[str] = Counter()
    movers: list[Mover] = []
    after: str | None = None
    while page := store.iter_leads(after_id=after, limit=PAGE):
        after = page[-1].lead_id
        for lead in page:
            report.examined += 1
            # hashes, not only versions: rules edited without a new `version` still apply
            if not dry_run and lead.rescored_for == rules.version and (
                    lead.rules_hash == rules.content_hash):
                report.skipped += 1
                spread[band(lead.score)] += 1
                continue
            if dry_run:
                done = rebuilt(lead, store.history(lead.lead_id), rules, now)
                change = done[1] if done else None
            else:
                change = writes.rescore_lead(store, lead.lead_id, rules, now)
            now_before = materialise(lead, base, now)
            # a lead stored under other rules than the baseline (the rules just deployed,
            # which a real run applies) moves from its stored stage: what sales was last
            # handed, and what the handover of this rescore starts from
            was = lead.stage if stale_rules(lead, base) else now_before.stage
            score = change.score_after if change else now_before.score
            stage = change.stage_after if change else now_before.stage
            spread[band(score)] += 1
            if round(score - now_before.score, 2) != 0 or stage != was:
                report.changed += 1
                if stage != was:
                    moves[f"{was}->{stage}"] += 1
                movers.append(Mover(lead_id=lead.lead_id, email=lead.email,
                                    score_before=round(now_before.score, 2),
                                    score_after=round(score, 2),
                                    stage_before=was, stage_after=stage))
            if on_progress:
                on_progress(1)
    report.stage_moves = dict(moves)
    report.distribution = in_band_order(spread)
    report.biggest_movers = sorted(
        movers, key=lambda m: abs(m.score_after - m.score_before), reverse=True)[:top]
    return report
