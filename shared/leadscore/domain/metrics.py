"""How well a score predicts conversion: pure functions over scores and 0/1 labels.

No numpy: a back-test keeps one float and one byte per lead, sorts once, and every metric
is a pass over the groups of equal scores, so 100,000 leads cost a few megabytes.

- ROC AUC is the Mann-Whitney statistic: the chance that a random converter outscores a
  random non-converter, ties counting one half.
- The Brier score needs a probability, not points: the score is mapped to a probability by
  isotonic regression (pool-adjacent-violators: the best non-decreasing step function of
  the score, fitted to the same leads). It is therefore in-sample and a little optimistic;
  it says how sharp the ranking is once calibrated, not how well a fixed table would do.
- Bootstrap intervals resample leads with replacement (fixed seed), keeping the fitted
  mapping fixed, and report the 2.5th and 97.5th percentiles. A resample is counted by
  cells of interchangeable leads (same score, label and probability), so each costs one
  draw per lead and a pass over the score groups, not a pass over the leads per statistic.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence

from pydantic import BaseModel


def _order(scores: Sequence[float]) -> array[int]:
    """Lead indexes by ascending score, 8 bytes a lead."""
    return array("q", sorted(range(len(scores)), key=scores.__getitem__))


def _groups(scores: Sequence[float], order: array[int]) -> Iterator[tuple[float, int, int]]:
    """(score, start, end) of each run of equal scores in `order`, lowest first."""
    start = 0
    n = len(order)
    while start < n:
        score = scores[order[start]]
        end = start + 1
        while end < n and scores[order[end]] == score:
            end += 1
        yield score, start, end
        start = end


def _auc_of(scores: Sequence[float], order: array[int], labels: Sequence[int],
            weights: Sequence[int] | None = None) -> float | None:
    negatives_below = 0.0
    numerator = 0.0
    positives = negatives = 0.0
    for _, start, end in _groups(scores, order):
        pos = neg = 0.0
        for k in range(start, end):
            i = order[k]
            w = 1 if weights is None else weights[i]
            if labels[i]:
                pos += w
            else:
                neg += w
        numerator += pos * (negatives_below + 0.5 * neg)
        negatives_below += neg
        positives += pos
        negatives += neg
    if positives == 0 or negatives == 0:
        return None
    return numerator / (positives * negatives)


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """ROC AUC with ties counted one half; None when one class is missing."""
    return _auc_of(scores, _order(scores), labels)


def isotonic(scores: Sequence[float], labels: Sequence[int]) -> array[float]:
    """Each lead's calibrated probability: pool-adjacent-violators over the score groups."""
    order = _order(scores)
    blocks: list[list[float]] = []  # [sum of labels, leads, first position in `order`]
    for _, start, end in _groups(scores, order):
        blocks.append([float(sum(labels[order[k]] for k in range(start, end))),
                       float(end - start), float(start)])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
    probs = array("d", bytes(8 * len(scores)))
    for total, count, first in blocks:
        for k in range(int(first), int(first + count)):
            probs[order[k]] = total / count
    return probs


def brier(probs: Sequence[float], labels: Sequence[int]) -> float:
    return sum((p - y) ** 2 for p, y in zip(probs, labels, strict=True)) / max(1, len(probs))


class Interval(BaseModel):
    low: float | None
    high: float | None


def bootstrap(scores: Sequence[float], labels: Sequence[int], probs: Sequence[float],
              resamples: int = 200, seed: int = 16) -> tuple[Interval, Interval]:
    """95% percentile intervals of (AUC, Brier) over resamples of the leads."""
    n = len(scores)
    if n == 0 or resamples <= 0:
        return Interval(low=None, high=None), Interval(low=None, high=None)
    rng = random.Random(seed)
    cell_of, groups, squared = _cells(scores, labels, probs)
    aucs: list[float] = []
    briers: list[float] = []
    for _ in range(resamples):
        # the same draws as resampling lead indexes (`choices` maps one random number to one
        # position of the population, whatever it holds), counted by cell at C speed
        counts = Counter(rng.choices(cell_of, k=n))
        negatives_below = numerator = positives = 0.0
        for cells in groups:  # lowest score first
            pos = neg = 0.0
            for cell, label in cells:
                if label:
                    pos += counts[cell]
                else:
                    neg += counts[cell]
            numerator += pos * (negatives_below + 0.5 * neg)
            negatives_below += neg
            positives += pos
        if positives and negatives_below:
            aucs.append(numerator / (positives * negatives_below))
        briers.append(sum(counts[c] * sq for c, sq in enumerate(squared)) / n)
    return _percentiles(aucs), _percentiles(briers)


def _cells(scores: Sequence[float], labels: Sequence[int], probs: Sequence[float],
           ) -> tuple[list[int], list[list[tuple[int, int]]], list[float]]:
    """Leads with the same score, label and probability are interchangeable for both
    statistics (the AUC counts positives and negatives per score, the Brier score adds
    squared errors), so a resample only needs how often each such cell was drawn: each
    lead's cell, the cells of each score group (lowest score first) with their label, and
    each cell's squared error. 100,000 leads have a few thousand cells at most."""
    cell_of = [0] * len(scores)
    groups: list[list[tuple[int, int]]] = []
    squared: list[float] = []
    order = _order(scores)
    for _, start, end in _groups(scores, order):
        ids: dict[tuple[int, float], int] = {}
        for k in range(start, end):
            i = order[k]
            key = (1 if labels[i] else 0, (probs[i] - labels[i]) ** 2)
            if key not in ids:
                ids[key] = len(squared)
                squared.append(key[1])
            cell_of[i] = ids[key]
        groups.append([(cell, label) for (label, _), cell in ids.items()])
    return cell_of, groups, squared


def _percentiles(values: list[float]) -> Interval:
    if not values:
        return Interval(low=None, high=None)
    values.sort()
    last = len(values) - 1
    return Interval(low=values[round(0.025 * last)], high=values[round(0.975 * last)])


class Band(BaseModel):
    label: str
    low: float | None  # inclusive; None: no lower bound
    high: float | None  # exclusive; None: no upper bound
    leads: int
    conversions: int
    rate: float | None


def bands(scores: Sequence[float], labels: Sequence[int], edges: Sequence[float],
          names: Sequence[str] | None = None) -> list[Band]:
    """Conversion rate between consecutive `edges` (sorted): below the first, between each
    pair, and at or above the last, so every lead (negative scores too) is in one band."""
    cuts = sorted(set(edges))
    bounds = [None, *cuts], [*cuts, None]
    rows = []
    for k, (low, high) in enumerate(zip(*bounds, strict=True)):
        members = [y for s, y in zip(scores, labels, strict=True)
                   if (low is None or s >= low) and (high is None or s < high)]
        label = names[k] if names else ("all" if low is None and high is None else
                                        f"< {high:g}" if low is None else
                                        f">= {low:g}" if high is None else
                                        f"{low:g} to {high:g}")
        rows.append(Band(label=label, low=low, high=high, leads=len(members),
                         conversions=sum(members),
                         rate=sum(members) / len(members) if members else None))
    return rows


def quantile_edges(scores: Sequence[float], parts: int = 5) -> list[float]:
    """Score cut points that split the leads into `parts` bands of about equal size (fewer
    when many leads share a score)."""
    ordered = sorted(scores)
    n = len(ordered)
    return sorted({ordered[(n * j) // parts] for j in range(1, parts)} - {ordered[0]}) if n else []


class ThresholdRow(BaseModel):
    threshold: float
    volume: int  # leads at or above the threshold
    conversions: int
    precision: float | None
    recall: float | None
    lift: float | None  # precision / the base rate


def targets(scores: Sequence[float], labels: Sequence[int], precision: float | None,
            volume: int | None) -> tuple[ThresholdRow | None, ThresholdRow | None]:
    """The thresholds a marketer asks for, among the leads' own scores: the lowest one (the
    most leads) whose precision still reaches `precision`, and the lowest one that hands
    over at most `volume` leads (leads with equal scores cannot be split)."""
    total_pos = sum(labels)
    base = total_pos / len(labels) if labels else 0.0
    order = _order(scores)
    n = len(order)
    positives_below = 0
    by_precision = by_volume = None
    for score, start, end in _groups(scores, order):  # lowest threshold first
        handed, conversions = n - start, total_pos - positives_below
        if by_precision is None and precision is not None and conversions / handed >= precision:
            by_precision = (score, handed, conversions)
        if by_volume is None and volume is not None and handed <= volume:
            by_volume = (score, handed, conversions)
        positives_below += sum(labels[order[k]] for k in range(start, end))
    first = _row(*by_precision, total_pos, base) if by_precision else None
    second = _row(*by_volume, total_pos, base) if by_volume else None
    return first, second


def _row(threshold: float, volume: int, conversions: int, total_pos: int,
         base: float) -> ThresholdRow:
    precision = conversions / volume if volume else None
    return ThresholdRow(threshold=threshold, volume=volume, conversions=conversions,
                        precision=precision,
                        recall=conversions / total_pos if total_pos else None,
                        lift=precision / base if precision is not None and base else None)


def at_threshold(scores: Sequence[float], labels: Sequence[int],
                 threshold: float) -> ThresholdRow:
    total_pos = sum(labels)
    base = total_pos / len(labels) if labels else 0.0
    chosen = [y for s, y in zip(scores, labels, strict=True) if s >= threshold]
    return _row(threshold, len(chosen), sum(chosen), total_pos, base)
