"""One step of the plan: a gcloud command, how to skip or update it, and what it needs.

Some values exist only once an earlier step ran (the Pub/Sub subscription Eventarc made for
a function's trigger, the project number): a step names them as `@{name}` inside its
words and says, in `captures`, which command prints each one. The runner runs those first;
the shell rendering uses `name=$(command)`; the offline check substitutes `SAMPLES`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

PLACEHOLDER = re.compile(r"@\{(\w+)\}")


@dataclass
class Step:
    what: str
    command: list[str]
    guard: list[str] | None = None  # if it succeeds the resource exists: skip (or update)
    update: list[str] | None = None  # run instead of `command` when the guard succeeds
    tolerate_exists: bool = False
    tolerate_missing: bool = False  # a delete: a NOT_FOUND answer means already gone
    guard_needs_output: bool = False  # the guard is a `list`: it exists if it printed a line
    captures: dict[str, list[str]] = field(default_factory=dict)
    stdin_secret: str | None = None  # stdin gets the value of this secret (its env name)

    def shell(self) -> str:
        cmd = _join(self.command)
        if self.stdin_secret:
            cmd = f"printf %s \"${self.stdin_secret}\" | {cmd}"
        if self.guard and self.update:
            line = (f"if {self._test()}; then {_join(self.update)}; else {cmd}; fi")
        elif self.guard:
            line = f"{self._test()} || {cmd}"
        elif self.tolerate_exists:
            line = f"{cmd}  # an ALREADY_EXISTS answer is fine"
        elif self.tolerate_missing:
            line = f"{cmd}  # a NOT_FOUND answer is fine (already gone)"
        else:
            line = cmd
        lets = [f"{name}=$({_join(c)})" for name, c in self.captures.items()]
        return " && ".join([*lets, line]) if lets else line

    def _test(self) -> str:
        assert self.guard is not None
        if self.guard_needs_output:
            return f"[ -n \"$({_join(self.guard)} 2>/dev/null)\" ]"
        return f"{_join(self.guard)} >/dev/null 2>&1"

    def commands(self, values: dict[str, str] | None = None) -> list[list[str]]:
        """Every command this step may run, with placeholders filled from `values`."""
        found = [*self.captures.values(),
                 *(c for c in (self.guard, self.command, self.update) if c)]
        return [fill(c, values) for c in found] if values is not None else found


def fill(command: list[str], values: dict[str, str] | None) -> list[str]:
    values = values or {}
    return [PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in command]


def _join(command: list[str]) -> str:
    words = []
    for word in command:
        if PLACEHOLDER.search(word):  # double quotes so the shell expands the variable
            words.append('"' + PLACEHOLDER.sub(r"${\1}", word) + '"')
        else:
            words.append(shlex.quote(word))
    return " ".join(words)
