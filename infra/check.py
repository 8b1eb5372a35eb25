"""`--check`: every command of a plan, parsed by the real gcloud, offline.

gcloud parses a command's flags and arguments before it asks for credentials (DESIGN.md
§3), so each command run with an empty configuration either stops at "no credentials" (it is
well formed) or fails earlier with a usage error (it is not). Values that only exist after an
earlier step (`@{subscription}`) are replaced with well-formed samples.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from infra.config import DeployConfig
from infra.step import Step

NO_CREDENTIALS = ("You do not currently have an active account selected",
                  "Your current active account", "There was a problem refreshing your "
                  "current auth tokens", "credentials")


@dataclass(frozen=True)
class Problem:
    command: str
    returncode: int
    message: str


def samples(config: DeployConfig) -> dict[str, str]:
    where = f"projects/{config.project}"
    return {"project_number": "123456789012",
            "trigger": f"{where}/locations/{config.region}/triggers/inactivity-decay-000001",
            "subscription": f"{where}/subscriptions/eventarc-{config.region}-decay-000-sub-001"}


def _run(command: list[str], home: str) -> tuple[list[str], int, str]:
    env = {**os.environ, "CLOUDSDK_CONFIG": home, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    env.pop("CLOUDSDK_CORE_PROJECT", None)
    env.pop("CLOUDSDK_CORE_ACCOUNT", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)
    return command, done.returncode, done.stderr


VERBS = {"create", "describe", "update", "delete", "deploy", "enable", "list", "add",
         "add-iam-policy-binding", "add-invoker-policy-binding"}


def shape(command: list[str]) -> tuple[object, ...]:
    """What gcloud's parser sees: the command group and verb, which flags, the role and the
    kind of member; not the names of the resources (topic, secret, account)."""
    words = []
    for word in command[1:]:
        if not word.startswith("-"):
            words.append(word)
            if word in VERBS:
                break
    flags = sorted(w.split("=")[0] for w in command if w.startswith("-"))
    kinds = sorted(w.split(":")[0] for w in command if w.startswith(("--role=", "--member=")))
    return (*words, *flags, *kinds)


def commands(steps: list[Step], config: DeployConfig, distinct: bool = True
             ) -> list[list[str]]:
    """Every command of the plan; with `distinct`, one per shape (gcloud takes about a
    second per call, and a plan repeats each shape for each topic, secret and account)."""
    values = samples(config)
    every = [c for step in steps for c in step.commands(values)]
    if not distinct:
        return every
    unique: dict[tuple[object, ...], list[str]] = {}
    for command in every:
        unique.setdefault(shape(command), command)
    return list(unique.values())


def validate(steps: list[Step], config: DeployConfig, workers: int = 4,
             distinct: bool = True) -> list[Problem]:
    """The commands gcloud refused for a reason other than missing credentials."""
    with tempfile.TemporaryDirectory(prefix="leadscore-gcloud-") as home, \
            ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda c: _run(c, home),
                                commands(steps, config, distinct)))
    return [Problem(shlex.join(c), rc, " ".join(err.strip().splitlines()[:2]))
            for c, rc, err in results
            if rc == 0 or not any(marker in err for marker in NO_CREDENTIALS)]
