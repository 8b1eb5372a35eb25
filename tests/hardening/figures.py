"""Figures the hardening suite measures, printed together at the end of the run
(`tests/hardening/conftest.py`), so `make fuzz` and `make test` show them."""

from __future__ import annotations

FIGURES: dict[str, str] = {}
COUNTS: dict[str, int] = {}


def record(name: str, value: str) -> None:
    FIGURES[name] = value


def add(name: str, amount: int = 1) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + amount
