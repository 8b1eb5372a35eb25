"""The 7-day score movement kept on the lead (domain/movement.py): pure, `now` passed in."""

from __future__ import annotations

from datetime import timedelta

from conftest import NOW

from leadscore.domain.movement import WINDOW_DAYS, ScoreMark, leaves_window, marked, movement


def _day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def test_a_new_lead_moved_from_nothing() -> None:
    marks = marked([], 42.0, NOW)
    assert marks == [ScoreMark(day=_day(0), score=42.0)]
    assert movement(marks, 42.0, NOW) == 42.0


def test_movement_is_the_score_now_less_the_score_a_week_ago() -> None:
    # GIVEN a lead stored at 30 ten days ago, 50 three days ago
    marks = [ScoreMark(day=_day(10), score=30.0), ScoreMark(day=_day(3), score=50.0)]
    # WHEN its score is stored at 65 now
    after = marked(marks, 65.0, NOW)
    # THEN the baseline is the mark before the window and every day inside it is kept
    assert [m.day for m in after] == [_day(10), _day(3), _day(0)]
    assert movement(after, 65.0, NOW) == 35.0


def test_marks_stay_bounded_and_an_unchanged_score_adds_none() -> None:
    marks: list[ScoreMark] = []
    for days_ago in range(40, -1, -1):  # a score that changes every day for 40 days
        marks = marked(marks, float(days_ago), NOW - timedelta(days=days_ago))
    assert len(marks) == WINDOW_DAYS + 1
    assert movement(marks, 0.0, NOW) == -7.0
    assert marked(marks, 0.0, NOW + timedelta(hours=1)) == marks  # same score: nothing new


def test_the_baseline_moves_by_itself_when_a_day_leaves_the_window() -> None:
    marks = [ScoreMark(day=_day(20), score=10.0), ScoreMark(day=_day(2), score=60.0)]
    assert movement(marks, 60.0, NOW) == 50.0
    # WHEN the day of the change leaves the window THEN the movement is gone, and the review
    # schedule knows when that happens
    moment = leaves_window(marks, NOW)
    assert moment is not None and moment.date().isoformat() == (
        NOW + timedelta(days=WINDOW_DAYS - 2)).date().isoformat()
    assert movement(marks, 60.0, moment - timedelta(seconds=1)) == 50.0
    assert movement(marks, 60.0, moment) == 0.0


def test_a_lead_scored_before_marks_existed_is_not_a_new_lead() -> None:
    marks = marked([], 55.0, NOW, stored=(NOW - timedelta(days=30), 50.0))
    assert movement(marks, 55.0, NOW) == 5.0
