"""The README's sizing section is the model's output, and the model respects its limits."""

from __future__ import annotations

from pathlib import Path

from bench import sizing

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_sizing_section_is_what_the_model_prints() -> None:
    text = README.read_text()
    start = text.index("## Sizing for 10 million leads")
    end = text.index("\n## ", start + 1)
    assert text[start:end] == sizing.markdown(), "run: python -m bench.sizing"


def test_the_model_counts_the_whole_workload() -> None:
    # GIVEN the model for 100 million events a month with a peak day of ten times the mean
    s = sizing.model()
    # THEN the functions together carry every event at peak, each event at least one write
    events = sum(x.requests_s * src.events_per_request
                 for x, src in zip(s.loads, sizing.SOURCES, strict=True))
    assert abs(events - s.peak_events_s) < 1e-6
    assert s.peak_events_s == sizing.EVENTS_PER_MONTH / (30 * 86_400) * 10 * 2.5
    assert s.peak_writes_s >= s.peak_events_s
    # AND the decay shards finish inside the event function's time limit
    per_shard = sizing.DECAY_LEADS_PER_SECOND_PER_SHARD * sizing.DECAY_USABLE_S
    assert s.decay_shards_needed * per_shard >= s.decay_due
    assert sizing.DECAY_USABLE_S < sizing.EVENT_FUNCTION_TIMEOUT_S
    assert all(v >= 0 for v in s.monthly_cost.values())
