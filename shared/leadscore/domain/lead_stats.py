"""What one lead counts for on the dashboard, so the counts can be kept by the write path.

Every view a write stores (`view.materialise`) carries `counted`: the statistics keys its
stored view counts under, each with an amount, as `key=amount` strings:

- `total=1`, `stage:<stage>=1`, `grade:<grade>=1`, `email:<status>=1`;
- `non_opener=1` while the lead is flagged;
- `score:<low>..<high>=1`: the histogram bucket of the stored score (edges from the rules'
  thresholds, `bucket_edges`; an open end is empty: `score:..-20`, `score:250..`);
- `opens:human=<n>` and `opens:machine=<n>`: the lead's open counters, summed.

The stores keep the sum of `counted` over every stored lead (issue 17: "small statistics
documents kept by the write path"): a write adds the new `counted` and takes back the one
it replaces, in the same transaction, so no write needs to know how the old view was
computed (a rules change included). A lead without `counted` (stored by an older release)
is counted by `leadscore dashboard recount`.

Why the store applies the difference rather than the service handing it a delta: what a
lead counts under is decided here, once, with the view (the service layer and every use
case get it for free from `materialise`); the adapter only keeps the sum of one field of
the documents it writes, as it keeps an index, from the old document it reads in the same
transaction anyway. So no path that writes or deletes a lead (the blind path's view
commit, erasure, a re-key merge, a seed, a path added later) can forget to count: on
SQLite the triggers see every statement, on Firestore every lead write of the adapter
stages it.

Strings, not a map: a Firestore merge-write keeps map keys it is not given, but replaces a
list whole, so a key the lead left never lingers in its document.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadscore.domain.state import LeadState

UNCOUNTED = "uncounted"  # SQLite and memory: stored leads that carry no `counted` yet
OPEN_COUNTERS = {"human": "email_opened", "machine": "email_opened_machine"}


def bucket_edges(mql: float, sql: float) -> list[float]:
    """About a dozen score buckets, with both thresholds on an edge, negatives included."""
    return list(_edges(mql, sql))


@functools.lru_cache(maxsize=8)
def _edges(mql: float, sql: float) -> tuple[float, ...]:
    step = max(1.0, round(sql / 8, 1)) if sql > 0 else 10.0
    edges = {round(step * i, 6) for i in range(-2, 13)}
    return tuple(sorted(edges | {mql, sql}))


@functools.lru_cache(maxsize=8)
def _bucket_keys(mql: float, sql: float) -> tuple[str, ...]:
    """The key of each bucket, lowest first: one more than the edges."""
    return tuple(bucket_key(low, high) for low, high in bucket_bounds(list(_edges(mql, sql))))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def bucket_key(low: float | None, high: float | None) -> str:
    """The key of the bucket `low <= score < high` (None: open at that end)."""
    return (f"score:{'' if low is None else _number(low)}.."
            f"{'' if high is None else _number(high)}")


def bucket_bounds(edges: list[float]) -> list[tuple[float | None, float | None]]:
    return [(None, edges[0]), *itertools.pairwise(edges), (edges[-1], None)]


def bucket_of(score: float, mql: float, sql: float) -> str:
    """The key of the bucket `score` falls in (`low <= score < high`)."""
    return _bucket_keys(mql, sql)[bisect.bisect_right(_edges(mql, sql), score)]


def counted_under(lead: LeadState, mql: float, sql: float) -> list[str]:
    """`counted` for a lead stored with this view, under these thresholds."""
    counted = ["total=1", f"stage:{lead.stage}=1", f"grade:{lead.grade}=1",
               f"email:{lead.email_status}=1", f"{bucket_of(lead.score, mql, sql)}=1"]
    if lead.non_opener:
        counted.append("non_opener=1")
    for name, counter in OPEN_COUNTERS.items():
        if (opens := lead.counters.get(counter, 0)) > 0:
            counted.append(f"opens:{name}={opens}")
    return counted


def decode(counted: Iterable[str] | None) -> dict[str, int]:
    """`counted` as a map; a lead without it counts for nothing here."""
    found: dict[str, int] = {}
    for item in counted or ():
        key, _, amount = item.rpartition("=")
        found[key] = found.get(key, 0) + int(amount)
    return found


def change(before: Iterable[str] | None, after: Iterable[str] | None) -> dict[str, int]:
    """What replacing `before` with `after` adds to each key (zeros left out)."""
    delta = decode(after)
    for key, amount in decode(before).items():
        delta[key] = delta.get(key, 0) - amount
    return {key: amount for key, amount in delta.items() if amount}


def add(totals: dict[str, int], delta: Mapping[str, int]) -> None:
    """Add `delta` into `totals` in place, dropping keys that reach zero."""
    for key, amount in delta.items():
        value = totals.get(key, 0) + amount
        if value:
            totals[key] = value
        else:
            totals.pop(key, None)
