"""Two clients that send a fixed list of HTTP requests with 8 concurrent writers: Python
threads with keep-alive `requests` sessions (`python_threads`), and wrk, the C load generator
(Debian's `wrk`; `wrk_driven`).

Why both: on these 2-core machines the Python client spends about as much CPU per call as a
hello-world server, so it caps every server near the same rate and measures the client as
much as the server (a hello-world served 1,231 req/s to it and 1,995 to wrk). wrk's CPU per
request is a few microseconds, so its rates are the servers'. Issue 20's goals are judged
with wrk (`JUDGE`) because it measures the server, which cuts both ways: a ratio to raw
SQLite writes reads kinder (with the Python client even a server doing nothing stayed near
0.35 of the raw rate, below the goal), a ratio to a hello-world harsher (the hello-world
gains most). The Python client's figures are printed beside them: the issue's first
measurements were taken with it.

How wrk drives a fixed list: one wrk thread per connection (8 writers = 8 threads, one keep-alive
connection each), thread k sends requests k, k+n, k+2n... in order and stops itself after the
response to its last one, so every planned request is sent exactly once and nothing else is
sent (a retried duplicate would be cheaper than a first delivery and flatter the rate). The
rate is the number of requests over wrk's own elapsed time, first request to last response of
the slowest thread, as `harness.timed_parallel` measures; the latencies are wrk's per-request
histogram. A response outside 2xx fails the run, naming the first status seen.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.harness import ThreadSessions, timed_parallel

WRK = "wrk"


@dataclass(frozen=True)
class Planned:
    """One request as wrk will send it."""

    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


def ingest_post(body: object, token: str) -> Planned:
    """A `POST /ingest` of `body` as JSON with the API token."""
    return Planned("/ingest", "POST", {"Content-Type": "application/json",
                                       "Authorization": f"Bearer {token}"},
                   json.dumps(body).encode())


@dataclass(frozen=True)
class Driven:
    """What a run of wrk measured."""

    requests: int
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float


class Client(Protocol):
    __name__: str

    def __call__(self, base: str, requests: Sequence[Planned], connections: int = 8) -> Driven:
        ...


class WrkMissing(RuntimeError):
    """wrk is not installed (`make bench` installs Debian's package)."""


# Reads the plan written by `_write_plan` (records: method, path, header count, headers, body
# length, body), keeps every n-th record from the thread's own offset, and checks statuses.
# Each wrk thread runs its own Lua state: `setup` runs in the main one, the rest per thread.
_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clock, wrk_timespec *now);
]]
local clock = ffi.new("wrk_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC: the same clock in every thread
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  plan, stride = args[1], tonumber(args[2])
  local f = assert(io.open(plan, "rb"))
  local index = 0
  mine = {}
  while true do
    local method = f:read("*l")
    if method == nil or method == "" then break end
    local path = f:read("*l")
    local headers = {}
    for _ = 1, tonumber(f:read("*l")) do
      local line = f:read("*l")
      local colon = line:find(":", 1, true)
      headers[line:sub(1, colon - 1)] = line:sub(colon + 2)
    end
    local body = f:read(tonumber(f:read("*l")))
    f:read("*l")
    if index % stride == id then
      table.insert(mine, wrk.format(method, path, headers, body ~= "" and body or nil))
    end
    index = index + 1
  end
  f:close()
  answered, bad = 0, 0
  -- wrk asks the first thread's script for one request before it starts, to see how many
  -- requests a call returns: that call must not use up a planned request
  sent = id == 0 and -1 or 0
end

function request()
  sent = sent + 1
  if sent == 1 then first_sent_us = now_us() end
  return mine[math.max(sent, 1)]
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    if bad == 0 then first_bad = status end
    bad = bad + 1
  end
  if answered == #mine then
    last_answer_us = now_us()
    wrk.thread:stop()
    -- wrk's main thread sleeps for the whole -d; this file tells the caller to end it
    assert(io.open(plan .. ".done." .. id, "w")):close()
  end
end

function done(summary, latency, requests)
  local bad_total, first, start_us, end_us = 0, 0, math.huge, 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    if first == 0 and thread:get("bad") > 0 then first = thread:get("first_bad") end
    start_us = math.min(start_us, thread:get("first_sent_us") or math.huge)
    end_us = math.max(end_us, thread:get("last_answer_us") or 0)
  end
  io.write(string.format(
    '\nRESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"bad": %d, "first_bad": %d, "socket_errors": %d}\n',
    summary.requests, end_us - start_us, latency:percentile(50), latency:percentile(99),
    bad_total, first, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def available() -> bool:
    return shutil.which(WRK) is not None


def _write_plan(path: Path, requests: Sequence[Planned]) -> None:
    with path.open("wb") as out:
        for r in requests:
            if any("\n" in f"{k}{v}" for k, v in r.headers.items()) or "\n" in r.path:
                raise ValueError("a header or path with a line break cannot be planned")
            out.write(f"{r.method}\n{r.path}\n{len(r.headers)}\n".encode())
            out.write("".join(f"{k}: {v}\n" for k, v in r.headers.items()).encode())
            out.write(f"{len(r.body)}\n".encode() + r.body + b"\n")


def python_threads(base: str, requests: Sequence[Planned], connections: int = 8) -> Driven:
    """Send every planned request once from `connections` threads, one keep-alive `requests`
    session each (the client every benchmark used before wrk)."""
    sessions, latencies = ThreadSessions(), list[float]()

    def send(r: Planned) -> None:
        sessions.get().request(r.method, f"{base}{r.path}", headers=dict(r.headers),
                               data=r.body or None, timeout=60).raise_for_status()

    rate = timed_parallel(requests, send, connections, latencies)
    latencies.sort()
    return Driven(requests=len(requests), rate=rate, p50_ms=_percentile(latencies, .5),
                  p99_ms=_percentile(latencies, .99))


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def wrk_driven(base: str, requests: Sequence[Planned], connections: int = 8,
               timeout: float = 600) -> Driven:
    """Send every planned request once over `connections` keep-alive connections."""
    if not available():
        raise WrkMissing("wrk is not installed: `apt-get install wrk` (`make bench` does it)")
    if not requests:
        raise ValueError("nothing to drive")
    threads = min(connections, len(requests))
    with tempfile.TemporaryDirectory() as folder:
        plan, script = Path(folder) / "plan", Path(folder) / "drive.lua"
        _write_plan(plan, requests)
        script.write_text(_SCRIPT)
        process = subprocess.Popen(
            [WRK, f"-t{threads}", f"-c{threads}", f"-d{int(timeout)}s", "--timeout", "60s",
             "-s", str(script), base, "--", str(plan), str(threads)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while (len(list(Path(folder).glob("plan.done.*"))) < threads
               and process.poll() is None and time.monotonic() < deadline):
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)  # wrk then joins its threads and reports
        out, err = process.communicate(timeout=60)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"wrk printed no result: {out[-500:]} {err[-500:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if result["bad"] or result["socket_errors"]:
        raise RuntimeError(f"{result['bad']} responses outside 2xx (first: "
                           f"{result['first_bad']}), {result['socket_errors']} socket errors")
    if result["requests"] != len(requests):
        raise RuntimeError(f"wrk sent {result['requests']} requests, {len(requests)} planned "
                           "(the run hit wrk's time limit?)")
    return Driven(requests=result["requests"],
                  rate=result["requests"] / (result["duration_us"] / 1e6),
                  p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000)


CLIENTS: dict[str, Client] = {"wrk": wrk_driven, "python": python_threads}
JUDGE = "wrk"  # the client whose figures decide a goal (see the module docstring)
