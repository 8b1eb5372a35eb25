"""How far a lead's score moved in the last 7 days, kept on the lead so the dashboard's top
movers are one indexed query each way (ordered by `movement`, limited), never a read of
every lead or every history.

A lead keeps a few *marks*: the score it was stored with on each day its score changed,
for the days inside the window and the newest day before it (the baseline). That is at
most WINDOW_DAYS + 1 small entries, so the document stays bounded. `movement` is the score
now less the baseline; a lead with no mark before the window is new and moved from 0.

When the oldest mark inside the window leaves it, the baseline changes by itself, with no
event. `leaves_window` is that moment; the review schedule includes it, so the decay job
keeps `movement` exact like every other view field (one refresh per day a lead's score
changed, at most, a week later).

Marks are a list, not a map: Firestore's merge writes keep map keys a write leaves out, and
the pruned days must go."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from pydantic import BaseModel

WINDOW_DAYS = 7


class ScoreMark(BaseModel):
    day: str  # YYYY-MM-DD (UTC); a string so every store keeps it as it is
    score: float


@lru_cache(maxsize=64)  # one `now` per request or job run: asked three times per lead
def _cutoff(now: datetime) -> str:
    """The newest day before the window: its last stored score is the baseline."""
    return (now.astimezone(UTC).date() - timedelta(days=WINDOW_DAYS)).isoformat()


@lru_cache(maxsize=64)
def _utc_day(now: datetime) -> str:
    """`now`'s UTC day, YYYY-MM-DD."""
    return now.astimezone(UTC).date().isoformat()


def marked(marks: Sequence[ScoreMark], score: float, now: datetime,
           stored: tuple[datetime | None, float] = (None, 0.0)) -> list[ScoreMark]:
    """The marks after storing `score` at `now`, pruned to the window and its baseline.

    `stored` is (scored_at, score) of the lead as it was stored: a lead scored before marks
    existed gets its stored score as its first mark, so it does not look like a new lead."""
    today = _utc_day(now)
    by_day = {m.day: m.score for m in marks}
    scored_at, old_score = stored
    if not by_day and scored_at is not None:
        by_day[scored_at.astimezone(UTC).date().isoformat()] = old_score
    before = [d for d in by_day if d < today]
    if today in by_day or not before or by_day[max(before)] != score:
        by_day[today] = score
    cutoff = _cutoff(now)
    old = [d for d in by_day if d <= cutoff]
    keep = {d for d in by_day if d > cutoff} | ({max(old)} if old else set())
    return [ScoreMark(day=d, score=by_day[d]) for d in sorted(keep)]


def movement(marks: Sequence[ScoreMark], score: float, now: datetime) -> float:
    """The score now less the score at the end of the day before the window (0 if none)."""
    cutoff = _cutoff(now)
    old = [m for m in marks if m.day <= cutoff]
    base = max(old, key=lambda m: m.day).score if old else 0.0
    return round(score - base, 4)


def leaves_window(marks: Sequence[ScoreMark], now: datetime) -> datetime | None:
    """When the oldest mark inside the window becomes the baseline (movement changes)."""
    cutoff = _cutoff(now)
    inside = [m.day for m in marks if m.day > cutoff]
    if not inside:
        return None
    day = date.fromisoformat(min(inside)) + timedelta(days=WINDOW_DAYS)
    return datetime.combine(day, time(), tzinfo=UTC)
