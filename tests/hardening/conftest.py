"""Hardening suites reuse the functional fixtures, and print their figures at the end."""

from __future__ import annotations

from typing import Any

from functional.conftest import app_container  # noqa: F401 - a fixture, used by name

from hardening.figures import COUNTS, FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES and not COUNTS:
        return
    terminalreporter.section("hardening figures")
    for name in ("hostile requests sent", "5xx on malformed or unauthenticated input",
                 "forged writes", "resurrected leads"):
        if name in COUNTS:
            terminalreporter.write_line(f"{name}: {COUNTS[name]}")
    for name, value in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
