"""CPU the pure domain and the event parsing spend per event (issue 20), this tree against
another revision, side by side in one run.

`python -m bench.domain_cpu [REV]` (REV default `HEAD~1`; e.g. the commit before a change):
each tree's `shared/leadscore` is taken with `git archive` into a temporary directory and
timed in its own interpreter, alternately, keeping each measure's best round (the machine
is shared). CPU time (`process_time`), not wall time. Measured, per event:
- `/ingest` parse: `canonical.parse` of one activity at a new address at a known domain;
- `/ingest` score: `apply_events` of that event on a new lead (effects, history, view);
- SendGrid parse: `sendgrid.parse_batch` of 1,000 opens and clicks over 100 leads;
- SendGrid score: `apply_events` of that batch, one call per lead (10 events each).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3

TIMER = r"""
import json, time
from datetime import UTC, datetime, timedelta
from leadscore.domain.rules import default_rules
from leadscore.domain.scoring import apply_events
from leadscore.providers import canonical, sendgrid
from leadscore.service.ingest import group_by_lead

def best(run, per, rounds=7):
    out = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        out = min(out, time.process_time() - started)
    return out / per * 1e6

now, rules, n = datetime.now(UTC), default_rules(), 1000
bodies = [json.dumps({"type": "activity", "email": f"u{i}@bench.example", "source": "bench",
                      "idempotency_key": f"k{i}", "activity": "website_visit",
                      "occurred_at": (now - timedelta(minutes=i)).isoformat()}).encode()
          for i in range(n)]
fresh = [0]

def parse_new_addresses():
    fresh[0] += 1
    for body in bodies:
        canonical.parse(body.replace(b'"u', b'"r%d-' % fresh[0], 1))

events = [canonical.parse(body)[0] for body in bodies]

def score_new_leads():
    for event in events:
        apply_events(None, "l_bench", event.email, [event], rules, now)

stamp = int(now.timestamp())
batch = json.dumps([{"email": f"reader{i % 100}@bench.example", "timestamp": stamp - 3600 + i,
                     "event": "open" if i % 3 else "click", "url": "https://example.org/p",
                     "sg_event_id": f"ev-{i}", "sg_message_id": f"m-{i % 100}"}
                    for i in range(1000)]).encode()
groups = group_by_lead(sendgrid.parse(batch))

def score_batch():
    for lead_id, group in groups.items():
        apply_events(None, lead_id, group[0].email, group, rules, now)

print(json.dumps({"ingest parse": best(parse_new_addresses, n),
                  "ingest score": best(score_new_leads, n),
                  "sendgrid parse": best(lambda: sendgrid.parse(batch), 1000),
                  "sendgrid score": best(score_batch, 1000)}))
"""


def _tree(rev: str, into: Path) -> Path:
    raw = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "shared/leadscore"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(into, filter="data")
    return into / "shared"


def _time(python_path: Path) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": str(python_path)}
    done = subprocess.run([sys.executable, "-c", TIMER], env=env, check=True,
                          capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run(rev: str = "HEAD~1") -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        other = _tree(rev, Path(tmp))
        runs = [(_time(other), _time(ROOT / "shared")) for _ in range(ROUNDS)]
    out = {name: (min(r[0][name] for r in runs), min(r[1][name] for r in runs))
           for name in runs[0][0]}
    print(f"domain CPU per event, us (best of {ROUNDS} alternated rounds): {rev} -> this tree")
    for name, (before, after) in out.items():
        print(f"  {name:<16}{before:8.1f}{after:8.1f}   x{after / before:.2f}")
    return out


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "HEAD~1")
