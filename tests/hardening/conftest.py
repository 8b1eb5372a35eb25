"""Hardening suites reuse the functional fixtures."""

from functional.conftest import app_container  # noqa: F401 - a fixture, used by name
