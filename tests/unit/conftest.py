"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LEADSCORE_* or Google variable of the machine running the tests leaks in (the
    settings tests read the environment)."""
    for name in list(os.environ):
        if name.upper().startswith("LEADSCORE_") or name.upper() in (
                "GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"):
            monkeypatch.delenv(name)
