"""Scoring cost per event: this engine against the previous release's on the same history.

The previous release is commit `LEGACY` (before scoring v2). Its `shared/leadscore` tree is
taken from git (`git archive`) into a temporary directory at run time, not kept as a copy,
and each engine runs in its own interpreter (both are the package `leadscore`), over the
same JSON history, each with its own built-in rules: a lead's events applied one delivery
at a time, as the transactional path does (effects, apply, materialise). Goal: <= 1.3x.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LEGACY = "fe16c72"
GOAL = 1.3
EVENTS = 400
ROUNDS = 3
ROOT = Path(__file__).resolve().parent.parent

TIMER = r"""
import json, sys, time
from datetime import datetime
from leadscore.domain.events import EVENT_ADAPTER
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events

history = json.load(open(sys.argv[1]))
events = [EVENT_ADAPTER.validate_python(e) for e in history]
nows = [datetime.fromisoformat(e["occurred_at"]) for e in history]
rules = default_rules()
best = float("inf")
for _ in range(5):
    lead = None
    started = time.perf_counter()
    for event, now in zip(events, nows):
        lead, _ = apply_events(lead, "l_bench", "bench@acme.example", [event], rules, now)
    best = min(best, time.perf_counter() - started)
print(json.dumps({"per_event_us": best / len(events) * 1e6, "score": lead.score}))
"""


def history(count: int = EVENTS, seed: int = 15) -> list[dict[str, Any]]:
    """A year of one lead's realistic mix: opens and clicks, visits, forms, an unsubscribe."""
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for i in range(count):
        at = start + timedelta(minutes=i * 1300 + rnd.randint(0, 600))
        base = {"email": "bench@acme.example", "source": "bench",
                "idempotency_key": f"e{i}", "occurred_at": at.isoformat()}
        pick = rnd.random()
        if pick < 0.35:
            out.append(base | {"type": "email_opened"})
        elif pick < 0.5:
            out.append(base | {"type": "email_clicked"})
        elif pick < 0.65:
            out.append(base | {"type": "email_delivered"})
        elif pick < 0.85:
            out.append(base | {"type": "activity", "activity": rnd.choice(
                ["website_visit", "pricing_page_visit"])})
        elif pick < 0.99:
            out.append(base | {"type": "form_submitted", "form_kind": rnd.choice(
                ["newsletter", "content_download", "webinar"]),
                "profile": {"job_title": "Head of Marketing", "company_size": "51-200",
                            "industry": "SaaS", "country": "Spain"}})
        else:
            out.append(base | {"type": "email_unsubscribed"})
    return out


def _legacy_tree(into: Path) -> Path | None:
    try:
        raw = subprocess.run(["git", "-C", str(ROOT), "archive", LEGACY, "shared/leadscore"],
                             check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(into, filter="data")
    return into / "shared"


def _time(python_path: Path, history_file: Path) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": str(python_path)}
    done = subprocess.run([sys.executable, "-c", TIMER, str(history_file)], env=env,
                          check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run() -> dict[str, float] | None:
    with tempfile.TemporaryDirectory() as tmp:
        history_file = Path(tmp) / "history.json"
        history_file.write_text(json.dumps(history()))
        legacy = _legacy_tree(Path(tmp) / "legacy")
        if legacy is None:
            print(f"scoring: previous engine ({LEGACY}) not available from git; skipped")
            return None
        # alternate the two engines and keep each one's best round: the machine is shared
        runs = [(_time(legacy, history_file), _time(ROOT / "shared", history_file))
                for _ in range(ROUNDS)]
        old = min((r[0] for r in runs), key=lambda r: r["per_event_us"])
        new = min((r[1] for r in runs), key=lambda r: r["per_event_us"])
    ratio = new["per_event_us"] / old["per_event_us"]
    print(f"scoring: {EVENTS} events on one lead, one delivery at a time: "
          f"{new['per_event_us']:.0f} us/event now vs {old['per_event_us']:.0f} us/event "
          f"in {LEGACY} = {ratio:.2f}x (goal <= {GOAL}x)")
    return {"ratio": ratio, **{f"new_{k}": v for k, v in new.items()},
            **{f"old_{k}": v for k, v in old.items()}}


if __name__ == "__main__":
    run()
