"""A bundle missing a package that leadscore imports lazily fails at start, naming it, instead
of answering 500 on the first request that needs the package."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from leadscore.dependencies import LAZILY_IMPORTED, check_installed
from leadscore.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_everything_installed_passes() -> None:
    check_installed()  # GIVEN this environment (pyproject's dependencies): THEN no error


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN pycountry not installed (find_spec answers None for a module set to None)
    monkeypatch.setitem(sys.modules, "pycountry", None)
    # WHEN the check runs THEN it refuses, naming that package and no other
    with pytest.raises(ConfigError, match="required package not installed: pycountry\\.") as e:
        check_installed()
    assert "email-validator" not in str(e.value)


def test_every_missing_package_is_named_by_its_distribution(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two missing, one known by a module name unlike its distribution's
    monkeypatch.setitem(sys.modules, "email_validator", None)
    monkeypatch.setitem(sys.modules, "tenacity", None)
    with pytest.raises(ConfigError, match="packages not installed: email-validator, tenacity"):
        check_installed()


def test_a_function_missing_one_fails_at_start_not_on_a_request() -> None:
    # GIVEN Cloud Functions loading main.py and asking for a target, without email-validator
    probe = ("import sys; sys.modules['email_validator'] = None; "
             f"sys.path[:0] = [{str(ROOT / 'functions')!r}]; "
             "import main; main.ingest; print('started')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False)
    # THEN the target does not load, and the error names the package
    assert done.returncode != 0 and "started" not in done.stdout
    assert "ConfigError: required package not installed: email-validator" in done.stderr


def test_each_name_is_the_locked_distribution_of_its_module() -> None:
    # GIVEN the packages the check names; THEN each is the distribution that installs the
    # module, and the bundle's lock pins it (so the message names what to install)
    locked = (ROOT / "requirements.lock").read_text()
    provided = packages_distributions()
    for name, module in LAZILY_IMPORTED.items():
        installing = [re.sub(r"[-_.]+", "-", d).lower() for d in provided.get(module, [])]
        assert name in installing, (name, module)
        assert f"\n{name}==" in locked, name
