"""Suggested weights (`leadscore suggest-rules`): a regularised logistic model of conversion
on the features the rules already use, proposed back as points in the rules file's terms.

Features of each lead at the cut-off (rebuilt from its history before the cut-off, as the
back-test does): 1 for each fit rule it matches, and the number of events of each
engagement rule's kind in the `feature_days` before the cut-off. Label: a win in the window
after the cut-off (lead_events.conversion_times). The split is by time: the model is fitted
on the leads first seen earliest and judged on the latest `holdout` share, against the
current rules' score on the same holdout. Points are the model's log-odds coefficients times
`POINTS_PER_LOGIT`: 20 points for each unit of log-odds (odds times e, about 2.7).

scikit-learn is an optional extra (`pip install 'leadscore[learn]'`), imported here only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import yaml
from pydantic import BaseModel

from leadscore.domain import metrics
from leadscore.domain.effects import event_key
from leadscore.domain.rules import Rules
from leadscore.domain.scoring import apply_events, fit_items
from leadscore.errors import ValidationFailed
from leadscore.service.lead_events import conversion_times, lead_pages
from leadscore.store.port import LeadStore

MIN_CONVERSIONS = 100
POINTS_PER_LOGIT = 20.0


class Suggestion(BaseModel):
    conversions: int
    leads: int
    training_leads: int
    holdout_leads: int
    holdout_auc_model: float | None
    holdout_auc_current: float | None
    current_is_as_good: bool
    coefficients: dict[str, float]  # log-odds per unit of each feature
    points: dict[str, float]  # proposed points per rule key ("fit.<id>" or an event key)


def features(store: LeadStore, rules: Rules, at: datetime, window_days: int,
             feature_days: int, purchases_are_wins: bool
             ) -> list[tuple[datetime, dict[str, float], float, int]]:
    """(first seen, features, current score, label) for every lead counted at `at`."""
    end, since = at + timedelta(days=window_days), at - timedelta(days=feature_days)
    rows = []
    for page in lead_pages(store):
        for lead in page:
            before = [e for e in lead.events if e.occurred_at < at]
            wins = conversion_times(lead.events, purchases_are_wins)
            if not before or any(w <= at for w in wins):
                continue
            state, _ = apply_events(None, lead.lead_id, lead.email, before, rules, at,
                                    explain=False)
            row: dict[str, float] = {i.rule: 1.0 for i in fit_items(state, rules)}
            for event in before:
                key = event_key(event)
                if key in rules.engagement and event.occurred_at >= since:
                    row[key] = row.get(key, 0.0) + 1
            rows.append((before[0].occurred_at, row, state.score,
                         int(any(at < w <= end for w in wins))))
    return rows


def suggest(store: LeadStore, rules: Rules, now: datetime, *, at: datetime | None = None,
            window_days: int = 90, feature_days: int = 90, purchases_are_wins: bool = True,
            holdout: float = 0.3, min_conversions: int = MIN_CONVERSIONS,
            regularisation: float = 1.0) -> Suggestion:
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    cut = at or now - timedelta(days=window_days)
    if cut + timedelta(days=window_days) > now:
        raise ValidationFailed("the window after the cut-off has not ended yet")
    rows = sorted(features(store, rules, cut, window_days, feature_days, purchases_are_wins),
                  key=lambda r: r[0])
    conversions = sum(r[3] for r in rows)
    if conversions < min_conversions:
        raise ValidationFailed(
            f"only {conversions} conversions in the window: suggested weights need at least "
            f"{min_conversions}, or they would fit noise; record more outcomes or widen --window")
    names = sorted({k for r in rows for k in r[1]})
    matrix = [[r[1].get(n, 0.0) for n in names] for r in rows]
    labels = [r[3] for r in rows]
    split = int(len(rows) * (1 - holdout))
    model = LogisticRegression(C=regularisation, max_iter=1000)
    model.fit(matrix[:split], labels[:split])
    predicted = [float(p) for p in model.decision_function(matrix[split:])]
    auc_model = metrics.roc_auc(predicted, labels[split:])
    auc_current = metrics.roc_auc([r[2] for r in rows[split:]], labels[split:])
    coefficients = {n: float(c) for n, c in zip(names, model.coef_[0], strict=True)}
    return Suggestion(
        conversions=conversions, leads=len(rows), training_leads=split,
        holdout_leads=len(rows) - split, holdout_auc_model=auc_model,
        holdout_auc_current=auc_current,
        current_is_as_good=auc_model is None or (auc_current is not None
        and auc_current >= auc_model - 0.01),
        coefficients=coefficients,
        points={n: round(c * POINTS_PER_LOGIT) for n, c in coefficients.items()})


def candidate_yaml(rules_text: str, suggestion: Suggestion, version: str) -> str:
    """The rules file with the proposed points in place of the old ones (rules the model had
    no data for keep theirs)."""
    data: dict[str, Any] = yaml.safe_load(rules_text)
    data["version"] = version
    for rule in data.get("fit", []):
        key = f"fit.{rule['id']}"
        if key in suggestion.points:
            rule["points"] = suggestion.points[key]
    for key, rule in data.get("engagement", {}).items():
        if key in suggestion.points:
            rule["points"] = suggestion.points[key]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
