"""Required packages that are imported lazily, checked when the composition root loads.

Cold starts import as little as they can (tests/perf/test_import_budget.py), so these
packages load with the first request that needs them: a bundle without one would start,
pass its health check and answer 500 on that request. Finding a package's spec reads the
import system's directory caches and imports nothing, so the check costs well under a
millisecond and a broken bundle fails at start, naming what is missing.
"""

from __future__ import annotations

from importlib.util import find_spec

from leadscore.errors import ConfigError

# distribution (as pyproject.toml names it) -> the top-level module its code imports
LAZILY_IMPORTED = {
    "email-validator": "email_validator",  # the first address checked (domain/events.py)
    "pycountry": "pycountry",  # the first country or currency looked up
    "cryptography": "cryptography",  # SES and SendGrid signatures (providers/)
    "tenacity": "tenacity",  # handover retries (service/handover.py)
}


def check_installed() -> None:
    """Raise ConfigError naming every required package that is not installed."""
    missing = [name for name, module in LAZILY_IMPORTED.items() if find_spec(module) is None]
    if missing:
        raise ConfigError(
            f"required package{'s' if len(missing) > 1 else ''} not installed: "
            f"{', '.join(missing)}. Install leadscore with its dependencies (`pip install -e .`"
            ", or the bundle's requirements.txt, which `infra` builds from requirements.lock)")
