"""Cloud Functions loads this file for every target: it names every entry point by its
deployed name, and imports a target's module only when that target is asked for (PEP 562),
so each deployed function loads its own code at cold start and no other function's."""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

# leadscore uses no pydantic plugins; without this pydantic scans every installed package's
# entry points for them when the first model is built (about 4 ms of each cold start). An
# operator who sets the variable keeps their value (pydantic documents it).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from leadscore.wsgi_guard import install as guard_bodies

if TYPE_CHECKING:  # for readers and type checkers; at run time `__getattr__` imports them
    from crm_webhook import crm_webhook
    from dashboard import dashboard
    from email_webhook import email_webhook
    from form_submission import form_submission
    from inactivity_decay import inactivity_decay
    from ingest import ingest
    from leads_api import leads_api
    from purchase_webhook import purchase_webhook
    from track import track

# deployed name -> the module (beside this file) that defines it
TARGETS = {
    "crm_webhook": "crm_webhook",
    "dashboard": "dashboard",
    "email_webhook": "email_webhook",
    "form_submission": "form_submission",
    "inactivity_decay": "inactivity_decay",
    "ingest": "ingest",
    "leads_api": "leads_api",
    "purchase_webhook": "purchase_webhook",
    "track": "track",
}

__all__ = ["crm_webhook", "dashboard", "email_webhook", "form_submission", "inactivity_decay",
           "ingest", "leads_api", "purchase_webhook", "track"]


def __getattr__(name: str) -> Any:
    module = TARGETS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)


guard_bodies()  # oversized bodies refused before the framework reads them
